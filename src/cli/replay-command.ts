import { Command } from 'commander';
import { example, withCommon, configOf } from './common.js';
import { TgError } from '../errors.js';
import { openAdmin } from '../admin/context.js';
import { RecordingStream } from '../recording/stream.js';
import { formatOffset, parseOffset } from '../recording/asciicast.js';
import { playRecording, type PlayerIo } from '../recording/player.js';


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
      let rec: RecordingStream;
      try {
        rec = await RecordingStream.open(a, id);
        a.audit.emit(a.actor, { type: 'recording.access', action: 'replay', sessionId: id, detail: `from ${formatOffset(from)}` });
      } finally {
        a.close();
      }
      const stdin = process.stdin;
      const io: PlayerIo = {
        write: (d) => process.stdout.write(d),
        onceDrain: (fn) => void process.stdout.once('drain', fn),
        columns: () => process.stdout.columns ?? 80,
        onKey: (fn) => {
          if (stdin.isTTY) {
            stdin.setRawMode(true);
            stdin.resume();
            stdin.on('data', fn);
          }
        },
        interactive: stdin.isTTY === true,
        release: () => {
          if (stdin.isTTY) stdin.setRawMode(false);
          stdin.pause();
        },
      };
      try {
        await playRecording(io, rec, { speed, from, idleLimit });
      } finally {
        await rec.close();
      }
    });
}

