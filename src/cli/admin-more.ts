import { Command } from 'commander';
import { durationFlag, example, withAdmin, withAdminAsync, withCommon } from './common.js';
import { sandboxFromFlags, withSandboxFlags, checkRoleAccount, type SandboxFlags } from './role-flags.js';
import { observeCommand } from './sessions-observe.js';
import { printJson, printTable, printable } from './output.js';
import { TgError } from '../errors.js';
import {
  clearLockout,
  editRole,
  generateRecoveryCodes,
  killSession,
  removeKey,
  removeRole,
  removeUser,
  resetTotp,
  revokeRole,
  setUserDisabled,
  showUser,
} from '../admin/operations.js';
import { checkTmuxOptions } from '../host/tmux.js';

/** user show / disable / enable / remove */
export function extendUser(user: Command): void {
  user.addCommand(
    withCommon(new Command('show'))
      .description('show one user: roles, keys, TOTP and recovery codes left')
      .argument('<name>')
      .option('--json', 'JSON output')
      .addHelpText('after', example('tmuxgate user show alice'))
      .action((name: string, o: { json?: boolean }, cmd: Command) =>
        withAdmin(cmd, (a) => {
          const u = showUser(a, name);
          if (o.json) printJson(u);
          else
            for (const [k, v] of Object.entries(u)) process.stdout.write(`${k.padEnd(18)} ${printable(Array.isArray(v) ? v.join(', ') || '-' : v)}\n`);
        }),
      ),
  );
  for (const [verb, disabled, what] of [
    ['disable', true, 'disable a user: no logins, live sessions end within 2 s'],
    ['enable', false, 'enable a disabled user'],
  ] as const) {
    user.addCommand(
      withCommon(new Command(verb))
        .description(what)
        .argument('<name>')
        .addHelpText('after', example(`tmuxgate user ${verb} alice`))
        .action((name: string, _o, cmd: Command) =>
          withAdmin(cmd, (a) => {
            setUserDisabled(a, name, disabled);
            process.stdout.write(`${verb}d ${name}\n`);
          }),
        ),
    );
  }
  user.addCommand(
    withCommon(new Command('remove'))
      .description('remove a user (their audit events and recordings are kept)')
      .argument('<name>')
      .addHelpText('after', example('tmuxgate user remove alice'))
      .action((name: string, _o, cmd: Command) =>
        withAdmin(cmd, (a) => {
          removeUser(a, name);
          process.stdout.write(`removed ${name}; their audit events and recordings are kept\n`);
        }),
      ),
  );
}

/** key remove */
export function extendKey(key: Command): void {
  key.addCommand(
    withCommon(new Command('remove'))
      .description('remove a key by its SHA256 fingerprint')
      .argument('<user>')
      .argument('<fingerprint>')
      .addHelpText('after', example('tmuxgate key remove alice SHA256:PTXOWe/y7/LH3phru6Uuqo4c1pEg4qK18iJjAu6b5eA'))
      .action((u: string, fp: string, _o, cmd: Command) =>
        withAdmin(cmd, (a) => {
          removeKey(a, u, fp);
          process.stdout.write(`removed key ${fp} from ${u}\n`);
        }),
      ),
  );
}

/** totp reset / recovery */
export function extendTotp(totp: Command): void {
  totp.addCommand(
    withCommon(new Command('reset'))
      .description('drop a user\'s TOTP secret (they cannot log in until enrolled again)')
      .argument('<user>')
      .addHelpText('after', example('tmuxgate totp reset alice && tmuxgate totp enroll alice'))
      .action((u: string, _o, cmd: Command) =>
        withAdmin(cmd, (a) => {
          resetTotp(a, u);
          process.stdout.write(`TOTP reset for ${u}; enroll again with: tmuxgate totp enroll ${u}\n`);
        }),
      ),
  );
  totp.addCommand(
    withCommon(new Command('recovery'))
      .description('make one-time recovery codes (replacing old ones); each works once in place of a code')
      .argument('<user>')
      .option('-n, --count <n>', 'how many', '10')
      .option('--json', 'JSON output')
      .addHelpText('after', example('tmuxgate totp recovery alice'))
      .action((u: string, o: { count: string; json?: boolean }, cmd: Command) =>
        withAdmin(cmd, (a) => {
          const n = Number(o.count);
          if (!Number.isInteger(n) || n < 1 || n > 50) throw new TgError('TG_ERR_INVALID_ARGUMENT', '--count must be 1..50');
          const codes = generateRecoveryCodes(a, u, n);
          if (o.json) printJson({ user: u, codes });
          else process.stdout.write(`recovery codes for ${u} (each works once; shown only now):\n${codes.map((c) => `  ${c}`).join('\n')}\n`);
        }),
      ),
  );
}

/** role edit / remove / revoke */
export function extendRole(role: Command): void {
  role.addCommand(
    withCommon(new Command('edit'))
      .description('change a role')
      .argument('<name>')
      .option('--shell <path>')
      .option('--run-as <account>', 'template OS account its tmux servers run as (checked: it must reach the socket root and home base)')
      .option('--idle-timeout <duration>')
      .option('--idle-warning <duration>', 'warn this long before the idle logoff')
      .option('--max-session <duration>')
      .option('--record-input <on|off>', 'record keystrokes (off by default: they can carry passwords)')
      .option('--tmux-option <name=value...>', 'allowed tmux options (history-limit, mode-keys, status, ...)'),
  );
  withSandboxFlags(role.commands.at(-1)!)
    .addHelpText('after', example('tmuxgate role edit ops --idle-timeout 10m --record-input on', 'tmuxgate role edit dba --sandbox on --ro /etc --rw /srv/dumps'))
    .action((name: string, o: { shell?: string; runAs?: string; idleTimeout?: string; idleWarning?: string; maxSession?: string; recordInput?: string; tmuxOption?: string[] } & SandboxFlags, cmd: Command) =>
      withAdminAsync(cmd, async (a) => {
        if (o.recordInput !== undefined && !['on', 'off'].includes(o.recordInput)) throw new TgError('TG_ERR_INVALID_ARGUMENT', '--record-input takes on or off');
        let tmuxOptions: Record<string, string> | undefined;
        if (o.tmuxOption) {
          tmuxOptions = Object.fromEntries(o.tmuxOption.map((kv) => {
            const i = kv.indexOf('=');
            if (i <= 0) throw new TgError('TG_ERR_INVALID_ARGUMENT', `--tmux-option: expected name=value, got ${kv}`);
            return [kv.slice(0, i), kv.slice(i + 1)];
          }));
          const bad = checkTmuxOptions(tmuxOptions);
          if (bad) throw new TgError('TG_ERR_INVALID_ARGUMENT', bad);
        }
        const sandbox = sandboxFromFlags(o);
        const before = a.roles.get(name);
        editRole(a, name, {
          ...(o.shell !== undefined ? { shell: o.shell } : {}),
          ...(o.runAs !== undefined ? { runAs: o.runAs } : {}),
          ...(o.idleTimeout !== undefined ? { idleTimeoutMs: durationFlag(o.idleTimeout, '--idle-timeout')! } : {}),
          ...(o.idleWarning !== undefined ? { idleWarningMs: durationFlag(o.idleWarning, '--idle-warning')! } : {}),
          ...(o.maxSession !== undefined ? { maxSessionMs: durationFlag(o.maxSession, '--max-session')! } : {}),
          ...(o.recordInput !== undefined ? { recordInput: o.recordInput === 'on' } : {}),
          ...(tmuxOptions ? { tmuxOptions } : {}),
          ...(sandbox !== undefined ? { sandbox } : {}),
        });
        if (o.runAs !== undefined) {
          await checkRoleAccount(a, name).catch((e: unknown) => {
            editRole(a, name, { runAs: before.runAs }); // refused: the role keeps the account it had
            throw e;
          });
        }
        process.stdout.write(`edited role ${name}\n`);
      }),
    );
  role.addCommand(
    withCommon(new Command('remove'))
      .description('remove a role (refused while granted, unless --force)')
      .argument('<name>')
      .option('--force', 'revoke it from everyone first')
      .addHelpText('after', example('tmuxgate role remove dba --force'))
      .action((name: string, o: { force?: boolean }, cmd: Command) =>
        withAdmin(cmd, (a) => {
          removeRole(a, name, o.force ?? false);
          process.stdout.write(`removed role ${name}\n`);
        }),
      ),
  );
  role.addCommand(
    withCommon(new Command('revoke'))
      .description('revoke a role from a user (their sessions in it end within 2 s)')
      .argument('<user>')
      .argument('<role>')
      .addHelpText('after', example('tmuxgate role revoke alice dba'))
      .action((u: string, r: string, _o, cmd: Command) =>
        withAdmin(cmd, (a) => {
          revokeRole(a, u, r);
          process.stdout.write(`revoked ${r} from ${u}\n`);
        }),
      ),
  );
}

/** lockouts list / clear */
export function lockoutsCommand(): Command {
  const l = new Command('lockouts').alias('lockout').description('user and address lockouts');
  l.addCommand(
    withCommon(new Command('list'))
      .description('lockouts in force')
      .option('--json', 'JSON output')
      .action((o: { json?: boolean }, cmd: Command) =>
        withAdmin(cmd, (a) => {
          const rows = a.lockouts.active().map((r) => ({ kind: r.subjectKind, subject: r.subject, level: r.level, until: new Date(r.lockedUntil).toISOString() }));
          if (o.json) printJson(rows);
          else printTable(rows, ['kind', 'subject', 'level', 'until']);
        }),
      ),
  );
  l.addCommand(
    withCommon(new Command('clear'))
      .description('lift a lockout (takes effect at the next login attempt)')
      .argument('<subject>', 'user name, or an address with --address')
      .option('--address', 'SUBJECT is a source address')
      .addHelpText('after', example('tmuxgate lockouts clear alice', 'tmuxgate lockouts clear 10.0.0.7 --address'))
      .action((subject: string, o: { address?: boolean }, cmd: Command) =>
        withAdmin(cmd, (a) => {
          const had = clearLockout(a, o.address ? 'address' : 'user', subject);
          process.stdout.write(had ? `cleared lockout of ${subject}\n` : `${subject} was not locked out (failure count reset)\n`);
        }),
      ),
  );
  return l;
}

/** sessions kill / observe */
export function extendSessions(sessions: Command): void {
  sessions.addCommand(
    withCommon(new Command('kill'))
      .description('end a live session; the user sees the reason (their tmux session keeps running)')
      .argument('<session-id>')
      .option('--reason <text>', 'shown to the user and audited', 'ended by an administrator')
      .addHelpText('after', example("tmuxgate sessions kill s_AbC123 --reason 'maintenance window'"))
      .action((id: string, o: { reason: string }, cmd: Command) =>
        withAdmin(cmd, (a) => {
          killSession(a, id, o.reason);
          process.stdout.write(`kill requested for ${id}; the gateway ends it within 2 s\n`);
        }),
      ),
  );
  sessions.addCommand(observeCommand());
}
