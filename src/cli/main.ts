import { Command, CommanderError } from 'commander';
import { reportError } from './output.js';
import { EXIT } from '../errors.js';
import { VERSION } from '../gateway.js';
import { serveCommand } from './serve.js';
import { keyCommand, roleCommand, totpCommand, userCommand } from './admin-commands.js';
import { hostkeyCommand, initCommand, migrateCommand } from './system-commands.js';
import { auditPubkeyCommand, exportCommand, searchCommand, sessionsCommand, verifyCommand } from './recording-commands.js';
import { replayCommand } from './replay-command.js';
import { extendKey, extendRole, extendSessions, extendTotp, extendUser, lockoutsCommand } from './admin-more.js';
import { auditCommands } from './audit-commands.js';
import { complianceReportCommand } from './compliance-command.js';

/** The `tmuxgate` command tree. */
export function buildCli(): Command {
  const program = new Command('tmuxgate')
    .description('SSH gateway for MFA-authenticated, recorded tmux sessions')
    .version(VERSION)
    .option('--config <file>', 'config file (default: $TMUXGATE_CONFIG, else built-in defaults)')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      `
Exit status: 0 ok, 1 failure, 2 usage or config error, 3 not found, 4 conflict,
             5 integrity failure, 6 denied, 10 internal error.

Example:
  $ tmuxgate init && tmuxgate role add ops && tmuxgate user add alice --role ops
  $ tmuxgate key add alice --file alice.pub && tmuxgate totp enroll alice
  $ tmuxgate serve`,
    );
  const audit = new Command('audit').description('the hash-chained audit log and its keys');
  audit.addCommand(auditPubkeyCommand());
  auditCommands(audit);
  const user = userCommand();
  extendUser(user);
  const key = keyCommand();
  extendKey(key);
  const totp = totpCommand();
  extendTotp(totp);
  const role = roleCommand();
  extendRole(role);
  const sessions = sessionsCommand();
  extendSessions(sessions);
  const compliance = new Command('compliance').description('HIPAA technical safeguards, checked against the live system');
  compliance.addCommand(complianceReportCommand());
  for (const c of [serveCommand(), initCommand(), migrateCommand(), hostkeyCommand(), user, key, totp, role, lockoutsCommand(), sessions, replayCommand(), exportCommand(), searchCommand(), verifyCommand(), audit, compliance]) {
    program.addCommand(c);
  }
  const override = (cmd: Command) => {
    cmd.exitOverride();
    cmd.configureOutput({ writeErr: (s) => process.stderr.write(s) });
    for (const sub of cmd.commands) override(sub);
  };
  override(program);
  return program;
}

/** Runs the CLI; returns the exit status. */
export async function runCli(argv: string[]): Promise<number> {
  const program = buildCli();
  try {
    await program.parseAsync(argv, { from: 'user' });
    // Commands that report a verdict (verify) set process.exitCode themselves.
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return EXIT.ok;
      return EXIT.usage;
    }
    return reportError(e);
  }
}
