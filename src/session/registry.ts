import type { ShellSession, EndReason } from './shell-session.js';

/** What the gateway can do to any live session: a shell, or an auditor's replay menu. */
export interface LiveHandle {
  /** Ends the session from the gateway's side, telling the user why. */
  end(reason: EndReason, message: string): void;
  onEnd(fn: (reason: string) => void): void;
  /** Output is waiting because the client does not read it (shells only). */
  readonly waitingForClient?: boolean;
  /** The user's input is held at their client because the pty's program does not read it (shells only). */
  readonly waitingForPty?: boolean;
  /** The terminal device of the session's tmux client (shells only). */
  readonly tty?: string | null;
}

export interface LiveSession {
  id: string;
  userId: number;
  roleId: number;
  userName: string;
  roleName: string;
  shell: LiveHandle;
  /** The session's recording, if it has one: its write queue is a gauge on /metrics. */
  recorder?: { readonly queuedBytes: number };
}

/** The sessions this gateway process is serving right now (shells and auditor menus). */
export class SessionRegistry {
  private readonly byId = new Map<string, LiveSession>();
  private readonly tasks = new Set<Promise<unknown>>();
  private endedWith: [EndReason, string] | null = null;
  /** Read-only watchers of shared sessions, by a random id. */
  readonly viewers = new Map<string, { viewerId: number; viewer: string; ownerUserId: number; ownerRoleId: number; shell: ShellSession }>();

  /** Keeps track of work that must finish before shutdown (sealing recordings). */
  track(p: Promise<unknown>): void {
    this.tasks.add(p);
    void p.finally(() => this.tasks.delete(p));
  }

  /** Resolves when every tracked task has settled. */
  async drain(): Promise<void> {
    while (this.tasks.size) await Promise.allSettled([...this.tasks]);
  }

  /**
   * A session going live. After shutDown (the gateway stopping) it is ended at once with the same
   * words: a start that was in flight then (waiting its turn, or writing its rows) does not run on
   * past the drain.
   */
  add(s: LiveSession): void {
    this.byId.set(s.id, s);
    s.shell.onEnd(() => this.byId.delete(s.id));
    if (this.endedWith) s.shell.end(...this.endedWith);
  }

  get(id: string): LiveSession | undefined {
    return this.byId.get(id);
  }

  all(): LiveSession[] {
    return [...this.byId.values()];
  }

  get size(): number {
    return this.byId.size;
  }

  /** The gateway stops: ends every live session, and from now on every one that goes live. */
  shutDown(reason: EndReason, message: string): number {
    this.endedWith = [reason, message];
    return this.endAll(reason, message);
  }

  /** Ends every live session with the same reason and message. */
  endAll(reason: EndReason, message: string): number {
    const all = this.all();
    for (const v of this.viewers.values()) v.shell.end(reason, message);
    for (const s of all) s.shell.end(reason, message);
    return all.length;
  }
}
