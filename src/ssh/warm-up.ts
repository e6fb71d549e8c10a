import { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import { generateEd25519 } from '../auth/host-key.js';

/** Two connected in-memory streams: what one writes, the other reads. No socket, no port. */
function streamPair(): [Duplex, Duplex] {
  const ends: Duplex[] = [];
  const make = (i: number): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _enc, done) {
        ends[1 - i]!.push(chunk);
        done();
      },
      final(done) {
        ends[1 - i]!.push(null);
        done();
      },
    });
  ends.push(make(0), make(1));
  return [ends[0]!, ends[1]!];
}

/**
 * One SSH connection from a client to a server, both in this process over an in-memory pair,
 * before the door opens: the key exchange and host key signature with the gateway's own key and
 * algorithms, a public-key and a keyboard-interactive step, a session with a pty and a shell,
 * data both ways. It compiles ssh2's code and warms OpenSSL's primitives so the first user after
 * a start (a deploy, a failover) does not wait for them: measured, that login took ~70 ms more
 * than the next ones. Nothing here touches the store, the audit log, the metrics or the host:
 * the server is a throwaway with the gateway's options, and its only client is this one. Never
 * throws; gives up after `timeoutMs`.
 */
export async function warmUpSsh(serverConfig: ssh2.ServerConfig, timeoutMs = 2000): Promise<{ ok: boolean; ms: number }> {
  const t0 = performance.now();
  let server: ssh2.Server;
  try {
    server = new ssh2.Server(serverConfig);
  } catch {
    return { ok: false, ms: 0 };
  }
  const client = new ssh2.Client();
  const [a, b] = streamPair();
  const key = generateEd25519('warm-up').private;
  let timer: NodeJS.Timeout | undefined;
  const done = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
    server.on('connection', (conn) => {
      conn.on('error', () => resolve(false));
      // As a real login: a public-key query, the signed attempt (partial success), a code prompt.
      conn.on('authentication', (ctx) => {
        if (ctx.method === 'publickey') return ctx.signature ? ctx.reject(['keyboard-interactive'], true) : ctx.accept();
        if (ctx.method === 'keyboard-interactive') return ctx.prompt([{ prompt: 'code: ', echo: false }], () => ctx.accept());
        return ctx.reject(['publickey']);
      });
      conn.on('session', (accept) => {
        const session = accept();
        session.on('pty', (ok) => ok?.());
        session.on('shell', (ok) => {
          const ch = ok();
          ch.on('data', () => {
            ch.write('$ ');
            ch.exit(0);
            ch.end();
          });
        });
      });
    });
    client.on('ready', () => {
      client.shell({ term: 'xterm-256color', cols: 80, rows: 24 }, (err, ch) => {
        if (err) return resolve(false);
        ch.on('data', () => {});
        ch.on('close', () => resolve(true));
        ch.write('x');
      });
    });
    client.on('keyboard-interactive', (_name, _instructions, _lang, prompts, answer) => answer(prompts.map(() => '000000')));
    client.on('error', () => resolve(false));
  });
  server.injectSocket(b as unknown as import('node:net').Socket);
  client.connect({
    sock: a as unknown as import('node:stream').Readable,
    username: 'warm-up',
    privateKey: key,
    algorithms: (serverConfig as ssh2.ConnectConfig).algorithms,
    tryKeyboard: true,
    hostVerifier: () => true,
  });
  const ok = await done;
  clearTimeout(timer);
  client.end();
  a.destroy();
  b.destroy();
  return { ok, ms: +(performance.now() - t0).toFixed(1) };
}
