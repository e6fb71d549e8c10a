import * as nodePty from 'node-pty';
import { waitUntil } from './poll.js';

/** Strips ANSI escape sequences so tests can match what a person reads. */
export function plain(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>NOM78c]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\r/g, '');
}

/** A program (the real OpenSSH client, usually) running in a pty, driven like a person would. */
export class PtyDriver {
  private readonly p: nodePty.IPty;
  out = '';
  exitCode: number | null = null;
  readonly exited: Promise<number>;

  constructor(file: string, args: string[], env: Record<string, string>, size = { cols: 120, rows: 40 }) {
    this.p = nodePty.spawn(file, args, { name: 'xterm-256color', cols: size.cols, rows: size.rows, env, cwd: env.HOME ?? '/' });
    this.p.onData((d) => (this.out += d));
    this.exited = new Promise((resolve) =>
      this.p.onExit((e) => {
        this.exitCode = e.exitCode;
        resolve(e.exitCode);
      }),
    );
  }

  get pid(): number {
    return this.p.pid;
  }

  get text(): string {
    return plain(this.out);
  }

  /** Waits until the (ANSI-stripped) output matches, after `from` characters of it. */
  async waitFor(pattern: string | RegExp, timeoutMs = 15_000, from = 0): Promise<string> {
    const test = (s: string) => (typeof pattern === 'string' ? s.includes(pattern) : pattern.test(s));
    try {
      await waitUntil(() => test(plain(this.out.slice(from))) || (this.exitCode !== null && test(plain(this.out.slice(from)))), `output ${pattern}`, timeoutMs);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- output so far ---\n${this.text.slice(-3000)}`);
    }
    return this.text;
  }

  /** Waits for the program to exit; returns its status. */
  async waitExit(timeoutMs = 15_000): Promise<number> {
    await waitUntil(() => this.exitCode !== null, 'program exit', timeoutMs);
    return this.exitCode!;
  }

  write(s: string): void {
    this.p.write(s);
  }

  resize(cols: number, rows: number): void {
    this.p.resize(cols, rows);
  }

  kill(): void {
    if (this.exitCode === null) {
      try {
        this.p.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}

/**
 * The real OpenSSH client's arguments with a hermetic config: no user or system ssh_config, only
 * `keyFile`, host keys checked against `knownHostsFile`. ssh takes the first value given for an
 * option, so `extra` (a test's own options) comes first.
 */
export function hermeticSshArgs(o: { port: number; keyFile: string; knownHostsFile: string; login: string; extra?: string[]; command?: string[] }): string[] {
  return [
    ...(o.extra ?? []),
    '-F',
    '/dev/null',
    '-p',
    String(o.port),
    '-i',
    o.keyFile,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    `UserKnownHostsFile=${o.knownHostsFile}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'LogLevel=ERROR',
    '-o',
    'NumberOfPasswordPrompts=3',
    `${o.login}@127.0.0.1`,
    ...(o.command ?? []),
  ];
}
