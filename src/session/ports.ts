import type { Logger } from '../platform/logger.js';
import type { User } from '../store/users.js';
import type { Role } from '../store/roles.js';

/** The terminal a client asked for (its pty request). */
export interface TerminalRequest {
  term: string;
  cols: number;
  rows: number;
}

/** Whatever runs on a channel and follows the client's window size. */
export interface Resizable {
  resize(cols: number, rows: number): void;
}

/** What the session side needs of the authenticated connection it runs on. */
export interface ConnectionInfo {
  id: string;
  addr: string;
  user: User;
  role: Role;
  log: Logger;
  /** Whether the client has gone (checked after the slow steps of a start). */
  closed(): boolean;
  /** Audits a refused request as request.denied. */
  deny(request: string, detail: string): void;
  /** Ends the SSH connection after a grace period, so the session's last words reach the client. */
  endSoon(): void;
}

/** Says the last words (lines end CRLF on a terminal) and closes the channel with an exit code. */
export function closeWith(ch: { write(d: Buffer): unknown; exitAndClose(code: number): void }, code: number, text: string): null {
  ch.write(Buffer.from(text.replace(/\n/g, '\r\n') + '\r\n'));
  ch.exitAndClose(code);
  return null;
}
