import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { waitUntil } from './poll.js';

/** A loopback TCP port that was free a moment ago (HAProxy binds it itself, so it cannot take port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** One TCP frontend on its own loopback port, and the lines of its backend ("server gw 127.0.0.1:2222 send-proxy-v2"). */
export interface Frontend {
  name: string;
  backend: string[];
}

/**
 * The backend lines of `section` in an HAProxy config file without its server lines, for a test
 * to run the shipped health check and server options against its own servers.
 */
export function backendOptions(cfg: string, section: string): string[] {
  const out: string[] = [];
  let inside = false;
  for (const line of cfg.split('\n')) {
    if (/^\S/.test(line)) inside = line.trim() === `backend ${section}`;
    else if (inside && line.trim() && !line.trim().startsWith('#') && !line.trim().startsWith('server ')) out.push(line.trim());
  }
  return out;
}

export interface Haproxy {
  /** The port each frontend listens on, by name. */
  ports: Record<string, number>;
  /** Everything HAProxy wrote, for failure messages. */
  output(): string;
  /** Hard stop; resolves when the process is gone. */
  stop(): Promise<void>;
}

/**
 * The real HAProxy (Debian's 2.6) in the foreground (-db), its config the only file in `dir`,
 * every frontend on a fresh loopback port. Resolves once every frontend listens, read from
 * /proc/net/tcp: a probe connection would be relayed to the backend and counted there.
 */
export async function startHaproxy(dir: string, frontends: Frontend[]): Promise<Haproxy> {
  const ports: Record<string, number> = {};
  for (const f of frontends) ports[f.name] = await freePort();
  const cfg = [
    'global',
    '  maxconn 256',
    '  log stderr format raw local0 info',
    'defaults',
    '  mode tcp',
    '  log global',
    '  timeout connect 2s',
    '  timeout client 60s',
    '  timeout server 60s',
    // As deploy/haproxy.cfg: a check's answer may take seconds on a busy machine before the node counts as down.
    '  timeout check 3s',
    ...frontends.flatMap((f) => [
      `frontend ${f.name}`,
      `  bind 127.0.0.1:${ports[f.name]}`,
      `  default_backend ${f.name}_nodes`,
      `backend ${f.name}_nodes`,
      ...f.backend.map((l) => `  ${l}`),
    ]),
    '',
  ].join('\n');
  const file = path.join(dir, 'haproxy.cfg');
  writeFileSync(file, cfg);
  let out = '';
  const child: ChildProcess = spawn('haproxy', ['-db', '-f', file], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  let exited = false;
  const gone = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const stop = async () => {
    if (!exited) child.kill('SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 5_000).unref())]);
    if (!exited) child.kill('SIGKILL');
    await gone;
  };
  try {
    await waitUntil(async () => {
      if (exited) throw new Error(`haproxy exited: ${out}`);
      const up = await Promise.all(frontends.map((f) => listening(ports[f.name]!)));
      return up.every(Boolean);
    }, 'haproxy frontends listening');
  } catch (e) {
    await stop();
    throw e;
  }
  return { ports, output: () => out, stop };
}

/** Whether something listens on 127.0.0.1:`port`, judged from /proc without connecting. */
async function listening(port: number): Promise<boolean> {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const table = await readFile('/proc/net/tcp', 'utf8');
  // local_address 0100007F:PORT, state 0A = LISTEN
  return table.split('\n').some((l) => l.includes(`0100007F:${hex} 00000000:0000 0A`));
}
