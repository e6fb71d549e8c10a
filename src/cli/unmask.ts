import { Command } from 'commander';
import { durationFlag, example, handler, withAdmin, withCommon } from './common.js';
import { printable, printJson, printTable } from './output.js';
import { EXIT, TgError } from '../errors.js';
import { formatDuration } from '../config/duration.js';
import { approveUnmask, denyUnmask, listUnmask, requestUnmask, revokeUnmask } from '../admin/unmask.js';

const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());

/** A request or grant id: a positive integer as `unmask list` shows it. */
function idArg(v: string, what: string): number {
  if (!/^\d{1,15}$/.test(v) || Number(v) === 0)
    throw new TgError('TG_ERR_INVALID_ARGUMENT', `${what}: not a ${what} id: ${v.slice(0, 40)} (see: tmuxgate unmask list)`);
  return Number(v);
}

/** `tmuxgate unmask request | approve | deny | revoke | list` */
export function unmaskCommand(): Command {
  const u = new Command('unmask').description('four-eyes unmasking of redacted views: one admin asks, a different admin approves');
  u.addCommand(
    withCommon(new Command('request'))
      .description("ask to see one session's replay, export, search and live view unmasked, for a while (a different admin approves)")
      .argument('<session-id>')
      .requiredOption('--reason <text>', 'why the identifiers are needed (a ticket, a case): kept with the grant and named in every unmasked view')
      .option('--for <duration>', 'how long the grant lasts once approved (default unmask.defaultDuration, 1h; at most unmask.maxDuration, 8h)')
      .addHelpText('after', example("sudo tmuxgate unmask request s_AbC123 --reason 'INC-4411: wrong patient merged' --for 2h"))
      .action(
        handler(async (sessionId: string, o: { reason: string; for?: string }, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            const r = await requestUnmask(a, sessionId, o.reason, durationFlag(o.for, '--for'));
            process.stdout.write(
              `unmask request ${r.id} for ${printable(r.session_id)} by ${printable(r.requested_by)} (${formatDuration(r.duration_ms)} once approved); ` +
                `a different admin approves it before ${iso(r.expires_at)}: tmuxgate unmask approve ${r.id}\n`,
            );
            return EXIT.ok;
          }),
        ),
      ),
  );
  u.addCommand(
    withCommon(new Command('approve'))
      .description("approve another admin's request: a grant for them only, on that session only, for the time asked (never your own request)")
      .argument('<request-id>')
      .addHelpText('after', example('sudo tmuxgate unmask list --open', 'sudo tmuxgate unmask approve 12'))
      .action(
        handler(async (id: string, _o: unknown, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            const g = await approveUnmask(a, idArg(id, 'request'));
            process.stdout.write(
              `grant ${g.id}: ${printable(g.grantee)} may see ${printable(g.session_id)} unmasked until ${iso(g.expires_at)} ` +
                `(approved by ${printable(g.approved_by)}; reason: ${printable(g.reason)})\n`,
            );
            return EXIT.ok;
          }),
        ),
      ),
  );
  u.addCommand(
    withCommon(new Command('deny'))
      .description('deny a pending request (the requester may withdraw their own)')
      .argument('<request-id>')
      .option('--reason <text>', 'why: kept with the request and in the audit log')
      .addHelpText('after', example("sudo tmuxgate unmask deny 12 --reason 'the redacted replay answers the question'"))
      .action(
        handler(async (id: string, o: { reason?: string }, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            const r = await denyUnmask(a, idArg(id, 'request'), o.reason ?? null);
            process.stdout.write(`unmask request ${r.id} for ${printable(r.session_id)} by ${printable(r.requested_by)} denied\n`);
            return EXIT.ok;
          }),
        ),
      ),
  );
  u.addCommand(
    withCommon(new Command('revoke'))
      .description('end a grant before its time')
      .argument('<grant-id>')
      .option('--reason <text>', 'why: kept with the grant and in the audit log')
      .addHelpText('after', example("sudo tmuxgate unmask revoke 7 --reason 'incident closed'"))
      .action(
        handler(async (id: string, o: { reason?: string }, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            const g = await revokeUnmask(a, idArg(id, 'grant'), o.reason ?? null);
            process.stdout.write(`grant ${g.id} (${printable(g.grantee)} on ${printable(g.session_id)}) revoked\n`);
            return EXIT.ok;
          }),
        ),
      ),
  );
  u.addCommand(
    withCommon(new Command('list'))
      .description('unmask requests and what became of them: pending, lapsed, denied, active, expired, revoked')
      .option('--session <id>', 'only this session')
      .option('--open', 'only pending requests and grants in force')
      .option('--json', 'JSON output')
      .addHelpText('after', example('sudo tmuxgate unmask list --open', 'sudo tmuxgate unmask list --session s_AbC123 --json'))
      .action(
        handler(async (o: { session?: string; open?: boolean; json?: boolean }, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            const entries = await listUnmask(a, { sessionId: o.session, open: o.open });
            if (o.json) {
              printJson(
                entries.map((e) => ({
                  ...e,
                  requestedAt: iso(e.requestedAt),
                  requestExpiresAt: iso(e.requestExpiresAt),
                  decidedAt: iso(e.decidedAt),
                  grantExpiresAt: iso(e.grantExpiresAt),
                  revokedAt: iso(e.revokedAt),
                })),
              );
            } else {
              const rows = entries.map((e) => ({
                request: e.requestId,
                session: e.sessionId,
                by: e.requestedBy,
                state: e.state,
                for: formatDuration(e.durationMs),
                grant: e.grantId,
                approver: e.state === 'denied' ? null : e.decidedBy,
                until: e.state === 'pending' || e.state === 'lapsed' ? iso(e.requestExpiresAt) : iso(e.grantExpiresAt),
                reason: e.reason,
              }));
              printTable(rows, ['request', 'session', 'by', 'state', 'for', 'grant', 'approver', 'until', 'reason']);
            }
            return EXIT.ok;
          }),
        ),
      ),
  );
  return u;
}
