import { Command } from 'commander';
import { example, handler, withAdmin, withCommon } from './common.js';
import { printJson, printTable } from './output.js';
import { EXIT } from '../errors.js';
import { clearLockout } from '../admin/operations.js';

/** `tmuxgate lockouts list | clear` */
export function lockoutsCommand(): Command {
  const l = new Command('lockouts').alias('lockout').description('user and address lockouts');
  l.addCommand(
    withCommon(new Command('list'))
      .description('lockouts in force')
      .option('--json', 'JSON output')
      .addHelpText('after', example('tmuxgate lockouts list', 'tmuxgate lockouts list --json'))
      .action(
        handler(async (o: { json?: boolean }, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            const rows = (await a.lockouts.active()).map((r) => ({
              kind: r.subjectKind,
              subject: r.subject,
              level: r.level,
              until: new Date(r.lockedUntil).toISOString(),
            }));
            if (o.json) printJson(rows);
            else printTable(rows, ['kind', 'subject', 'level', 'until']);
            return EXIT.ok;
          }),
        ),
      ),
  );
  l.addCommand(
    withCommon(new Command('clear'))
      .description('lift a lockout (takes effect at the next login attempt)')
      .argument('<subject>', 'user name, or an address with --address')
      .option('--address', 'SUBJECT is a source address')
      .addHelpText('after', example('tmuxgate lockouts clear alice', 'tmuxgate lockouts clear 10.0.0.7 --address'))
      .action(
        handler(async (subject: string, o: { address?: boolean }, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            const had = await clearLockout(a, o.address ? 'address' : 'user', subject);
            process.stdout.write(had ? `cleared lockout of ${subject}\n` : `${subject} was not locked out (failure count reset)\n`);
            return EXIT.ok;
          }),
        ),
      ),
  );
  return l;
}
