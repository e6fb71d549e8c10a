import { Command } from 'commander';
import { example, handler, withAdmin, withCommon } from './common.js';
import { printJson, printTable, printable } from './output.js';
import { EXIT } from '../errors.js';
import { addUser, listUsers, removeUser, setUserDisabled, showUser } from '../admin/operations.js';

/** `tmuxgate user add | list | show | disable | enable | remove` */
export function userCommand(): Command {
  const user = new Command('user').alias('users').description('manage gateway users');
  user.addCommand(
    withCommon(new Command('add'))
      .description('add a user (with --role, that role is granted and becomes their default)')
      .argument('<name>', 'user name: 1-32 of a-z 0-9 . _ -, starting with a letter')
      .option('--role <role>', 'default role (granted)')
      .addHelpText('after', example('tmuxgate user add alice --role ops'))
      .action(
        handler(async (name: string, o: { role?: string }, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            const u = await addUser(a, name, o.role);
            const n = printable(u.name);
            process.stdout.write(`added user ${n}${o.role ? ` with role ${printable(o.role)}` : ''}\n`);
            process.stdout.write(`next: tmuxgate key add ${n} --file KEY.pub; tmuxgate totp enroll ${n}\n`);
            return EXIT.ok;
          }),
        ),
      ),
  );
  user.addCommand(
    withCommon(new Command('list'))
      .description('list users')
      .option('--json', 'JSON output')
      .addHelpText('after', example('tmuxgate user list --json'))
      .action(
        handler(async (o: { json?: boolean }, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            const rows = await listUsers(a);
            if (o.json) printJson(rows);
            else printTable(rows as unknown as Record<string, unknown>[], ['name', 'defaultRole', 'roles', 'keys', 'totp', 'disabled']);
            return EXIT.ok;
          }),
        ),
      ),
  );
  user.addCommand(
    withCommon(new Command('show'))
      .description('show one user: roles, keys, TOTP and recovery codes left')
      .argument('<name>')
      .option('--json', 'JSON output')
      .addHelpText('after', example('tmuxgate user show alice'))
      .action(
        handler(async (name: string, o: { json?: boolean }, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            const u = await showUser(a, name);
            if (o.json) printJson(u);
            else for (const [k, v] of Object.entries(u)) process.stdout.write(`${k.padEnd(18)} ${printable(Array.isArray(v) ? v.join(', ') || '-' : v)}\n`);
            return EXIT.ok;
          }),
        ),
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
        .action(
          handler(async (name: string, _o: unknown, cmd: Command) =>
            withAdmin(cmd, async (a) => {
              await setUserDisabled(a, name, disabled);
              process.stdout.write(`${verb}d ${name}\n`);
              return EXIT.ok;
            }),
          ),
        ),
    );
  }
  user.addCommand(
    withCommon(new Command('remove'))
      .description('remove a user (their audit events and recordings are kept)')
      .argument('<name>')
      .addHelpText('after', example('tmuxgate user remove alice'))
      .action(
        handler(async (name: string, _o: unknown, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            await removeUser(a, name);
            process.stdout.write(`removed ${name}; their audit events and recordings are kept\n`);
            return EXIT.ok;
          }),
        ),
      ),
  );
  return user;
}
