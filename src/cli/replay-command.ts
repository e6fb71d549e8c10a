import { Command } from 'commander';
import { example, withCommon, configOf } from './common.js';
import { TgError } from '../errors.js';
import { openAdmin } from '../admin/context.js';
import { openRecording } from '../recording/access.js';
import { formatOffset, parseOffset } from '../recording/asciicast.js';
import { buildKeyframes, screenAt } from '../recording/player.js';
import { readResize } from '../recording/format.js';

const CSI = '\x1b[';

/**
 * Whether a stream of terminal output ends between sequences (not inside an escape sequence or a
 * UTF-8 character). Recorded frames are raw pty reads and may split both; the status line may
 * only be drawn at a clean point or it would corrupt the replayed screen.
 */
export function endsClean(b: Buffer): boolean {
  // UTF-8: a lead byte near the end without all its continuation bytes.
  for (let i = Math.max(0, b.length - 3); i < b.length; i++) {
    const c = b[i]!;
    const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    if (need > 1 && i + need > b.length) return false;
  }
  const esc = b.lastIndexOf(0x1b);
  if (esc < 0) return true;
  const rest = b.subarray(esc + 1);
  if (rest.length === 0) return false;
  const kind = rest[0]!;
  if (kind === 0x5b) {
    for (let i = 1; i < rest.length; i++) if (rest[i]! >= 0x40 && rest[i]! <= 0x7e) return true;
    return false;
  }
  if (kind === 0x5d || kind === 0x50 || kind === 0x5f) return rest.includes(0x07) || rest.includes(0x5c);
  if (kind === 0x28 || kind === 0x29 || kind === 0x23) return rest.length >= 2;
  return true;
}

/** `tmuxgate replay ID`: plays a recording in this terminal at its recorded size. */
export function replayCommand(): Command {
  return withCommon(new Command('replay'))
    .description('play a recording in this terminal (space pause, left/right 5 s, +/- speed, q quit)')
    .argument('<session-id>')
    .option('--speed <x>', 'playback speed', '1')
    .option('--from <offset>', 'start at mm:ss or h:mm:ss')
    .option('--idle-limit <seconds>', 'compress pauses longer than this')
    .addHelpText('after', example('tmuxgate replay s_AbC123', 'tmuxgate replay s_AbC123 --from 12:30 --speed 4 --idle-limit 2'))
    .action(async (id: string, o: { speed: string; from?: string; idleLimit?: string }, cmd: Command) => {
      if (!process.stdout.isTTY) throw new TgError('TG_ERR_NOT_A_TTY', 'replay needs a terminal; to save a recording use: tmuxgate export ID -o FILE');
      let speed = Number(o.speed);
      if (!(speed > 0 && speed <= 1000)) throw new TgError('TG_ERR_INVALID_ARGUMENT', '--speed must be a number between 0 and 1000');
      const from = o.from ? parseOffset(o.from) : 0;
      if (from === null) throw new TgError('TG_ERR_INVALID_ARGUMENT', `--from: not an offset: ${o.from} (use 12:30)`);
      const idleLimit = o.idleLimit ? Number(o.idleLimit) * 1000 : Infinity;
      if (!(idleLimit > 0)) throw new TgError('TG_ERR_INVALID_ARGUMENT', '--idle-limit must be a positive number of seconds');
      const a = openAdmin(configOf(cmd));
      let rec;
      try {
        rec = openRecording(a, id);
        a.audit.emit(a.actor, { type: 'recording.access', action: 'replay', sessionId: id, detail: `from ${formatOffset(from)}` });
      } finally {
        a.close();
      }
      const frames = rec.frames.filter((f) => f.kind === 'output' || f.kind === 'resize');
      const keys = await buildKeyframes(frames, rec.header.cols, rec.header.rows);
      const duration = rec.durationMs;
      await play({ frames, keys, duration, speed, from: Math.min(from, duration), idleLimit, rows: rec.header.rows, title: `${id} ${rec.session.user_name}+${rec.session.role_name}` });
    });
}

interface PlayInput {
  frames: ReturnType<typeof Array.prototype.slice>;
  keys: Awaited<ReturnType<typeof buildKeyframes>>;
  duration: number;
  speed: number;
  from: number;
  idleLimit: number;
  rows: number;
  title: string;
}

function play(p: PlayInput): Promise<void> {
  const out = process.stdout;
  const stdin = process.stdin;
  let pos = p.from;
  let speed = p.speed;
  let paused = false;
  let index = 0;
  let rows = p.rows;
  let timer: NodeJS.Timeout | null = null;
  let wallAnchor = Date.now();
  let posAnchor = pos;
  let done = false;
  let clean = true;
  const frames = p.frames as { t: number; kind: string; data: Buffer }[];

  const status = () => {
    const state = done ? 'end: q to quit' : paused ? 'paused' : 'playing';
    const line = ` ${formatOffset(pos)} / ${formatOffset(p.duration)}  ${speed}x  ${state}  [space] pause [</>] 5s [+/-] speed [q] quit  ${p.title}`;
    out.write(`\x1b7${CSI}${rows + 1};1H${CSI}0m${CSI}7m${line.slice(0, Math.max(20, (out.columns ?? 80) - 1))}${CSI}K${CSI}0m\x1b8`);
  };

  const seek = async (t: number) => {
    pos = Math.max(0, Math.min(p.duration, t));
    const s = await screenAt(frames as never, p.keys, pos);
    index = s.index;
    rows = s.rows;
    out.write(`${CSI}r${CSI}H${CSI}2J${s.text}`);
    wallAnchor = Date.now();
    posAnchor = pos;
    done = index >= frames.length;
    status();
  };

  const schedule = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (paused || done) return;
    const f = frames[index];
    if (!f) {
      pos = p.duration;
      done = true;
      status();
      if (!stdin.isTTY) finish();
      return;
    }
    const gap = Math.min(Math.max(0, f.t - pos), p.idleLimit);
    timer = setTimeout(() => {
      // Apply every frame due now in one write: fast output stays fast on replay.
      pos = Math.max(pos, Math.min(f.t, pos + gap));
      let chunk = '';
      while (index < frames.length && frames[index]!.t <= pos + 1) {
        const g = frames[index]!;
        if (g.kind === 'output') chunk += g.data.toString('latin1');
        else rows = readResize(g.data).rows;
        index++;
      }
      if (chunk) {
        const bytes = Buffer.from(chunk, 'latin1');
        out.write(bytes);
        clean = endsClean(bytes);
      }
      if (clean) status();
      schedule();
    }, gap / speed);
  };

  let resolveDone: () => void = () => {};
  const finish = () => {
    if (timer) clearTimeout(timer);
    if (stdin.isTTY) stdin.setRawMode(false);
    stdin.pause();
    out.write(`${CSI}r${CSI}${rows + 2};1H${CSI}0m\n`);
    resolveDone();
  };

  const onKey = (k: Buffer) => {
    const s = k.toString();
    if (s === 'q' || s === '\x03') return finish();
    if (s === ' ') {
      paused = !paused;
      if (!paused) done = index >= frames.length;
      status();
      schedule();
    } else if (s === '\x1b[C' || s === '\x1b[D') {
      void seek(pos + (s === '\x1b[C' ? 5000 : -5000)).then(schedule);
    } else if (s === '+' || s === '=') {
      speed = Math.min(64, speed * 2);
      status();
      schedule();
    } else if (s === '-') {
      speed = Math.max(0.125, speed / 2);
      status();
      schedule();
    }
    void wallAnchor;
    void posAnchor;
  };

  return new Promise<void>((resolve) => {
    resolveDone = resolve;
    if (stdin.isTTY) {
      stdin.setRawMode(true);
      stdin.resume();
      stdin.on('data', onKey);
    }
    void seek(p.from).then(schedule);
  });
}
