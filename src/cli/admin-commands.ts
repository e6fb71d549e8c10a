import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import QRCode from 'qrcode';
import { configOf, durationFlag, example, withAdmin, withAdminAsync, withCommon } from './common.js';
import { printJson, printTable, printable } from './output.js';
import { addKey, addRole, addUser, confirmTotp, enrollTotp, grantRole, listUsers, removeRole } from '../admin/operations.js';
import { openAdmin } from '../admin/context.js';
import { TgError } from '../errors.js';
import { checkRoleAccount, sandboxFromFlags, withSandboxFlags, type SandboxFlags } from './role-flags.js';
import { rotateMasterKey } from '../crypto/master-key.js';

/** `tmuxgate user ...` */
export function userCommand(): Command {
  const user = new Command('user').alias('users').description('manage gateway users');
  user.addCommand(
    withCommon(new Command('add'))
      .description('add a user (with --role, that role is granted and becomes their default)')
      .argument('<name>', 'user name: 1-32 of a-z 0-9 . _ -, starting with a letter')
      .option('--role <role>', 'default role (granted)')
      .addHelpText('after', example('tmuxgate user add alice --role ops'))
      .action((name: string, o: { role?: string }, cmd: Command) =>
        withAdmin(cmd, (a) => {
          const u = addUser(a, name, o.role);
          process.stdout.write(`added user ${printable(u.name)}${o.role ? ` with role ${printable(o.role)}` : ''}\nnext: tmuxgate key add ${printable(u.name)} --file KEY.pub; tmuxgate totp enroll ${printable(u.name)}\n`);
        }),
      ),
  );
  user.addCommand(
    withCommon(new Command('list'))
      .description('list users')
      .option('--json', 'JSON output')
      .addHelpText('after', example('tmuxgate user list --json'))
      .action((o: { json?: boolean }, cmd: Command) =>
        withAdmin(cmd, (a) => {
          const rows = listUsers(a);
          if (o.json) printJson(rows);
          else printTable(rows as unknown as Record<string, unknown>[], ['name', 'defaultRole', 'roles', 'keys', 'totp', 'disabled']);
        }),
      ),
  );
  return user;
}

/** `tmuxgate key ...` */
export function keyCommand(): Command {
  const key = new Command('key').alias('keys').description("manage users' SSH public keys");
  key.addCommand(
    withCommon(new Command('add'))
      .description('enroll a public key (an authorized_keys line, or --file)')
      .argument('<user>')
      .argument('[line]', "authorized_keys line, e.g. 'ssh-ed25519 AAAA... alice@laptop'")
      .option('--file <pubkey>', 'read the key from a .pub file')
      .addHelpText('after', example('tmuxgate key add alice --file ~/.ssh/id_ed25519.pub', "tmuxgate key add alice 'ssh-ed25519 AAAAC3Nza... alice@laptop'"))
      .action((userName: string, line: string | undefined, o: { file?: string }, cmd: Command) =>
        withAdmin(cmd, (a) => {
          if ((line === undefined) === (o.file === undefined)) {
            throw new TgError('TG_ERR_USAGE', 'give either an authorized_keys line or --file, not both or neither');
          }
          let text = line ?? '';
          if (o.file) {
            try {
              text = readFileSync(o.file, 'utf8');
            } catch (e) {
              throw new TgError('TG_ERR_INVALID_ARGUMENT', `cannot read ${o.file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
            }
            const lines = text.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
            if (lines.length !== 1) throw new TgError('TG_ERR_INVALID_KEY', `${o.file}: expected exactly one key line, found ${lines.length}`);
            text = lines[0]!;
          }
          const k = addKey(a, userName, text);
          process.stdout.write(`added key ${k.fingerprint} (${printable(k.key_type)}${k.comment ? `, ${printable(k.comment)}` : ''}) for ${printable(userName)}\n`);
        }),
      ),
  );
  key.addCommand(
    withCommon(new Command('list'))
      .description("list a user's keys with SHA256 fingerprints")
      .argument('<user>')
      .option('--json', 'JSON output')
      .action((userName: string, o: { json?: boolean }, cmd: Command) =>
        withAdmin(cmd, (a) => {
          const u = a.users.get(userName);
          const rows = a.keys.listForUser(u.id).map((k) => ({ fingerprint: k.fingerprint, type: k.key_type, bits: k.bits, comment: k.comment, added: new Date(k.created_at).toISOString() }));
          if (o.json) printJson(rows);
          else printTable(rows, ['bits', 'fingerprint', 'comment', 'type']);
        }),
      ),
  );
  key.addCommand(
    withCommon(new Command('rotate'))
      .description('rotate the master key: re-wrap every recording data key and TOTP secret (recordings untouched)')
      .addHelpText('after', example('tmuxgate keys rotate && systemctl restart tmuxgate'))
      .action((_o, cmd: Command) => {
        const c = configOf(cmd);
        const a = openAdmin(c);
        try {
          const r = rotateMasterKey(c.paths.keysDir, (p) =>
            a.transaction(() => {
              // rewrapAll opens with and seals under the provider it is given, not the one the repository was built with.
              const n = a.recordings.rewrapAll(p) + a.totp.rewrapAll(p);
              a.audit.emit(a.actor, { type: 'admin.change', action: 'keys.rotate', target: 'master.key', detail: { newKeyId: p.keyId, rewrapped: n } });
              return n;
            }),
          );
          process.stdout.write(`master key rotated: ${r.oldId} -> ${r.newId}; ${r.rewrapped} secrets re-wrapped. The old key is kept as master.key.retired-${r.oldId}. Restart the gateway so new sessions use the new key.\n`);
        } finally {
          a.close();
        }
      }),
  );
  return key;
}

/** `tmuxgate totp ...` */
export function totpCommand(): Command {
  const totp = new Command('totp').description('enroll TOTP (authenticator app) secrets');
  totp.addCommand(
    withCommon(new Command('enroll'))
      .description('make a new secret: shows a QR code and asks for a code to confirm it (pending until confirmed)')
      .argument('<user>')
      .option('--json', 'print {"user","secret","uri"} and leave it pending for `totp confirm`')
      .addHelpText('after', example('tmuxgate totp enroll alice', 'tmuxgate totp enroll alice --json && tmuxgate totp confirm alice 123456'))
      .action(async (userName: string, o: { json?: boolean }, cmd: Command) => {
        const a = openAdmin(configOf(cmd));
        try {
          const r = enrollTotp(a, userName);
          if (o.json) {
            printJson(r);
            return;
          }
          const qr = await QRCode.toString(r.uri, { type: 'terminal', small: true, errorCorrectionLevel: 'M' });
          process.stdout.write(`${qr}\nScan with an authenticator app, or enter the secret by hand:\n  ${r.secret}\n  ${r.uri}\n\n`);
          if (!process.stdin.isTTY) {
            process.stdout.write(`pending: confirm with: tmuxgate totp confirm ${userName} CODE\n`);
            return;
          }
          const rl = createInterface({ input: process.stdin, output: process.stdout });
          try {
            for (let attempt = 1; ; attempt++) {
              const code = await rl.question('Enter the code the app shows now to confirm: ');
              try {
                confirmTotp(a, userName, code);
                process.stdout.write(`confirmed: ${printable(userName)} can now log in with key + code\n`);
                return;
              } catch (e) {
                if (attempt >= 3) throw e;
                process.stdout.write(`${(e as Error).message}\n`);
              }
            }
          } finally {
            rl.close();
          }
        } finally {
          a.close();
        }
      }),
  );
  totp.addCommand(
    withCommon(new Command('confirm'))
      .description('confirm a pending secret with the code the app shows now')
      .argument('<user>')
      .argument('<code>')
      .addHelpText('after', example('tmuxgate totp confirm alice 492039'))
      .action((userName: string, code: string, _o, cmd: Command) =>
        withAdmin(cmd, (a) => {
          confirmTotp(a, userName, code);
          process.stdout.write(`confirmed: ${userName} can now log in with key + code\n`);
        }),
      ),
  );
  return totp;
}

/** `tmuxgate role ...` */
export function roleCommand(): Command {
  const role = new Command('role').alias('roles').description('manage roles and grants');
  role.addCommand(
    withCommon(new Command('add'))
      .description('add a role')
      .argument('<name>')
      .option('--shell <path>', 'login shell inside tmux (default: config sessions.defaultShell)')
      .option('--run-as <account>', "template OS account (its group); default under root: an unprivileged account tmuxgate creates for the role")
      .option('--idle-timeout <duration>', 'log off after this long without input (e.g. 15m)')
      .option('--max-session <duration>', 'end sessions after this long (e.g. 8h)')
      .option('--kind <kind>', 'shell, auditor (replay menu) or viewer (read-only view of --view-of)', 'shell')
      .option('--view-of <user+role>', 'for --kind viewer: the session it shows'),
  );
  withSandboxFlags(role.commands.at(-1)!)
    .addHelpText('after', example('tmuxgate role add ops --shell /bin/bash --idle-timeout 10m', 'tmuxgate role add dba --sandbox on --rw /srv/dumps --hide /etc/ssl/private'))
    .action((name: string, o: { shell?: string; runAs?: string; idleTimeout?: string; maxSession?: string; kind: string; viewOf?: string } & SandboxFlags, cmd: Command) =>
      withAdminAsync(cmd, async (a) => {
        if (o.kind !== 'shell' && o.kind !== 'auditor' && o.kind !== 'viewer') throw new TgError('TG_ERR_INVALID_ARGUMENT', '--kind must be shell, auditor or viewer');
        const sandbox = sandboxFromFlags(o);
        const r = addRole(a, {
          name,
          kind: o.kind,
          viewOf: o.viewOf ?? null,
          shell: o.shell ?? null,
          runAs: o.runAs ?? null,
          idleTimeoutMs: durationFlag(o.idleTimeout, '--idle-timeout') ?? null,
          maxSessionMs: durationFlag(o.maxSession, '--max-session') ?? null,
          sandbox: sandbox ?? null,
        });
        const account = await checkRoleAccount(a, r.name).catch((e: unknown) => {
          removeRole(a, r.name, true); // a role that could not run is not left behind
          throw e;
        });
        process.stdout.write(`added role ${printable(r.name)}${account ? ` (runs as ${printable(account)}; each user gets an account of their own in its group)` : ''}${sandbox ? ', sandboxed' : ''}\n`);
      }),
    );
  role.addCommand(
    withCommon(new Command('list'))
      .description('list roles')
      .option('--json', 'JSON output')
      .action((o: { json?: boolean }, cmd: Command) =>
        withAdmin(cmd, (a) => {
          const rows = a.roles.list().map((r) => ({ name: r.name, kind: r.kind, runAs: r.runAs, shell: r.shell, idleTimeoutMs: r.idleTimeoutMs, maxSessionMs: r.maxSessionMs }));
          if (o.json) printJson(rows);
          else printTable(rows, ['name', 'kind', 'runAs', 'shell', 'idleTimeoutMs', 'maxSessionMs']);
        }),
      ),
  );
  role.addCommand(
    withCommon(new Command('grant'))
      .description('grant a role to a user (login as USER+ROLE, or by default if it is their first)')
      .argument('<user>')
      .argument('<role>')
      .option('--default', 'make it the user\'s default role')
      .addHelpText('after', example('tmuxgate role grant alice dba'))
      .action((userName: string, roleName: string, o: { default?: boolean }, cmd: Command) =>
        withAdmin(cmd, (a) => {
          grantRole(a, userName, roleName, o.default ?? false);
          process.stdout.write(`granted ${printable(roleName)} to ${printable(userName)}\n`);
        }),
      ),
  );
  return role;
}
