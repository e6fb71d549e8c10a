import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { openOutputFile } from './output-file.js';
import { example, withAdmin, withCommon, configOf } from './common.js';
import { printJson, printTable, printable } from './output.js';
import { TgError, EXIT } from '../errors.js';
import { parseDuration } from '../config/duration.js';
import { openAdmin, type AdminContext } from '../admin/context.js';
import { findRecording, openRecording, readRecordingFile } from '../recording/access.js';
import { verifyRecording, type VerifyResult } from '../recording/verify.js';
import { asciicastLines, formatOffset } from '../recording/asciicast.js';
import { searchFrames } from '../recording/search.js';
import { RecordingStream } from '../recording/stream.js';
import { loadAuditKey, AUDIT_PUB_FILE } from '../crypto/audit-key.js';
import path from 'node:path';
import { progress } from './progress.js';

/** "2026-11-23T10:00", "2026-11-23", or a duration meaning "that long ago" ("2h", "7d"). */
export function parseTime(v: string, flag: string, now = Date.now()): number {
  const d = parseDuration(v);
  if (d !== null && /[smhd]$/.test(v)) return now - d;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new TgError('TG_ERR_INVALID_ARGUMENT', `${flag}: not a time: ${v} (use 2026-11-23T10:00 or 2h for two hours ago)`);
  return t;
}

function access(a: AdminContext, action: 'replay' | 'export' | 'search' | 'verify' | 'list', sessionId: string | null, detail?: string): void {
  a.audit.emit(a.actor, { type: 'recording.access', action, sessionId, ...(detail ? { detail } : {}) });
}

/** `tmuxgate sessions ...` */
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
      .action((o: { user?: string; role?: string; since?: string; until?: string; live?: boolean; json?: boolean }, cmd: Command) =>
        withAdmin(cmd, (a) => {
          const rows = a.sessions
            .list({ user: o.user, role: o.role, live: o.live, since: o.since ? parseTime(o.since, '--since') : undefined, until: o.until ? parseTime(o.until, '--until') : undefined })
            .map((s) => {
              const r = a.recordings.get(s.id);
              return {
                id: s.id,
                user: s.user_name,
                role: s.role_name,
                from: s.remote_addr,
                started: new Date(s.started_at).toISOString(),
                duration: s.ended_at ? formatOffset(s.ended_at - s.started_at) : 'live',
                state: s.state,
                endReason: s.end_reason,
                recording: r?.state ?? 'none',
                chunks: r?.chunks ?? 0,
              };
            });
          if (o.json) printJson(rows);
          else printTable(rows, ['id', 'user', 'role', 'started', 'duration', 'state', 'recording', 'endReason']);
        }),
      ),
  );
  return sessions;
}

/** Verifies one recording with the master key (or only the public key). */
export function verifyOne(a: AdminContext, sessionId: string, publicKeyPem: string, withKey: boolean): VerifyResult {
  const { row } = findRecording(a, sessionId);
  let file: Buffer;
  try {
    file = readRecordingFile(row);
  } catch {
    return { sessionId, status: 'tampered', chunks: 0, decrypted: false, problem: { chunk: null, reason: 'truncated', detail: `recording file ${row.file} is missing` } };
  }
  let dataKey: Buffer | null = null;
  let keyError: string | undefined;
  if (withKey) {
    try {
      dataKey = a.recordings.dataKey(row, a.masterKeys);
    } catch (e) {
      keyError = `the data key does not open with this master key (${(e as Error).message})`;
    }
  }
  const sessionState = row.state === 'recording' ? 'live' : row.state === 'sealed' ? 'closed' : 'interrupted';
  return verifyRecording({ sessionId, file, dataKey, keyError, publicKeyPem, db: { sessionState, chunks: row.chunks, head: row.chain_head } });
}

export function verifyCommand(): Command {
  return withCommon(new Command('verify'))
    .description('check recordings for tampering: chain, signatures, and (with the master key) decryption')
    .argument('[session-id]')
    .option('--all', 'every recording')
    .option('--public-key <pem>', 'check chain and signatures with this audit public key only (no master key needed)')
    .option('--json', 'JSON output')
    .addHelpText('after', example('tmuxgate verify s_AbC123', 'tmuxgate verify --all --json', 'tmuxgate verify s_AbC123 --public-key audit_ed25519.pub.pem'))
    .action((id: string | undefined, o: { all?: boolean; publicKey?: string; json?: boolean }, cmd: Command) => {
      if (!id === !o.all) throw new TgError('TG_ERR_USAGE', 'give a session id or --all');
      const c = configOf(cmd);
      const a = openAdmin(c);
      try {
        const pem = o.publicKey ? readFileSync(o.publicKey, 'utf8') : readFileSync(path.join(c.paths.keysDir, AUDIT_PUB_FILE), 'utf8');
        const ids = o.all ? a.recordings.list().map((r) => r.session_id) : [id!];
        const bar = progress(ids.length, 'verify', !o.json);
        const results = ids.map((sid, i) => {
          const r = verifyOne(a, sid, pem, !o.publicKey);
          a.recordings.noteVerified(sid, r.status, a.clock.now());
          access(a, 'verify', sid, r.status);
          bar(i + 1);
          return r;
        });
        if (o.json) printJson(o.all ? results : results[0]);
        else
          for (const r of results) {
            const how = r.decrypted ? 'chain, signature and decryption' : 'chain and signature (public key only)';
            if (r.problem) process.stdout.write(`${printable(r.sessionId)}: TAMPERED: ${r.problem.reason}${r.problem.chunk !== null ? ` at chunk ${r.problem.chunk}` : ''}: ${printable(r.problem.detail)}\n`);
            else if (r.status === 'intact') process.stdout.write(`${r.sessionId}: intact: ${r.chunks} chunks, signed trailer verifies (${how})\n`);
            else process.stdout.write(`${r.sessionId}: ${r.status}: ${r.chunks} chunks intact up to the last flush; unsealed because the session ${r.status === 'live' ? 'is still open' : 'was interrupted (gateway stopped or recording failed)'}, not tampered\n`);
          }
        process.exitCode = results.some((r) => r.status === 'tampered') ? EXIT.integrity : EXIT.ok;
      } finally {
        a.close();
      }
    });
}

export function exportCommand(): Command {
  return withCommon(new Command('export'))
    .description('export a recording for standard players: the raw output stream as recorded, escape sequences included (unfiltered evidence; `replay` shows only a safe terminal subset)')
    .argument('<session-id>')
    .option('--format <format>', 'asciicast (v2)', 'asciicast')
    .option('-o, --output <file>', 'write here instead of stdout (a new file, 0600; an existing one is refused)')
    .option('--force', 'with -o: replace an existing file (by a new one, never through a symlink)')
    .addHelpText('after', example('tmuxgate export s_AbC123 -o session.cast && asciinema play session.cast'))
    .action(async (id: string, o: { format: string; output?: string; force?: boolean }, cmd: Command) => {
      if (o.format !== 'asciicast') throw new TgError('TG_ERR_INVALID_ARGUMENT', `--format: unknown format ${o.format} (supported: asciicast)`);
      const a = openAdmin(configOf(cmd));
      try {
        const rec = openRecording(a, id);
        access(a, 'export', id, o.output ? `to ${o.output}` : 'to stdout');
        const file = o.output ? openOutputFile(o.output, o.force ?? false) : null;
        const out: NodeJS.WritableStream = file?.stream ?? process.stdout;
        try {
          for (const line of asciicastLines(rec.header, rec.frames, `tmuxgate ${id} ${rec.session.user_name}+${rec.session.role_name}`)) {
            if (!out.write(line + '\n')) await new Promise<void>((r) => out.once('drain', () => r()));
          }
          await file?.commit();
        } catch (e) {
          file?.abort();
          throw e;
        }
      } finally {
        a.close();
      }
    });
}

export function searchCommand(): Command {
  return withCommon(new Command('search'))
    .description('find sessions and times where TEXT appeared on screen')
    .argument('<text>')
    .option('--user <user>')
    .option('--role <role>')
    .option('--since <time>')
    .option('--until <time>')
    .option('--regex', 'TEXT is a regular expression')
    .option('--json', 'JSON output')
    .addHelpText('after', example("tmuxgate search 'DROP TABLE' --since 7d", 'tmuxgate replay s_AbC123 --from 12:30'))
    .action(async (text: string, o: { user?: string; role?: string; since?: string; until?: string; regex?: boolean; json?: boolean }, cmd: Command) => {
      let re: RegExp | null = null;
      if (o.regex) {
        try {
          re = new RegExp(text);
        } catch (e) {
          throw new TgError('TG_ERR_INVALID_ARGUMENT', `--regex: ${(e as Error).message}`);
        }
      }
      const match = re ? (l: string) => re!.test(l) : (l: string) => l.includes(text);
      const a = openAdmin(configOf(cmd));
      try {
        const sessions = a.sessions.list({ user: o.user, role: o.role, since: o.since ? parseTime(o.since, '--since') : undefined, until: o.until ? parseTime(o.until, '--until') : undefined }).filter((s) => a.recordings.get(s.id));
        const bar = progress(sessions.length, 'search', !o.json);
        const results: { session: string; user: string; role: string; offset: string; offsetMs: number; line: string }[] = [];
        for (const [i, s] of sessions.entries()) {
          access(a, 'search', s.id, `text ${JSON.stringify(text).slice(0, 100)}`);
          try {
            const rec = await RecordingStream.open(a, s.id);
            let found;
            try {
              found = await searchFrames(rec.header, rec.all(), match);
            } finally {
              await rec.close();
            }
            for (const h of found) {
              results.push({ session: s.id, user: s.user_name, role: s.role_name, offset: formatOffset(h.offsetMs), offsetMs: h.offsetMs, line: h.line });
            }
          } catch (e) {
            process.stderr.write(`tmuxgate: ${s.id}: skipped: ${printable((e as Error).message)}\n`);
          }
          bar(i + 1);
        }
        if (o.json) printJson(results);
        else printTable(results, ['session', 'user', 'role', 'offset', 'line']);
      } finally {
        a.close();
      }
    });
}

/** `tmuxgate audit pubkey` (the rest of `audit` lives with the audit commands). */
export function auditPubkeyCommand(): Command {
  return withCommon(new Command('pubkey'))
    .description('print the audit public key: verifies recording trailers and audit checkpoints without decrypting')
    .addHelpText('after', example('tmuxgate audit pubkey > audit.pub.pem && tmuxgate verify --all --public-key audit.pub.pem'))
    .action((_o, cmd: Command) => {
      const c = configOf(cmd);
      try {
        process.stdout.write(readFileSync(path.join(c.paths.keysDir, AUDIT_PUB_FILE), 'utf8'));
      } catch {
        process.stdout.write(loadAuditKey(c.paths.keysDir).publicKeyPem);
      }
    });
}
