import { Command } from 'commander';
import { createWriteStream, readFileSync } from 'node:fs';
import path from 'node:path';
import { configOf, example, handler, parseTime, withAdmin, withCommon } from './common.js';
import { printJson, printable } from './output.js';
import { safeJson } from '../platform/text.js';
import { EXIT, TgError } from '../errors.js';
import { readAudit, type AuditRow } from '../audit/log.js';
import { verifyAuditLog } from '../audit/verify.js';
import { jsonLine, syslogLine } from '../audit/export.js';
import { AUDIT_PUB_FILE, loadAuditKey } from '../crypto/audit-key.js';
import { verifyAuditOffsite } from '../admin/offsite.js';
import { offsiteLines } from './offsite-output.js';

/** How often `audit tail -f` looks for new events. */
const FOLLOW_MS = 500;

/** One human line per audit row. */
function humanLine(r: AuditRow): string {
  const data = JSON.parse(r.data) as Record<string, unknown>;
  const kv = Object.entries(data)
    .map(([k, v]) => `${printable(k)}=${typeof v === 'string' ? (/\s/.test(v) ? safeJson(v) : printable(v)) : safeJson(v)}`)
    .join(' ');
  // Details carry user-controlled text (refused env names, key comments): escaped, never raw.
  return `${new Date(r.ts).toISOString()} #${r.id} ${printable(r.type)} actor=${printable(r.actor)} ${kv}`;
}

/** Resolves on the first SIGINT or SIGTERM. */
function interrupted(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}

/** `tmuxgate audit pubkey | tail | verify | export` */
export function auditCommand(): Command {
  const audit = new Command('audit').description('the hash-chained audit log and its keys');
  audit.addCommand(
    withCommon(new Command('pubkey'))
      .description('print the audit public key: verifies recording trailers and audit checkpoints without decrypting')
      .addHelpText('after', example('tmuxgate audit pubkey > audit.pub.pem && tmuxgate verify --all --public-key audit.pub.pem'))
      .action(
        handler(async (_o: unknown, cmd: Command) => {
          const c = configOf(cmd);
          try {
            process.stdout.write(readFileSync(path.join(c.paths.keysDir, AUDIT_PUB_FILE), 'utf8'));
          } catch {
            process.stdout.write(loadAuditKey(c.paths.keysDir).publicKeyPem);
          }
          return EXIT.ok;
        }),
      ),
  );
  audit.addCommand(
    withCommon(new Command('tail'))
      .description('the latest audit events; -f keeps following')
      .option('-n, --lines <n>', 'how many', '20')
      .option('-f, --follow', 'keep printing new events')
      .option('--json', 'one JSON object per line')
      .addHelpText('after', example('tmuxgate audit tail -n 50', 'tmuxgate audit tail -f --json'))
      .action(
        handler(async (o: { lines: string; follow?: boolean; json?: boolean }, cmd: Command) => {
          const n = Number(o.lines);
          if (!Number.isInteger(n) || n < 0) throw new TgError('TG_ERR_INVALID_ARGUMENT', '--lines must be a whole number');
          return withAdmin(cmd, async (a) => {
            let last = 0;
            const show = (rows: AuditRow[]) => {
              for (const r of rows) {
                process.stdout.write((o.json ? jsonLine(r) : humanLine(r)) + '\n');
                last = r.id;
              }
            };
            show(await readAudit(a.auditEvents, { limit: n }));
            if (!o.follow) return EXIT.ok;
            last = Math.max(last, await a.auditEvents.maxId());
            let reading = false;
            const t = setInterval(() => {
              if (reading) return;
              reading = true;
              readAudit(a.auditEvents, { sinceId: last })
                .then(show, (e: Error) => process.stderr.write(`tmuxgate: ${e.message}\n`))
                .finally(() => (reading = false));
            }, FOLLOW_MS);
            await interrupted();
            clearInterval(t);
            return EXIT.ok;
          });
        }),
      ),
  );
  audit.addCommand(
    withCommon(new Command('verify'))
      .description('check the hash chain and the signed checkpoints: names an edited, deleted, inserted or reordered row, or a cut tail')
      .option('--public-key <pem>', 'audit public key (default: keysDir/audit_ed25519.pub.pem)')
      .option('--offsite', "compare with the off-box copies instead: the sinks' signed anchors (and --collector-file): names rows deleted or cut locally")
      .option('--collector-file <file>', "with --offsite: the syslog collector's copy (one RFC 5424 message a line, as rsyslog writes %rawmsg%)")
      .option('--json', 'JSON output')
      .addHelpText(
        'after',
        example(
          'tmuxgate audit verify',
          'tmuxgate audit verify --public-key audit.pub.pem --json',
          'tmuxgate audit verify --offsite --collector-file /var/log/tmuxgate/audit.log',
        ),
      )
      .action(
        handler(async (o: { publicKey?: string; json?: boolean; offsite?: boolean; collectorFile?: string }, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            const pem = readFileSync(o.publicKey ?? path.join(a.config.paths.keysDir, AUDIT_PUB_FILE), 'utf8');
            if (o.collectorFile && !o.offsite) throw new TgError('TG_ERR_USAGE', '--collector-file goes with --offsite');
            if (o.offsite) {
              const verdicts = await verifyAuditOffsite(a, pem, o.collectorFile ? { collectorFile: o.collectorFile } : {});
              if (o.json) printJson(verdicts);
              else process.stdout.write(offsiteLines(verdicts, 'audit log'));
              return verdicts.some((v) => v.status === 'differs') ? EXIT.integrity : EXIT.ok;
            }
            const r = await verifyAuditLog(a.auditEvents, pem);
            const p = r.problem;
            if (o.json) printJson(r);
            else if (p) process.stdout.write(`audit log TAMPERED at row ${p.id}: ${p.problem}: ${p.detail}\n`);
            else {
              const signed = `${r.checkpoints} signed checkpoints (last ${r.lastCheckpointAt ?? 'never'})`;
              process.stdout.write(`audit log intact: ${r.rows} rows, ${signed}, ${r.unsealedTail} rows after the last checkpoint\n`);
            }
            return p ? EXIT.integrity : EXIT.ok;
          }),
        ),
      ),
  );
  audit.addCommand(
    withCommon(new Command('export'))
      .description('export audit events as JSON lines or RFC 5424 syslog lines')
      .option('--format <format>', 'jsonl or syslog', 'jsonl')
      .option('--since <time>')
      .option('--until <time>')
      .option('-o, --output <file>')
      .addHelpText(
        'after',
        example('tmuxgate audit export --format syslog --since 24h | logger --rfc5424 ...', 'tmuxgate audit export --since 2026-11-01 -o nov.jsonl'),
      )
      .action(
        handler(async (o: { format: string; since?: string; until?: string; output?: string }, cmd: Command) => {
          if (o.format !== 'jsonl' && o.format !== 'syslog') throw new TgError('TG_ERR_INVALID_ARGUMENT', `--format: ${o.format} (use jsonl or syslog)`);
          const format: (r: AuditRow) => string = o.format === 'jsonl' ? jsonLine : syslogLine;
          const since = o.since ? parseTime(o.since, '--since') : 0;
          const until = o.until ? parseTime(o.until, '--until') : Number.MAX_SAFE_INTEGER;
          return withAdmin(cmd, async (a) => {
            const out: NodeJS.WritableStream = o.output ? createWriteStream(o.output, { mode: 0o600 }) : process.stdout;
            for await (const r of a.auditEvents.between(since, until)) {
              if (!out.write(format(r) + '\n')) await new Promise<void>((res) => out.once('drain', () => res()));
            }
            if (o.output) await new Promise<void>((res) => out.end(() => res()));
            return EXIT.ok;
          });
        }),
      ),
  );
  return audit;
}
