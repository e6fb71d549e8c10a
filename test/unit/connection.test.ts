import type { AddressInfo } from 'node:net';
import ssh2 from 'ssh2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GatewayConnection, type ConnectionDeps } from '../../src/ssh/connection.js';
import { effectiveAlgorithms } from '../../src/crypto/algorithms.js';
import { generateEd25519 } from '../../src/auth/host-key.js';
import { SeededRandom } from '../../src/platform/random.js';
import { LoginWorld, newKey, type KeyType, type LoginUser } from '../helpers/login-world.js';

interface Outcome {
  loggedIn: boolean;
  /** What the client was told after each attempt: the methods left and whether it was a partial success. */
  answers: { methods: string[] | null; partial: boolean | null }[];
  error: string | null;
}

/**
 * ssh2's own test style (test/test-userauth.js): a real ssh2 Client against a real ssh2 Server in
 * this process, one table of key types. The server runs the gateway's connection handler over an
 * in-memory store, so no OS account, tmux or gateway process is involved; the client only logs in.
 */
describe.each<KeyType>(['ed25519', 'ecdsa', 'rsa'])('an ssh2 client with an %s key against the connection handler', (type) => {
  let w: LoginWorld;
  let user: LoginUser;
  let server: ssh2.Server;
  let port = 0;
  const connections = new Set<ssh2.Connection>();
  const authenticated: string[] = [];
  /** The session side a test gives the connection (none by default: a test that opens a shell sets it). */
  let sessions: ConnectionDeps['sessions'] = () => {
    throw new Error('no session is opened in this test');
  };

  beforeEach(async () => {
    w = new LoginWorld();
    user = await w.user('alice', 'ops', type);
    const deps: ConnectionDeps = {
      login: w.deps,
      logger: w.logger,
      random: new SeededRandom(2),
      audit: w.admin.audit,
      sessions: (conn) => sessions(conn),
    };
    const alg = effectiveAlgorithms({});
    const algorithms = { kex: alg.kex, cipher: alg.cipher, hmac: alg.mac, serverHostKey: alg.serverHostKey, compress: alg.compress };
    server = new ssh2.Server({ hostKeys: [generateEd25519('test host').private], algorithms } as ssh2.ServerConfig, (client, info) => {
      connections.add(client);
      client.on('close', () => connections.delete(client));
      const pending = { addr: info.ip, handshakeDone: () => {}, authenticated: () => void authenticated.push(info.ip) };
      new GatewayConnection(deps, client, pending);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterEach(async () => {
    for (const c of connections) c.end();
    await new Promise((resolve) => server.close(resolve));
    authenticated.length = 0;
    w.close();
  });

  /** Logs in as `login` with `privateKey`, answering the code prompt with `code()`; `ready` gets the client instead of it being ended. */
  function login(login: string, privateKey: string, code: () => string, ready?: (c: ssh2.Client) => void): Promise<Outcome> {
    return new Promise((resolve) => {
      const out: Outcome = { loggedIn: false, answers: [], error: null };
      const client = new ssh2.Client();
      let step = 0;
      client.on('ready', () => {
        out.loggedIn = true;
        if (ready) ready(client);
        else client.end();
      });
      client.on('error', (e) => (out.error = e.message));
      client.on('close', () => resolve(out));
      client.connect({
        host: '127.0.0.1',
        port,
        username: login,
        hostVerifier: () => true,
        authHandler: (methods: string[] | null, partial: boolean | null, next: (a: unknown) => void) => {
          if (step > 0) out.answers.push({ methods, partial });
          step++;
          if (step === 1) return next({ type: 'publickey', username: login, key: privateKey });
          if (step === 2 && methods?.includes('keyboard-interactive')) {
            const prompt = (_n: string, _i: string, _l: string, _p: unknown[], finish: (a: string[]) => void) => finish([code()]);
            return next({ type: 'keyboard-interactive', username: login, prompt });
          }
          return next(false);
        },
      } as unknown as ssh2.ConnectConfig);
    });
  }

  it('accepts the enrolled key as the first factor, then logs in with a code', async () => {
    const out = await login('alice', user.key.privateText, () => w.code(user));
    expect(out).toEqual({ loggedIn: true, answers: [{ methods: ['keyboard-interactive'], partial: true }], error: null });
    expect(authenticated).toEqual(['127.0.0.1']);
    expect((await w.audit('auth.success')).map((r) => r.data)).toEqual([
      expect.objectContaining({ user: 'alice', role: 'ops', method: 'publickey+totp', keyFingerprint: user.key.fingerprint }),
    ]);
  });

  it('refuses another key of the same type', async () => {
    const out = await login('alice', newKey(type).privateText, () => w.code(user));
    expect(out.loggedIn).toBe(false);
    expect(out.answers).toEqual([{ methods: ['publickey'], partial: false }]);
    expect(authenticated).toEqual([]);
    expect(w.preauth.map((p) => p.reason)).toEqual(['publickey:unknown-key']);
    expect(await w.audit('auth.success')).toEqual([]);
  });

  it('a terminal resized while the session starts: the started session gets the new size', async () => {
    const resized: string[] = [];
    let started!: (r: { resize(c: number, r: number): void }) => void;
    let asked = '';
    sessions = () => ({
      shell: (_ch, pty) => {
        asked = `${pty.cols}x${pty.rows}`;
        return new Promise((resolve) => (started = resolve));
      },
      command: async () => null,
    });
    const out = await login(
      'alice',
      user.key.privateText,
      () => w.code(user),
      (client) => {
        client.shell({ term: 'xterm', cols: 80, rows: 24 }, (err, ch) => {
          if (err) throw err;
          // Once the shell request is in, and before the session has started: the window changes.
          void (async () => {
            while (!asked) await new Promise((r) => setImmediate(r));
            ch.setWindow(30, 100, 0, 0);
            for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
            started({ resize: (c, r) => void resized.push(`${c}x${r}`) });
            for (let i = 0; i < 20 && !resized.length; i++) await new Promise((r) => setTimeout(r, 5));
            client.end();
          })();
        });
      },
    );
    expect(out.loggedIn).toBe(true);
    expect(asked).toBe('80x24');
    expect(resized).toEqual(['100x30']);
  });
});
