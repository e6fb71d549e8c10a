import { Command } from 'commander';
import { durationFlag, example, handler, retentionFlag, withAdmin, withCommon } from './common.js';
import { printJson, printTable, printable } from './output.js';
import { sandboxFromFlags, withSandboxFlags, type SandboxFlags } from './role-flags.js';
import { EXIT, TgError } from '../errors.js';
import { formatRetention } from '../config/duration.js';
import { grantRole, removeRole, revokeRole } from '../admin/operations.js';
import { addRoleWithAccount, editRoleWithAccount } from '../admin/host.js';

type AddFlags = { shell?: string; runAs?: string; idleTimeout?: string; maxSession?: string; kind: string; viewOf?: string; retention?: string } & SandboxFlags;
type EditFlags = {
  shell?: string;
  runAs?: string;
  idleTimeout?: string;
  idleWarning?: string;
  maxSession?: string;
  recordInput?: string;
  tmuxOption?: string[];
  retention?: string;
} & SandboxFlags;

/** --tmux-option name=value..., as a map (the allow-list is checked by the role edit itself). */
function tmuxOptionsFlag(kvs: string[] | undefined): Record<string, string> | undefined {
  if (!kvs) return undefined;
  return Object.fromEntries(
    kvs.map((kv) => {
      const i = kv.indexOf('=');
      if (i <= 0) throw new TgError('TG_ERR_INVALID_ARGUMENT', `--tmux-option: expected name=value, got ${kv}`);
      return [kv.slice(0, i), kv.slice(i + 1)];
    }),
  );
}

/** `tmuxgate role add | list | grant | edit | remove | revoke` */
export function roleCommand(): Command {
  const role = new Command('role').alias('roles').description('manage roles and grants');
  const add = withCommon(new Command('add'))
    .description('add a role')
    .argument('<name>')
    .option('--shell <path>', 'login shell inside tmux (default: config sessions.defaultShell)')
    .option('--run-as <account>', 'template OS account (its group); default under root: an unprivileged account tmuxgate creates for the role')
    .option('--idle-timeout <duration>', 'log off after this long without input (e.g. 15m)')
    .option('--max-session <duration>', 'end sessions after this long (e.g. 8h)')
    .option('--kind <kind>', 'shell, auditor (replay menu) or viewer (read-only view of --view-of)', 'shell')
    .option('--view-of <user+role>', 'for --kind viewer: the session it shows')
    .option('--retention <duration>', 'keep its recordings this long after they end (e.g. 6y, 2200d; default: config recording.retention, 6y)');
  role.addCommand(
    withSandboxFlags(add)
      .addHelpText(
        'after',
        example('tmuxgate role add ops --shell /bin/bash --idle-timeout 10m', 'tmuxgate role add dba --sandbox on --rw /srv/dumps --hide /etc/ssl/private'),
      )
      .action(
        handler(async (name: string, o: AddFlags, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            if (o.kind !== 'shell' && o.kind !== 'auditor' && o.kind !== 'viewer') {
              throw new TgError('TG_ERR_INVALID_ARGUMENT', '--kind must be shell, auditor or viewer');
            }
            const sandbox = sandboxFromFlags(o);
            const r = await addRoleWithAccount(a, {
              name,
              kind: o.kind,
              viewOf: o.viewOf ?? null,
              shell: o.shell ?? null,
              runAs: o.runAs ?? null,
              idleTimeoutMs: durationFlag(o.idleTimeout, '--idle-timeout') ?? null,
              maxSessionMs: durationFlag(o.maxSession, '--max-session') ?? null,
              sandbox: sandbox ?? null,
              retentionMs: retentionFlag(o.retention) ?? null,
            });
            const runs = r.account ? ` (runs as ${printable(r.account)}; each user gets an account of their own in its group)` : '';
            process.stdout.write(`added role ${printable(r.name)}${runs}${sandbox ? ', sandboxed' : ''}\n`);
            return EXIT.ok;
          }),
        ),
      ),
  );
  role.addCommand(
    withCommon(new Command('list'))
      .description('list roles')
      .option('--json', 'JSON output')
      .addHelpText('after', example('tmuxgate role list', 'tmuxgate role list --json'))
      .action(
        handler(async (o: { json?: boolean }, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            const rows = (await a.roles.list()).map((r) => ({
              name: r.name,
              kind: r.kind,
              runAs: r.runAs,
              shell: r.shell,
              idleTimeoutMs: r.idleTimeoutMs,
              maxSessionMs: r.maxSessionMs,
              retentionMs: r.retentionMs ?? a.config.recording.retention,
              retention: r.retentionMs == null ? `${formatRetention(a.config.recording.retention)} (default)` : formatRetention(r.retentionMs),
            }));
            if (o.json) printJson(rows);
            else printTable(rows, ['name', 'kind', 'runAs', 'shell', 'idleTimeoutMs', 'maxSessionMs', 'retention']);
            return EXIT.ok;
          }),
        ),
      ),
  );
  role.addCommand(
    withCommon(new Command('grant'))
      .description('grant a role to a user (login as USER+ROLE, or by default if it is their first)')
      .argument('<user>')
      .argument('<role>')
      .option('--default', "make it the user's default role")
      .addHelpText('after', example('tmuxgate role grant alice dba'))
      .action(
        handler(async (userName: string, roleName: string, o: { default?: boolean }, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            await grantRole(a, userName, roleName, o.default ?? false);
            process.stdout.write(`granted ${printable(roleName)} to ${printable(userName)}\n`);
            return EXIT.ok;
          }),
        ),
      ),
  );
  const edit = withCommon(new Command('edit'))
    .description('change a role')
    .argument('<name>')
    .option('--shell <path>')
    .option('--run-as <account>', 'template OS account its tmux servers run as (checked: it must reach the socket root and home base)')
    .option('--idle-timeout <duration>')
    .option('--idle-warning <duration>', 'warn this long before the idle logoff')
    .option('--max-session <duration>')
    .option('--record-input <on|off>', 'record keystrokes (off by default: they can carry passwords)')
    .option('--tmux-option <name=value...>', 'allowed tmux options (history-limit, mode-keys, status, ...)')
    .option('--retention <duration>', 'keep recordings made from now on this long after they end (existing ones keep theirs)');
  role.addCommand(
    withSandboxFlags(edit)
      .addHelpText(
        'after',
        example('tmuxgate role edit ops --idle-timeout 10m --record-input on', 'tmuxgate role edit dba --sandbox on --ro /etc --rw /srv/dumps'),
      )
      .action(
        handler(async (name: string, o: EditFlags, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            if (o.recordInput !== undefined && !['on', 'off'].includes(o.recordInput)) {
              throw new TgError('TG_ERR_INVALID_ARGUMENT', '--record-input takes on or off');
            }
            const tmuxOptions = tmuxOptionsFlag(o.tmuxOption);
            const sandbox = sandboxFromFlags(o);
            await editRoleWithAccount(a, name, {
              ...(o.shell !== undefined ? { shell: o.shell } : {}),
              ...(o.runAs !== undefined ? { runAs: o.runAs } : {}),
              ...(o.idleTimeout !== undefined ? { idleTimeoutMs: durationFlag(o.idleTimeout, '--idle-timeout')! } : {}),
              ...(o.idleWarning !== undefined ? { idleWarningMs: durationFlag(o.idleWarning, '--idle-warning')! } : {}),
              ...(o.maxSession !== undefined ? { maxSessionMs: durationFlag(o.maxSession, '--max-session')! } : {}),
              ...(o.recordInput !== undefined ? { recordInput: o.recordInput === 'on' } : {}),
              ...(tmuxOptions ? { tmuxOptions } : {}),
              ...(sandbox !== undefined ? { sandbox } : {}),
              ...(o.retention !== undefined ? { retentionMs: retentionFlag(o.retention)! } : {}),
            });
            process.stdout.write(`edited role ${name}\n`);
            return EXIT.ok;
          }),
        ),
      ),
  );
  role.addCommand(
    withCommon(new Command('remove'))
      .description('remove a role (refused while granted, unless --force)')
      .argument('<name>')
      .option('--force', 'revoke it from everyone first')
      .addHelpText('after', example('tmuxgate role remove dba --force'))
      .action(
        handler(async (name: string, o: { force?: boolean }, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            await removeRole(a, name, o.force ?? false);
            process.stdout.write(`removed role ${name}\n`);
            return EXIT.ok;
          }),
        ),
      ),
  );
  role.addCommand(
    withCommon(new Command('revoke'))
      .description('revoke a role from a user (their sessions in it end within 2 s)')
      .argument('<user>')
      .argument('<role>')
      .addHelpText('after', example('tmuxgate role revoke alice dba'))
      .action(
        handler(async (u: string, r: string, _o: unknown, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            await revokeRole(a, u, r);
            process.stdout.write(`revoked ${r} from ${u}\n`);
            return EXIT.ok;
          }),
        ),
      ),
  );
  return role;
}
