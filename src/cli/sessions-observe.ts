import { Command } from 'commander';
import { example, withCommon, configOf } from './common.js';
import { TgError } from '../errors.js';
import { openAdmin, type AdminContext } from '../admin/context.js';
import { Host } from '../host/host.js';
import { silentLogger } from '../platform/logger.js';
import { spawnPty } from '../session/pty.js';
import { SafeTerminalFilter } from '../recording/safe-terminal.js';

/** The host side of the admin CLI: the same privilege boundary the gateway uses. */
export function adminHost(a: AdminContext): Host {
  return new Host({ config: a.config, repo: a.hostAccounts, roles: a.roles, clock: a.clock, logger: silentLogger(), audit: a.audit });
}

const filterOf = (f: SafeTerminalFilter) => (d: Buffer) => f.write(d);

/** Ctrl-\ ends an observation whatever the observed server does (it could ignore detach keys). */
const QUIT = 0x1c;

/**
 * `sessions observe ID`: a tmux read-only client on a live session. It runs as the observed pair's
 * account (a program on that socket can make it do only what the pair could do already) in a pty
 * that this process owns: the admin's terminal is never handed to a process of the pair (which
 * could push keystrokes into it with TIOCSTI), and what the pair's server sends is passed through
 * `screenFilter` before it reaches the admin's terminal.
 */
export async function observe(a: AdminContext, id: string, screenFilter: (d: Buffer) => Buffer = filterOf(new SafeTerminalFilter())): Promise<void> {
  const s = a.sessions.get(id);
  if (!s || s.state !== 'live') throw new TgError('TG_ERR_SESSION_NOT_FOUND', `no live session ${id}`);
  const host = adminHost(a);
  const pair = host.pairOf(s.role_id, s.user_id);
  const socket = pair ? await host.servers.liveSocket(pair) : null;
  if (!pair || !socket) throw new TgError('TG_ERR_SESSION_NOT_FOUND', `session ${id} has no tmux server on this host`);
  const cmd = host.tmux.client(pair, socket, ['attach-session', '-t', 'main', '-f', 'read-only,ignore-size']);
  a.audit.emit(a.actor, { type: 'recording.access', action: 'observe', sessionId: id, detail: `live, read-only: ${s.user_name}+${s.role_name}` });
  const out = process.stdout;
  const pty = spawnPty({ file: cmd.file, args: cmd.args, cwd: '/', env: { PATH: '/usr/local/bin:/usr/bin:/bin', TERM: 'xterm-256color', LANG: 'C.UTF-8', HOME: '/' }, cols: out.columns || 80, rows: out.rows || 24, term: 'xterm-256color' });
  // Registered, so the gateway's intrusion check knows this client is an audited observer.
  const repo = a.hostAccounts;
  repo.addObserver({ pid: pty.pid, tty: pty.tty, sessionId: id, actor: a.actor, at: a.clock.now() });
  const stdin = process.stdin;
  const raw = stdin.isTTY;
  if (raw) stdin.setRawMode(true);
  const onResize = () => pty.resize(out.columns || 80, out.rows || 24);
  out.on('resize', onResize);
  // Ctrl-\ ends the observation at once, whatever the pair's process does (it may ignore SIGHUP
  // and pose as a prompt): input stops, the client is killed, the terminal is given back.
  let quit: () => void = () => {};
  const quitted = new Promise<void>((resolve) => (quit = resolve));
  const onKey = (d: Buffer) => {
    if (!d.includes(QUIT)) return pty.write(d);
    stdin.off('data', onKey);
    pty.kill('SIGKILL');
    quit();
  };
  stdin.on('data', onKey);
  pty.onData((d) => out.write(screenFilter(d)));
  try {
    await Promise.race([new Promise<void>((resolve) => pty.onExit(() => resolve())), quitted]);
  } finally {
    stdin.off('data', onKey);
    stdin.pause();
    if (raw) stdin.setRawMode(false);
    out.off('resize', onResize);
    out.write('\x1b[0m\r\n[tmuxgate] observer ended\r\n');
    repo.removeObserver(pty.pid);
  }
}

/** sessions observe */
export function observeCommand(): Command {
  return withCommon(new Command('observe'))
    .description('watch a live session read-only (a tmux read-only client: cannot type or resize); Ctrl-\\ quits')
    .argument('<session-id>')
    .addHelpText('after', example('tmuxgate sessions observe s_AbC123   # leave with Ctrl-\\ or the tmux prefix + d'))
    .action(async (id: string, _o, cmd: Command) => {
      if (!process.stdout.isTTY) throw new TgError('TG_ERR_NOT_A_TTY', 'observe needs a terminal');
      const a = openAdmin(configOf(cmd));
      try {
        await observe(a, id);
      } finally {
        a.close();
      }
    });
}
