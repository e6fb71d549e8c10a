import { performance } from 'node:perf_hooks';
import type { Config } from '../config/schema.js';
import { systemClock, type Clock } from '../platform/clock.js';
import type { Random } from '../platform/random.js';
import { requireDeps } from '../platform/check-deps.js';
import { newId } from '../platform/ids.js';
import { TgError } from '../errors.js';
import type { Host } from '../host/host.js';
import type { Pair, PtyLaunch, TmuxHost } from '../host/tmux.js';
import type { TmuxServers } from '../host/tmux-servers.js';
import type { User } from '../store/users.js';
import type { Role } from '../store/roles.js';
import type { RelayRequest } from '../cluster/link.js';
import type { Placement } from '../cluster/placement.js';
import { ptyWith, type Pty, type PtySpawnOptions } from '../platform/pty.js';
import { clampSize, ShellSession, type TerminalChannel } from './shell-session.js';
import { normaliseTerm, shellEnv } from './env.js';
import { SessionLifecycle, type SessionLifecycleConfig } from './lifecycle.js';
import type { ConnectionInfo, Resizable, TerminalRequest } from './ports.js';
import type { StartGate } from './start-gate.js';
import { EarlyClient, withKillGrace } from './early-client.js';

/** What starting a shell asks of the privilege boundary: the pair, its sandbox and its tmux server. */
export interface ShellHost {
  pairForLogin: Host['pairForLogin'];
  devMode: Host['devMode'];
  tmux: Pick<TmuxHost, 'client'>;
  servers: Pick<TmuxServers, 'attachFor' | 'attached' | 'detached'>;
}

/**
 * What shell start asks of the cluster (absent on a single node): where the pair's tmux server
 * lives, a relay to the node that holds it, and word that a local client of a pair has ended.
 */
export interface ShellCluster {
  readonly nodeId: string;
  /** Claims the pair here, or names the live node that holds it (taking it from a dead one). */
  place(roleId: number, userId: number): Promise<Placement>;
  /** The owning node's tmux client for the session, over the link, as a Pty. */
  relay(address: string, req: RelayRequest): Promise<Pty>;
  /** A tmux client of the pair ended here: its claim goes if the server went with it. */
  clientEnded(roleId: number, userId: number): void;
}

/** What shell sessions are started with. */
export interface ShellStartConfig {
  settings: Pick<Config['sessions'], 'defaultShell' | 'defaultTerm' | 'lang' | 'idleTimeout' | 'idleWarning' | 'maxSessionTime'>;
  host: ShellHost;
  clock: Clock;
  random: Random;
  spawnPty: (o: PtySpawnOptions) => Pty;
  lifecycle: SessionLifecycleConfig;
  cluster?: ShellCluster;
  /** Local tmux clients start in arrival order, a few at a time (absent: all at once). */
  gate?: StartGate;
  /** Real time, for how long a tmux client told to go may linger (early-client.ts withKillGrace); the system's by default. */
  realTime?: Clock;
}

/** A pair's tmux client, ready to spawn: the pair, its environment and argv, and whether it starts the server. */
interface LocalClient {
  pair: Pair;
  env: Record<string, string>;
  cmd: PtyLaunch;
  starts: boolean;
}

/**
 * Starts (or reattaches) a user's (role, user) tmux session on an accepted shell channel: the
 * pair first; then, in its turn, the tmux client in a pty, whose output is held while the
 * session's lifecycle is put on the record (row, recording and session.start: fail closed);
 * then the session takes the client and the user sees it.
 */
export class ShellStarter {
  private readonly c: ShellStartConfig;

  constructor(config: ShellStartConfig) {
    this.c = requireDeps('shell start', config, ['settings', 'host', 'clock', 'random', 'spawnPty', 'lifecycle']);
  }

  /** The running shell, or null when it was refused (the user was told why) or the client left. */
  async start(conn: ConnectionInfo, ch: TerminalChannel, pty: TerminalRequest, clientEnv: Record<string, string>): Promise<Resizable | null> {
    const { settings, host, cluster } = this.c;
    const { user, role } = conn;
    const fail = (why: string, detail: string) => {
      conn.deny('shell', detail);
      ch.write(Buffer.from(`tmuxgate: ${why}\r\n`));
      ch.exitAndClose(1);
      return null;
    };
    const size = clampSize(pty.cols, pty.rows);
    const id = newId('s_', this.c.random);
    const term = normaliseTerm(pty.term, settings.defaultTerm);
    // In a cluster, the pair's tmux server may live on another node: then this node (which
    // authenticated the user and records the session) relays to it.
    let placed: Placement = { kind: 'local' };
    if (cluster) {
      try {
        placed = await cluster.place(role.id, user.id);
      } catch (e) {
        conn.log.error({ err: e }, 'cannot place the session');
        return fail('your session could not be prepared; the reason was logged', `session placement: ${(e as Error).message}`);
      }
      if (placed.kind === 'unavailable') {
        return fail(`your session is held by node ${placed.node}, which ${placed.reason}`, `placement: node ${placed.node} ${placed.reason}`);
      }
      if (placed.kind === 'local' && placed.tookOverFrom) conn.log.warn({ from: placed.tookOverFrom }, 'took the pair over from a node that is gone');
    }
    if (placed.kind === 'relay') return this.startRelayed(conn, ch, { id, term, ...size }, placed, fail);
    // The pair: its own OS account (created on first use), socket directory, home and the
    // gateway-owned tmux.conf; then its server, started as the pair in the role's sandbox.
    let local: LocalClient;
    try {
      local = await this.prepareLocal({ user, role, sessionId: id, term, ...size, clientEnv, log: conn.log });
    } catch (e) {
      // Fail closed: no sandbox, no session; the user is told why (a sandbox's reason is the role's, not a secret).
      if (e instanceof TgError && e.code === 'TG_ERR_SANDBOX') return fail(`sandbox could not be set up: ${e.message}`, `sandbox: ${e.message}`);
      conn.log.error({ err: e }, 'cannot prepare the session');
      return fail('your session could not be prepared; the reason was logged', `session prepare: ${(e as Error).message}`);
    }
    const { pair, env, cmd, starts } = local;
    const devMode = host.devMode(role);
    if (devMode) ch.write(Buffer.from('tmuxgate: development mode: sessions are not isolated (the gateway is not running as root)\r\n'));
    const lifecycle = this.lifecycle(conn, { id, term, ...size }, { socketDir: pair.dir, devMode });
    // Our turn to start the tmux client (and with it, for a first login, the server and shell).
    const release = this.c.gate ? await this.c.gate.turn() : () => undefined;
    if (conn.closed()) {
      release();
      return null;
    }
    // The client starts now and draws while the session is put on the record; what it prints
    // is held until then (early-client.ts). Known to the intrusion check from its first moment.
    const spawn = { file: cmd.file, args: cmd.args, cwd: '/', env, cols: size.cols, rows: size.rows, term };
    const early = EarlyClient.spawn(this.spawnInTurn(release), spawn);
    if (early.pid) this.track(pair, early.pid, early.tty, starts, (fn) => early.onExited(fn));
    try {
      // Recording first: no byte reaches the user before the encrypted recording exists (fail closed).
      if (!(await lifecycle.open())) return fail('recording failed: session not started', 'recording could not be created');
      return await this.run(conn, ch, lifecycle, spawn, () => early.take());
    } finally {
      // A client no session took (refused, the client left, the session ended) is killed, and
      // its turn given back now rather than at its exit.
      if (early.discard()) release();
    }
  }

  /**
   * The owning node's side of a relay: the same local tmux client a login here would get (the
   * pair's account, its server, spawned as the pair), known to the intrusion check, for a
   * session that another node authenticated and records. The caller has checked the store.
   */
  async attachForRelay(r: { user: User; role: Role; sessionId: string; term: string; cols: number; rows: number; log: ConnectionInfo['log'] }): Promise<Pty> {
    const size = clampSize(r.cols, r.rows);
    const term = normaliseTerm(r.term, this.c.settings.defaultTerm);
    const { pair, env, cmd, starts } = await this.prepareLocal({ ...r, ...size, term, clientEnv: {} });
    // In turn with this node's own logins: a storm of relayed logins starts its clients in order too.
    const release = this.c.gate ? await this.c.gate.turn() : () => undefined;
    // The link tells it to go (SIGHUP) when the receiving node hangs up.
    const pty = this.spawnInTurn(release)({ file: cmd.file, args: cmd.args, cwd: '/', env, cols: size.cols, rows: size.rows, term });
    if (pty.pid) this.track(pair, pty.pid, pty.tty, starts, (fn) => pty.onExit(() => fn()));
    return pty;
  }

  /**
   * Spawns a tmux client whose first drawing, or exit, ends the start's turn; a spawn that throws
   * ends it too. Every client of ours is told to go with SIGHUP (its session's end, a discarded
   * early start, a relay's far end hanging up); one that does not go is killed outright
   * (withKillGrace: its server may have made it exec a program that ignores SIGHUP).
   */
  private spawnInTurn(release: () => void): (o: PtySpawnOptions) => Pty {
    return (o) => {
      let pty: Pty;
      try {
        pty = withKillGrace(this.c.spawnPty(o), this.c.realTime ?? systemClock);
      } catch (e) {
        release();
        throw e;
      }
      pty.onData(release);
      pty.onExit(release);
      return pty;
    };
  }

  /** The pair (account, directories, conf; a sandbox that cannot be set up refuses here) and its client's argv. */
  private async prepareLocal(r: {
    user: Pick<User, 'id' | 'name'>;
    role: Role;
    sessionId: string;
    term: string;
    cols: number;
    rows: number;
    clientEnv: Record<string, string>;
    log: ConnectionInfo['log'];
  }): Promise<LocalClient> {
    const { settings, host } = this.c;
    const { user, role } = r;
    const shellPath = role.shell ?? settings.defaultShell;
    const t0 = performance.now();
    const pair = await host.pairForLogin(role, user.id, user.name, shellPath);
    const t1 = performance.now();
    host.tmux.client(pair, '/dev/null', []); // a sandbox that cannot be set up refuses before anything starts
    const acct = pair.account;
    const { lang } = settings;
    const who = { home: acct.home, user: acct.name, shell: shellPath, gatewayUser: user.name, role: role.name };
    const env = shellEnv({ term: r.term, lang, ...who, sessionId: r.sessionId, clientEnv: r.clientEnv });
    const { cmd, starts } = await host.servers.attachFor(pair, env, r.cols, r.rows);
    // Where an isolated login spends its time (bench/README.md reads these at debug level).
    const stages = { pairMs: +(t1 - t0).toFixed(1), serverMs: +(performance.now() - t1).toFixed(1) };
    r.log.debug(stages, `session prepared${starts ? ' (server starts with the client)' : ''}`);
    return { pair, env, cmd, starts };
  }

  /** A client of ours on the pair's server: known to the intrusion check while it runs; its end may release the pair's claim. */
  private track(pair: Pair, pid: number, tty: string | null, starts: boolean, onEnd: (fn: () => void) => void): void {
    const { host, cluster } = this.c;
    host.servers.attached(pair, pid, tty, starts);
    onEnd(() => {
      host.servers.detached(pair, pid);
      cluster?.clientEnded(pair.roleId, pair.userId);
    });
  }

  /**
   * A session whose tmux server lives on another node: recorded here as any other, with the
   * owning node's tmux client (over the link) as its pty. The row is written before the relay
   * is asked for, since the owning node checks it.
   */
  private async startRelayed(
    conn: ConnectionInfo,
    ch: TerminalChannel,
    t: { id: string; term: string; cols: number; rows: number },
    placed: { node: string; address: string },
    fail: (why: string, detail: string) => null,
  ): Promise<Resizable | null> {
    const cluster = this.c.cluster!;
    const { user, role } = conn;
    const lifecycle = this.lifecycle(conn, t, { socketDir: `(node ${placed.node})`, devMode: false, serverNodeId: placed.node });
    if (!(await lifecycle.open())) return fail('recording failed: session not started', 'recording could not be created');
    let remote: Pty;
    try {
      const { term, cols, rows } = t;
      remote = await cluster.relay(placed.address, { sessionId: t.id, userId: user.id, roleId: role.id, fromNode: cluster.nodeId, term, cols, rows });
    } catch (e) {
      conn.log.warn({ err: (e as Error).message, node: placed.node }, 'relay to the owning node failed');
      lifecycle.end('spawn-failed', 'the node holding the session did not answer');
      await lifecycle.whenClosed();
      const why = `the node holding your session (${placed.node}) did not answer; try again in a few seconds`;
      return fail(why, `relay to node ${placed.node}: ${(e as Error).message}`);
    }
    if (conn.closed()) {
      remote.kill();
      lifecycle.end('client-disconnected', 'the client left');
      await lifecycle.whenClosed();
      return null;
    }
    const spawn = { file: `relay:${placed.node}`, args: [], cwd: '/', env: {}, cols: t.cols, rows: t.rows, term: t.term };
    // The relay's far end is closed when this session never uses it (its start not on the record, or the client gone).
    let used = false;
    const shell = await this.run(conn, ch, lifecycle, spawn, () => ((used = true), lineLossTold(remote, placed.node))).catch((e: unknown) => {
      remote.kill();
      throw e;
    });
    if (!used) remote.kill();
    return shell;
  }

  private lifecycle(
    conn: ConnectionInfo,
    t: { id: string; term: string; cols: number; rows: number },
    where: { socketDir: string; devMode: boolean; serverNodeId?: string },
  ): SessionLifecycle {
    const { user, role } = conn;
    return new SessionLifecycle(this.c.lifecycle, { ...t, ...where, user, role, addr: conn.addr, connId: conn.id, recorded: true, log: conn.log });
  }

  /** Runs the shell on the channel under its lifecycle (which has been opened). */
  private async run(
    conn: ConnectionInfo,
    ch: TerminalChannel,
    lifecycle: SessionLifecycle,
    spawn: PtySpawnOptions,
    spawnPty: (o: PtySpawnOptions) => Pty,
  ): Promise<ShellSession> {
    const { settings, clock } = this.c;
    const { role } = conn;
    const id = lifecycle.facts.id;
    const idleTimeoutMs = role.idleTimeoutMs ?? settings.idleTimeout;
    const shell = new ShellSession(
      {
        id,
        spawn,
        idleTimeoutMs,
        idleWarningMs: Math.min(role.idleWarningMs ?? settings.idleWarning, idleTimeoutMs / 2),
        maxSessionMs: role.maxSessionMs ?? settings.maxSessionTime,
        tap: lifecycle.tap(),
      },
      { clock, logger: conn.log.child({ session: id }), spawnPty },
    );
    try {
      await lifecycle.begin(shell);
    } catch (e) {
      // The start could not be put on the record: no client starts, and the row and the
      // recording are closed now rather than at the next restart.
      lifecycle.end('spawn-failed', 'the session could not be started');
      await lifecycle.whenClosed();
      throw e;
    }
    // The channel is closed with its last words queued; OpenSSH leaves once its channel is
    // gone. Ending the connection at once could drop those words, so only a stuck client
    // is cut off, after a grace period.
    lifecycle.onEnd(() => conn.endSoon());
    // The client may have left while the start was audited (its close is not heard again), or
    // the recording failed meanwhile: then no tmux client is started for nobody.
    if (conn.closed()) lifecycle.end('client-disconnected', 'the client left');
    if (lifecycle.endReason === null) shell.start(ch);
    return shell;
  }
}

/**
 * A relayed pty that tells the user (in the recorded stream) when the link to the owning node
 * drops without the remote client exiting, and reports that as a failed exit, not a negative code.
 */
function lineLossTold(remote: Pty, node: string): Pty {
  const listeners: ((d: Buffer) => void)[] = [];
  return ptyWith(remote, {
    onData: (fn) => {
      listeners.push(fn);
      remote.onData(fn);
    },
    onExit: (fn) =>
      remote.onExit((code, signal) => {
        if (code >= 0) return fn(code, signal);
        const note = Buffer.from(`\r\n[tmuxgate] the connection to node ${node}, which holds your tmux session, was lost. Log in again to continue.\r\n`);
        for (const l of listeners) l(note);
        fn(255, signal);
      }),
  });
}
