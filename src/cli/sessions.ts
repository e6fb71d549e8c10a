import { Command } from 'commander';
import { example, handler, parseTime, withAdmin, withCommon } from './common.js';
import { printJson, printTable } from './output.js';
import { EXIT, TgError } from '../errors.js';
import { killSession } from '../admin/operations.js';
import { openObservation, type Observation } from '../admin/observe.js';
import { formatOffset } from '../recording/asciicast.js';
import { SafeTerminalFilter } from '../recording/safe-terminal.js';
import { spawnPty } from '../platform/pty.js';
import { LiveRedaction } from '../redaction/live.js';

/** Ctrl-\ ends an observation whatever the observed server does (it could ignore detach keys). */
const QUIT = 0x1c;

/**
 * The terminal side of `sessions observe`: the observer client runs in a pty this process owns
 * (the admin's terminal is never handed to a process of the pair, which could push keystrokes
 * into it with TIOCSTI), and what the pair's server sends passes the safe terminal filter before
 * it reaches the admin's terminal; redacted (the default), only a redacted view's drawing of the
 * screen does.
 */
async function runObserver(obs: Observation): Promise<void> {
  const out = process.stdout;
  const filter = new SafeTerminalFilter();
  const cols = () => out.columns || 80;
  const rows = () => out.rows || 24;
  const pty = spawnPty({ file: obs.file, args: obs.args, cwd: '/', env: obs.env, cols: cols(), rows: rows(), term: 'xterm-256color' });
  // Redacted (the default): the admin's terminal gets the view's drawing of the screen, never the stream.
  const live = obs.redactor ? new LiveRedaction(obs.redactor, cols(), rows(), (d) => out.write(d)) : null;
  await obs.started({ pid: pty.pid, tty: pty.tty });
  const stdin = process.stdin;
  const raw = stdin.isTTY;
  if (raw) stdin.setRawMode(true);
  const onResize = () => {
    pty.resize(cols(), rows());
    live?.resize(cols(), rows());
  };
  out.on('resize', onResize);
  // Ctrl-\ ends the observation at once, whatever the pair's process does (it may ignore SIGHUP
  // and pose as a prompt): input stops, the client is killed, the terminal is given back.
  let quit: () => void = () => {};
  const quitted = new Promise<void>((resolve) => (quit = resolve));
  // Keystrokes never reach the pty: its client runs as the observed pair, whose server can make
  // it exec a program (detach-client -E) that would read what the admin types.
  const onKey = (d: Buffer) => {
    if (!d.includes(QUIT)) return;
    stdin.off('data', onKey);
    pty.kill('SIGKILL');
    quit();
  };
  stdin.on('data', onKey);
  let expired = false;
  const cancelExpiry = obs.onGrantExpiry(() => {
    expired = true;
    stdin.off('data', onKey);
    pty.kill('SIGKILL');
    quit();
  });
  pty.onData((d) => {
    if (!live) return void out.write(filter.write(d));
    // The view is behind (a flood of output): stop reading the observed client until it catches up.
    if (!live.push(d)) {
      pty.pause();
      live.onceReady(() => pty.resume());
    }
  });
  try {
    await Promise.race([new Promise<void>((resolve) => pty.onExit(() => resolve())), quitted]);
  } finally {
    stdin.off('data', onKey);
    stdin.pause();
    if (raw) stdin.setRawMode(false);
    out.off('resize', onResize);
    cancelExpiry();
    live?.dispose();
    out.write(`\x1b[0m\r\n[tmuxgate] observer ended${expired ? ': the unmask grant expired' : ''}\r\n`);
    await obs.ended();
  }
}

type ListFlags = { user?: string; role?: string; since?: string; until?: string; live?: boolean; json?: boolean };

/** `tmuxgate sessions list | kill | observe` */
export function sessionsCommand(): Command {
  const sessions = new Command('sessions').alias('session').description('list recorded sessions');
  sessions.addCommand(
    withCommon(new Command('list'))
      .description('list sessions with their recording state')
      .option('--user <user>')
      .option('--role <role>')
      .option('--since <time>', 'started at or after (ISO time, or 2h for two hours ago)')
      .option('--until <time>', 'started at or before')
      .option('--live', 'only sessions open now')
      .option('--json', 'JSON output')
      .addHelpText('after', example('tmuxgate sessions list --user alice --since 24h'))
      .action(
        handler(async (o: ListFlags, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            const since = o.since ? parseTime(o.since, '--since') : undefined;
            const until = o.until ? parseTime(o.until, '--until') : undefined;
            const rows = [];
            for (const s of await a.sessions.list({ user: o.user, role: o.role, live: o.live, since, until })) {
              const r = await a.recordings.get(s.id);
              rows.push({
                id: s.id,
                user: s.user_name,
                role: s.role_name,
                from: s.remote_addr,
                started: new Date(s.started_at).toISOString(),
                duration: s.ended_at ? formatOffset(s.ended_at - s.started_at) : 'live',
                state: s.state,
                // The node that talks to the client and records, and the one whose tmux server it is relayed to.
                node: s.node_id,
                serverNode: s.server_node_id,
                endReason: s.end_reason,
                recording: r?.purged_at ? 'purged' : (r?.state ?? 'none'),
                chunks: r?.chunks ?? 0,
              });
            }
            if (o.json) printJson(rows);
            else {
              const shown = rows.map((r) => ({ ...r, node: r.node === null ? '-' : r.serverNode ? `${r.node}>${r.serverNode}` : r.node }));
              printTable(shown, ['id', 'user', 'role', 'node', 'started', 'duration', 'state', 'recording', 'endReason']);
            }
            return EXIT.ok;
          }),
        ),
      ),
  );
  sessions.addCommand(
    withCommon(new Command('kill'))
      .description('end a live session; the user sees the reason (their tmux session keeps running)')
      .argument('<session-id>')
      .option('--reason <text>', 'shown to the user and audited', 'ended by an administrator')
      .addHelpText('after', example("tmuxgate sessions kill s_AbC123 --reason 'maintenance window'"))
      .action(
        handler(async (id: string, o: { reason: string }, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            await killSession(a, id, o.reason);
            process.stdout.write(`kill requested for ${id}; the gateway ends it within 2 s\n`);
            return EXIT.ok;
          }),
        ),
      ),
  );
  sessions.addCommand(
    withCommon(new Command('observe'))
      .description('watch a live session read-only (a tmux read-only client: cannot type or resize); Ctrl-\\ quits')
      .argument('<session-id>')
      .addHelpText('after', example('tmuxgate sessions observe s_AbC123   # leave with Ctrl-\\'))
      .action(
        handler(async (id: string, _o: unknown, cmd: Command) => {
          if (!process.stdout.isTTY) throw new TgError('TG_ERR_NOT_A_TTY', 'observe needs a terminal');
          return withAdmin(cmd, async (a) => {
            await runObserver(await openObservation(a, id));
            return EXIT.ok;
          });
        }),
      ),
  );
  return sessions;
}
