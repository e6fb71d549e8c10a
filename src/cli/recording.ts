import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { openOutputFile } from './output-file.js';
import { example, handler, parseTime, withAdmin, withCommon } from './common.js';
import { printJson, printTable, printable } from './output.js';
import { progress } from './progress.js';
import { EXIT, TgError } from '../errors.js';
import { exportRecording, openReplay, searchQuery, searchRecordings, verifyRecordings } from '../admin/recordings.js';
import { formatOffset, parseOffset } from '../recording/asciicast.js';
import { playRecording, type PlayerIo } from '../recording/player.js';
import type { VerifyResult } from '../recording/verify.js';
import { AUDIT_PUB_FILE } from '../crypto/audit-key.js';
import { formatRetention } from '../config/duration.js';
import { verifyRecordingsOffsite } from '../admin/offsite.js';
import { offsiteLines } from './offsite-output.js';

/** This terminal as the player sees it: raw keys while playing, given back on release. */
function terminalIo(): PlayerIo {
  const stdin = process.stdin;
  return {
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
}

/** `tmuxgate replay ID`: plays a recording in this terminal at its recorded size. */
function replayCommand(): Command {
  return withCommon(new Command('replay'))
    .description('play a recording in this terminal, identifiers masked (space pause, left/right 5 s, +/- speed, q quit)')
    .argument('<session-id>')
    .option('--speed <x>', 'playback speed', '1')
    .option('--from <offset>', 'start at mm:ss or h:mm:ss')
    .option('--idle-limit <seconds>', 'compress pauses longer than this')
    .addHelpText('after', example('tmuxgate replay s_AbC123', 'tmuxgate replay s_AbC123 --from 12:30 --speed 4 --idle-limit 2'))
    .action(
      handler(async (id: string, o: { speed: string; from?: string; idleLimit?: string }, cmd: Command) => {
        if (!process.stdout.isTTY) throw new TgError('TG_ERR_NOT_A_TTY', 'replay needs a terminal; to save a recording use: tmuxgate export ID -o FILE');
        const speed = Number(o.speed);
        if (!(speed > 0 && speed <= 1000)) throw new TgError('TG_ERR_INVALID_ARGUMENT', '--speed must be a number between 0 and 1000');
        const from = o.from ? parseOffset(o.from) : 0;
        if (from === null) throw new TgError('TG_ERR_INVALID_ARGUMENT', `--from: not an offset: ${o.from} (use 12:30)`);
        const idleLimit = o.idleLimit ? Number(o.idleLimit) * 1000 : Infinity;
        if (!(idleLimit > 0)) throw new TgError('TG_ERR_INVALID_ARGUMENT', '--idle-limit must be a positive number of seconds');
        // The store is closed before playing: the stream holds the file and the data key only.
        const { rec, view, onGrantExpiry } = await withAdmin(cmd, (a) => openReplay(a, id, from));
        // Unmasked under a grant: the replay ends when the grant expires, as if q was pressed.
        const io = terminalIo();
        let expired = false;
        let cancelExpiry = () => {};
        const onKey = io.onKey;
        io.onKey = (fn) => {
          onKey(fn);
          cancelExpiry = onGrantExpiry(() => {
            expired = true;
            fn(Buffer.from('q'));
          });
        };
        try {
          await playRecording(io, rec, { speed, from, idleLimit, view });
        } finally {
          cancelExpiry();
          view?.dispose();
          await rec.close();
        }
        if (expired) process.stdout.write('tmuxgate: the unmask grant expired: replay ended\n');
        return EXIT.ok;
      }),
    );
}

/** `tmuxgate export ID`: the raw output stream as asciicast v2, to stdout or a new 0600 file. */
function exportCommand(): Command {
  return withCommon(new Command('export'))
    .description(
      'export a recording for standard players, identifiers masked: the screen as redacted redraws, keystrokes left out ' +
        '(the recording itself is unchanged; an unmask grant exports the recorded stream)',
    )
    .argument('<session-id>')
    .option('--format <format>', 'asciicast (v2)', 'asciicast')
    .option('-o, --output <file>', 'write here instead of stdout (a new file, 0600; an existing one is refused)')
    .option('--force', 'with -o: replace an existing file (by a new one, never through a symlink)')
    .addHelpText('after', example('tmuxgate export s_AbC123 -o session.cast && asciinema play session.cast'))
    .action(
      handler(async (id: string, o: { format: string; output?: string; force?: boolean }, cmd: Command) => {
        if (o.format !== 'asciicast') throw new TgError('TG_ERR_INVALID_ARGUMENT', `--format: unknown format ${o.format} (supported: asciicast)`);
        return withAdmin(cmd, async (a) => {
          const lines = await exportRecording(a, id, o.output ? `to ${o.output}` : 'to stdout');
          const file = o.output ? openOutputFile(o.output, o.force ?? false) : null;
          const out: NodeJS.WritableStream = file?.stream ?? process.stdout;
          try {
            for await (const line of lines) {
              if (!out.write(line + '\n')) await new Promise<void>((r) => out.once('drain', () => r()));
            }
            await file?.commit();
          } catch (e) {
            file?.abort();
            throw e;
          }
          return EXIT.ok;
        });
      }),
    );
}

type SearchFlags = { user?: string; role?: string; since?: string; until?: string; regex?: boolean; json?: boolean };

/** `tmuxgate search TEXT`: sessions and offsets where TEXT appeared on screen. */
function searchCommand(): Command {
  return withCommon(new Command('search'))
    .description('find sessions and times where TEXT appeared on screen (found in the recorded text; lines shown with identifiers masked)')
    .argument('<text>')
    .option('--user <user>')
    .option('--role <role>')
    .option('--since <time>')
    .option('--until <time>')
    .option('--regex', 'TEXT is a regular expression')
    .option('--json', 'JSON output')
    .addHelpText('after', example("tmuxgate search 'DROP TABLE' --since 7d", 'tmuxgate replay s_AbC123 --from 12:30'))
    .action(
      handler(async (text: string, o: SearchFlags, cmd: Command) => {
        const query = searchQuery(text, o.regex === true);
        return withAdmin(cmd, async (a) => {
          const since = o.since ? parseTime(o.since, '--since') : undefined;
          const until = o.until ? parseTime(o.until, '--until') : undefined;
          let bar: ((done: number) => void) | null = null;
          const hits = await searchRecordings(a, { user: o.user, role: o.role, since, until }, query, {
            progress: (done, total) => (bar ??= progress(total, 'search', !o.json))(done),
            skipped: (sessionId, message) => process.stderr.write(`tmuxgate: ${sessionId}: skipped: ${printable(message)}\n`),
          });
          const rows = hits.map((h) => {
            const { session, user, role, offsetMs, line, redacted } = h;
            return { session, user, role, offset: formatOffset(offsetMs), offsetMs, line, redacted };
          });
          if (o.json) printJson(rows);
          else printTable(rows, ['session', 'user', 'role', 'offset', 'line']);
          return EXIT.ok;
        });
      }),
    );
}

/** One human line per verdict. */
function verdictLine(r: VerifyResult): string {
  const how = r.decrypted ? 'chain, signature and decryption' : 'chain and signature (public key only)';
  if (r.problem) {
    const at = r.problem.chunk !== null ? ` at chunk ${r.problem.chunk}` : '';
    return `${printable(r.sessionId)}: TAMPERED: ${r.problem.reason}${at}: ${printable(r.problem.detail)}`;
  }
  if (r.status === 'intact') return `${r.sessionId}: intact: ${r.chunks} chunks, signed trailer verifies (${how})`;
  if (r.status === 'purged' && r.tombstone) {
    const t = r.tombstone;
    const iso = (x: number) => new Date(x).toISOString();
    return (
      `${r.sessionId}: purged (signed tombstone): audit row ${t.auditId}, purged ${iso(t.purgedAt)} by ${printable(t.by)}: ${printable(t.reason)}; ` +
      `${t.chunks} chunks ending ${t.finalHash.slice(0, 12)}; role ${printable(t.role)}, retention ${formatRetention(t.retentionMs)}, ` +
      `ended ${iso(t.endedAt)}, expired ${iso(t.expiresAt)}; signature verifies with the audit public key`
    );
  }
  const why = r.status === 'live' ? 'is still open' : 'was interrupted (gateway stopped or recording failed)';
  return `${r.sessionId}: ${r.status}: ${r.chunks} chunks intact up to the last flush; unsealed because the session ${why}, not tampered`;
}

/** The --all summary: purged recordings are counted apart from intact and tampered ones. */
function verifySummary(results: VerifyResult[]): string {
  const n = (s: VerifyResult['status']) => results.filter((r) => r.status === s).length;
  return (
    `${results.length} recordings: ${n('intact')} intact, ${n('live') + n('interrupted')} unsealed (live or interrupted), ` +
    `${n('purged')} purged (signed tombstone), ${n('tampered')} tampered`
  );
}

/** `tmuxgate verify ID | --all`: tamper check; exit 5 when any recording is tampered. */
function verifyCommand(): Command {
  return withCommon(new Command('verify'))
    .description('check recordings for tampering: chain, signatures, and (with the master key) decryption')
    .argument('[session-id]')
    .option('--all', 'every recording')
    .option('--public-key <pem>', 'check chain and signatures with this audit public key only (no master key needed)')
    .option('--offsite', 'compare with the off-box copies (evidence.recordings sinks): names recordings deleted, cut or altered locally, and gaps off the box')
    .option('--json', 'JSON output')
    .addHelpText(
      'after',
      example(
        'tmuxgate verify s_AbC123',
        'tmuxgate verify --all --json',
        'tmuxgate verify s_AbC123 --public-key audit_ed25519.pub.pem',
        'tmuxgate verify --offsite --all',
      ),
    )
    .action(
      handler(async (id: string | undefined, o: { all?: boolean; publicKey?: string; json?: boolean; offsite?: boolean }, cmd: Command) => {
        if (!id === !o.all) throw new TgError('TG_ERR_USAGE', 'give a session id or --all');
        return withAdmin(cmd, async (a) => {
          const pem = readFileSync(o.publicKey ?? path.join(a.config.paths.keysDir, AUDIT_PUB_FILE), 'utf8');
          let bar: ((done: number) => void) | null = null;
          if (o.offsite) {
            const onProgress = (done: number, total: number) => (bar ??= progress(total, 'verify', !o.json))(done);
            const verdicts = await verifyRecordingsOffsite(a, o.all ? null : id!, pem, { progress: onProgress });
            if (o.json) printJson(verdicts);
            else process.stdout.write(offsiteLines(verdicts));
            return verdicts.some((v) => v.status === 'differs') ? EXIT.integrity : EXIT.ok;
          }
          const results = await verifyRecordings(a, o.all ? null : id!, pem, !o.publicKey, (done, total) => (bar ??= progress(total, 'verify', !o.json))(done));
          if (o.json) printJson(o.all ? results : results[0]);
          else {
            for (const r of results) process.stdout.write(verdictLine(r) + '\n');
            if (o.all) process.stdout.write(verifySummary(results) + '\n');
          }
          return results.some((r) => r.status === 'tampered') ? EXIT.integrity : EXIT.ok;
        });
      }),
    );
}

/** The top-level recording commands: replay, export, search, verify. */
export function recordingCommands(): Command[] {
  return [replayCommand(), exportCommand(), searchCommand(), verifyCommand()];
}
