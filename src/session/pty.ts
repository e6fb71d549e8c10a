import * as nodePty from 'node-pty';

/** A pseudo-terminal running one program. The port the session code uses; node-pty behind it. */
export interface Pty {
  readonly pid: number;
  onData(fn: (data: Buffer) => void): void;
  onExit(fn: (code: number, signal: number | undefined) => void): void;
  write(data: Buffer): void;
  resize(cols: number, rows: number): void;
  pause(): void;
  resume(): void;
  kill(signal?: string): void;
}

export interface PtySpawnOptions {
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  cols: number;
  rows: number;
  term: string;
  uid?: number;
  gid?: number;
}

/** Spawns through node-pty with raw Buffers (no decoding cost, no split UTF-8). */
export function spawnPty(o: PtySpawnOptions): Pty {
  const p = nodePty.spawn(o.file, o.args, {
    name: o.term,
    cols: o.cols,
    rows: o.rows,
    cwd: o.cwd,
    env: o.env,
    encoding: null,
    ...(o.uid !== undefined ? { uid: o.uid, gid: o.gid } : {}),
  } as nodePty.IPtyForkOptions);
  return {
    pid: p.pid,
    onData: (fn) => void p.onData((d: string | Buffer) => fn(typeof d === 'string' ? Buffer.from(d) : d)),
    onExit: (fn) => void p.onExit((e) => fn(e.exitCode, e.signal)),
    write: (d) => p.write(d as unknown as string),
    resize: (c, r) => p.resize(c, r),
    pause: () => p.pause(),
    resume: () => p.resume(),
    kill: (s) => p.kill(s),
  };
}
