import { Command } from 'commander';
import { createWriteStream, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { example, withAdmin, withCommon, configOf } from './common.js';
import { printJson, printable } from './output.js';
import { escapeControls, safeJson } from '../recording/safe-terminal.js';
import { EXIT, TgError } from '../errors.js';
import { openAdmin } from '../admin/context.js';
import { readAudit, verifyAuditChain, verifyCheckpoints, type AuditRow } from '../audit/log.js';
import { AUDIT_PUB_FILE, verifyWithPublicKey } from '../crypto/audit-key.js';
import { parseTime } from './recording-commands.js';

/** One human line per audit row. */
function line(r: AuditRow): string {
  const data = JSON.parse(r.data) as Record<string, unknown>;
  const kv = Object.entries(data)
    .map(([k, v]) => `${printable(k)}=${typeof v === 'string' ? (/\s/.test(v) ? safeJson(v) : printable(v)) : safeJson(v)}`)
    .join(' ');
  // Details carry user-controlled text (refused env names, key comments): escaped, never raw.
  return `${new Date(r.ts).toISOString()} #${r.id} ${printable(r.type)} actor=${printable(r.actor)} ${kv}`;
}

const SEVERITY: Record<string, number> = { 'auth.failure': 4, 'auth.locked': 4, 'lockout.start': 4, 'request.denied': 5, 'connection.refused': 5, 'recording.failed': 3, 'session.interrupted': 4 };
const sdEscape = (s: string) => escapeControls(s.replace(/[\\"\]]/g, (c) => `\\${c}`), { backslash: false });

/** An RFC 5424 line: facility authpriv (10), severity by event type, the event as structured data. */
export function syslogLine(r: AuditRow, host = os.hostname()): string {
  const pri = 10 * 8 + (SEVERITY[r.type] ?? 6);
  const data = JSON.parse(r.data) as Record<string, unknown>;
  const params = Object.entries({ id: r.id, actor: r.actor, ...data, hash: r.hash })
    .map(([k, v]) => `${k.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 32)}="${sdEscape(typeof v === 'string' ? v : JSON.stringify(v))}"`)
    .join(' ');
  return `<${pri}>1 ${new Date(r.ts).toISOString()} ${host.replace(/\s/g, '_') || '-'} tmuxgate - ${r.type} [tmuxgate@32473 ${params}] ${r.type}`;
}

export function auditCommands(audit: Command): void {
  audit.addCommand(
    withCommon(new Command('tail'))
      .description('the latest audit events; -f keeps following')
      .option('-n, --lines <n>', 'how many', '20')
      .option('-f, --follow', 'keep printing new events')
      .option('--json', 'one JSON object per line')
      .addHelpText('after', example('tmuxgate audit tail -n 50', 'tmuxgate audit tail -f --json'))
      .action(async (o: { lines: string; follow?: boolean; json?: boolean }, cmd: Command) => {
        const n = Number(o.lines);
        if (!Number.isInteger(n) || n < 0) throw new TgError('TG_ERR_INVALID_ARGUMENT', '--lines must be a whole number');
        const a = openAdmin(configOf(cmd));
        const show = (r: AuditRow) => process.stdout.write((o.json ? safeJson({ ...r, data: JSON.parse(r.data) }) : line(r)) + '\n');
        try {
          let last = 0;
          for (const r of readAudit(a.auditEvents, { limit: n })) (show(r), (last = r.id));
          if (!o.follow) return;
          last = Math.max(last, a.auditEvents.maxId());
          await new Promise<void>((resolve) => {
            const t = setInterval(() => {
              for (const r of readAudit(a.auditEvents, { sinceId: last })) (show(r), (last = r.id));
            }, 500);
            process.once('SIGINT', () => (clearInterval(t), resolve()));
            process.once('SIGTERM', () => (clearInterval(t), resolve()));
          });
        } finally {
          a.close();
        }
      }),
  );
  audit.addCommand(
    withCommon(new Command('verify'))
      .description('check the hash chain and the signed checkpoints: names an edited, deleted, inserted or reordered row, or a cut tail')
      .option('--public-key <pem>', 'audit public key (default: keysDir/audit_ed25519.pub.pem)')
      .option('--json', 'JSON output')
      .addHelpText('after', example('tmuxgate audit verify', 'tmuxgate audit verify --public-key audit.pub.pem --json'))
      .action((o: { publicKey?: string; json?: boolean }, cmd: Command) => {
        const c = configOf(cmd);
        withAdmin(cmd, (a) => {
          const pem = readFileSync(o.publicKey ?? path.join(c.paths.keysDir, AUDIT_PUB_FILE), 'utf8');
          const chain = verifyAuditChain(a.auditEvents);
          const cps = verifyCheckpoints(a.auditEvents, (d, s) => verifyWithPublicKey(pem, d, s));
          const problem = chain.problem ?? cps.problem;
          const out = { ok: !problem, rows: chain.rows, head: chain.head, checkpoints: cps.checkpoints, lastCheckpointAt: cps.lastCheckpointAt ? new Date(cps.lastCheckpointAt).toISOString() : null, unsealedTail: cps.unsealedTail, problem };
          if (o.json) printJson(out);
          else if (problem) process.stdout.write(`audit log TAMPERED at row ${problem.id}: ${problem.problem}: ${problem.detail}\n`);
          else process.stdout.write(`audit log intact: ${out.rows} rows, ${out.checkpoints} signed checkpoints (last ${out.lastCheckpointAt ?? 'never'}), ${out.unsealedTail} rows after the last checkpoint\n`);
          process.exitCode = problem ? EXIT.integrity : EXIT.ok;
        });
      }),
  );
  audit.addCommand(
    withCommon(new Command('export'))
      .description('export audit events as JSON lines or RFC 5424 syslog lines')
      .option('--format <format>', 'jsonl or syslog', 'jsonl')
      .option('--since <time>')
      .option('--until <time>')
      .option('-o, --output <file>')
      .addHelpText('after', example('tmuxgate audit export --format syslog --since 24h | logger --rfc5424 ...', 'tmuxgate audit export --since 2026-11-01 -o nov.jsonl'))
      .action(async (o: { format: string; since?: string; until?: string; output?: string }, cmd: Command) => {
        if (o.format !== 'jsonl' && o.format !== 'syslog') throw new TgError('TG_ERR_INVALID_ARGUMENT', `--format: ${o.format} (use jsonl or syslog)`);
        const since = o.since ? parseTime(o.since, '--since') : 0;
        const until = o.until ? parseTime(o.until, '--until') : Number.MAX_SAFE_INTEGER;
        const a = openAdmin(configOf(cmd));
        try {
          const out: NodeJS.WritableStream = o.output ? createWriteStream(o.output, { mode: 0o600 }) : process.stdout;
          for (const r of a.auditEvents.between(since, until)) {
            const l = o.format === 'jsonl' ? safeJson({ ...r, data: JSON.parse(r.data) }) : syslogLine(r);
            if (!out.write(l + '\n')) await new Promise<void>((res) => out.once('drain', () => res()));
          }
          if (o.output) await new Promise<void>((res) => out.end(() => res()));
        } finally {
          a.close();
        }
      }),
  );
}
