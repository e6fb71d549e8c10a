import { Command } from 'commander';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { example, handler, withAdmin, withCommon } from './common.js';
import { printJson, printTable, printable } from './output.js';
import { EXIT, TgError } from '../errors.js';
import { formatRetention } from '../config/duration.js';
import { AUDIT_KEY_FILE, loadAuditKey, type Signer } from '../crypto/audit-key.js';
import type { AdminContext } from '../admin/context.js';
import { listRetention, placeHold, purgeExpired, purgeRecording, releaseHolds, type PurgeRun } from '../admin/retention.js';

const iso = (t: number | null) => (t === null ? '-' : new Date(t).toISOString());

/** The audit signing key, which a purge needs for its tombstone (never created here). */
function auditSigner(a: AdminContext): Signer {
  const file = path.join(a.config.paths.keysDir, AUDIT_KEY_FILE);
  if (!existsSync(file)) {
    throw new TgError('TG_ERR_KEY_UNREADABLE', `no audit signing key at ${file}: a purge signs its tombstone with it (tmuxgate init creates it)`);
  }
  return loadAuditKey(a.config.paths.keysDir);
}

/** `tmuxgate recordings list`: recordings with their retention, holds and purge state. */
function listCommand(): Command {
  return withCommon(new Command('list'))
    .description('list recordings with retention: when each expires, holds, purges')
    .option('--expired', 'only recordings past their retention (held ones included, marked held)')
    .option('--held', 'only recordings with a legal hold standing')
    .option('--json', 'JSON output (with every hold, standing or released)')
    .addHelpText('after', example('tmuxgate recordings list --expired', 'tmuxgate recordings list --held --json'))
    .action(
      handler(async (o: { expired?: boolean; held?: boolean; json?: boolean }, cmd: Command) =>
        withAdmin(cmd, async (a) => {
          const views = await listRetention(a, { expired: o.expired, held: o.held });
          if (o.json) {
            const holds = await a.recordings.holds();
            printJson(
              views.map((v) => ({
                ...v,
                endedAt: v.endedAt === null ? null : iso(v.endedAt),
                expiresAt: v.expiresAt === null ? null : iso(v.expiresAt),
                purgedAt: v.purgedAt === null ? null : iso(v.purgedAt),
                retention: formatRetention(v.retentionMs),
                holdList: holds
                  .filter((h) => h.session_id === v.sessionId)
                  .map((h) => ({
                    id: h.id,
                    reason: h.reason,
                    placedBy: h.placed_by,
                    placedAt: iso(h.placed_at),
                    releasedAt: h.released_at === null ? null : iso(h.released_at),
                    releasedBy: h.released_by,
                    releaseReason: h.release_reason,
                  })),
              })),
            );
          } else {
            const rows = views.map((v) => ({
              session: v.sessionId,
              user: v.user,
              role: v.role,
              status: v.status,
              ended: iso(v.endedAt),
              retention: formatRetention(v.retentionMs),
              expires: v.status === 'purged' ? `purged ${iso(v.purgedAt)}` : iso(v.expiresAt),
              holds: v.holds,
            }));
            printTable(rows, ['session', 'user', 'role', 'status', 'ended', 'retention', 'expires', 'holds']);
          }
          return EXIT.ok;
        }),
      ),
    );
}

/** `tmuxgate recordings hold ID --reason TEXT` */
function holdCommand(): Command {
  return withCommon(new Command('hold'))
    .description('place a legal hold: the recording is never purged while it stands (audited)')
    .argument('<session-id>')
    .requiredOption('--reason <text>', 'why (a case or matter number): kept with the hold and in the audit log')
    .addHelpText('after', example("tmuxgate recordings hold s_AbC123 --reason 'litigation hold, matter 2026-114'"))
    .action(
      handler(async (id: string, o: { reason: string }, cmd: Command) =>
        withAdmin(cmd, async (a) => {
          const h = await placeHold(a, id, o.reason);
          process.stdout.write(`hold ${h.id} placed on ${id} by ${printable(h.placed_by)}: ${printable(h.reason)}\n`);
          return EXIT.ok;
        }),
      ),
    );
}

/** `tmuxgate recordings release ID [--hold N | --all] [--reason TEXT]` */
function releaseCommand(): Command {
  return withCommon(new Command('release'))
    .description('release a legal hold (the only one standing, the one named, or all; audited)')
    .argument('<session-id>')
    .option('--hold <id>', 'the hold to release (see: tmuxgate recordings list --held --json)')
    .option('--all', 'every hold standing on the recording')
    .option('--reason <text>', 'why: kept with the hold and in the audit log')
    .addHelpText('after', example("tmuxgate recordings release s_AbC123 --hold 4 --reason 'matter 2026-114 closed'"))
    .action(
      handler(async (id: string, o: { hold?: string; all?: boolean; reason?: string }, cmd: Command) => {
        if (o.hold !== undefined && o.all) throw new TgError('TG_ERR_USAGE', 'give --hold ID or --all, not both');
        const holdId = o.hold === undefined ? undefined : Number(o.hold);
        if (holdId !== undefined && !(Number.isInteger(holdId) && holdId > 0)) throw new TgError('TG_ERR_INVALID_ARGUMENT', `--hold: not a hold id: ${o.hold}`);
        return withAdmin(cmd, async (a) => {
          const released = await releaseHolds(a, id, { holdId, all: o.all }, o.reason ?? null);
          process.stdout.write(`released hold${released.length > 1 ? 's' : ''} ${released.join(', ')} on ${id}\n`);
          return EXIT.ok;
        });
      }),
    );
}

/** What a purge did, one line per recording. */
function printRun(run: PurgeRun, dryRun: boolean): void {
  const out = (s: string) => process.stdout.write(s + '\n');
  for (const v of run.wouldPurge) {
    const rule = `role ${printable(v.role)}, retention ${formatRetention(v.retentionMs)}`;
    out(`would purge ${v.sessionId}: ${rule}, ended ${iso(v.endedAt)}, expired ${iso(v.expiresAt)}`);
  }
  for (const p of run.purged) {
    const t = p.tombstone;
    const file = p.fileRemoved ? 'local file removed' : `LOCAL FILE NOT REMOVED: ${printable(p.fileProblem)}`;
    out(
      `purged ${p.sessionId}: data key destroyed, ${file}; signed tombstone in audit row ${p.auditId} ` +
        `(${t.chunks} chunks ending ${t.finalHash.slice(0, 12)}, role ${printable(t.role)}, ` +
        `retention ${formatRetention(t.retentionMs)}, expired ${iso(t.expiresAt)})`,
    );
  }
  for (const s of run.skipped) out(`kept ${s.sessionId}: ${printable(s.why)}`);
  for (const v of run.held) out(`held ${v.sessionId}: past retention, ${v.holds} hold(s) standing: not purged`);
  if (!run.scrubbed) out('warning: the store could not truncate its write-ahead log now (a reader was busy); old page images go at its next checkpoint');
  const n = dryRun ? `${run.wouldPurge.length} would be purged (dry run: nothing changed)` : `${run.purged.length} purged`;
  out(`${n}, ${run.held.length} held, ${run.skipped.length} kept by a change during the run`);
}

/** `tmuxgate recordings purge --expired [--dry-run] | ID --reason TEXT` */
function purgeCommand(): Command {
  return withCommon(new Command('purge'))
    .description(
      'destroy recordings past retention with no hold standing: the wrapped data key first (no copy of the file can be decrypted ' +
        'after), then the local file; each leaves a signed tombstone in the audit chain',
    )
    .argument('[session-id]', 'one expired recording (needs --reason)')
    .option('--expired', 'every recording past retention and not held')
    .option('--dry-run', 'with --expired: list what would be purged and change nothing')
    .option('--reason <text>', 'why (kept in the tombstone); with --expired, default "retention period ended"')
    .option('--json', 'JSON output')
    .addHelpText(
      'after',
      example(
        'tmuxgate recordings purge --expired --dry-run',
        'tmuxgate recordings purge --expired',
        "tmuxgate recordings purge s_AbC123 --reason 'retention ended'",
      ),
    )
    .action(
      handler(async (id: string | undefined, o: { expired?: boolean; dryRun?: boolean; reason?: string; json?: boolean }, cmd: Command) => {
        if (!id === !o.expired) throw new TgError('TG_ERR_USAGE', 'give a session id or --expired');
        if (id && o.dryRun) throw new TgError('TG_ERR_USAGE', '--dry-run goes with --expired');
        if (id && o.reason === undefined) throw new TgError('TG_ERR_USAGE', 'purging one recording needs --reason');
        return withAdmin(cmd, async (a) => {
          const run = id
            ? await purgeRecording(a, id, o.reason!, auditSigner(a))
            : await purgeExpired(a, { dryRun: o.dryRun ?? false, reason: o.reason }, o.dryRun ? null : auditSigner(a));
          if (o.json) printJson(run);
          else printRun(run, o.dryRun ?? false);
          return EXIT.ok;
        });
      }),
    );
}

/** `tmuxgate recordings list | hold | release | purge` */
export function recordingsCommand(): Command {
  const c = new Command('recordings').description('retention, legal holds and provable deletion of recordings');
  for (const sub of [listCommand(), holdCommand(), releaseCommand(), purgeCommand()]) c.addCommand(sub);
  return c;
}
