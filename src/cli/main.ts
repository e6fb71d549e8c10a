import { Command, CommanderError } from 'commander';
import { reportError } from './output.js';
import { exitStatusOf } from './common.js';
import { EXIT } from '../errors.js';
import { VERSION } from '../gateway.js';
import { serveCommand } from './serve.js';
import { initCommand } from './init.js';
import { migrateCommand } from './migrate.js';
import { hostkeyCommand } from './hostkey.js';
import { userCommand } from './user.js';
import { keyCommand } from './key.js';
import { totpCommand } from './totp.js';
import { roleCommand } from './role.js';
import { lockoutsCommand } from './lockouts.js';
import { sessionsCommand } from './sessions.js';
import { nodesCommand } from './nodes.js';
import { recordingCommands } from './recording.js';
import { recordingsCommand } from './recordings.js';
import { auditCommand } from './audit.js';
import { complianceCommand } from './compliance.js';
import { unmaskCommand } from './unmask.js';

/** The `tmuxgate` command tree: one file per noun, wired here in the order `--help` lists them. */
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
  const nouns = [
    serveCommand(),
    initCommand(),
    migrateCommand(),
    hostkeyCommand(),
    userCommand(),
    keyCommand(),
    totpCommand(),
    roleCommand(),
    lockoutsCommand(),
    sessionsCommand(),
    nodesCommand(),
    ...recordingCommands(),
    recordingsCommand(),
    unmaskCommand(),
    auditCommand(),
    complianceCommand(),
  ];
  for (const c of nouns) program.addCommand(c);
  const override = (cmd: Command) => {
    cmd.exitOverride();
    cmd.configureOutput({ writeErr: (s) => process.stderr.write(s) });
    for (const sub of cmd.commands) override(sub);
  };
  override(program);
  return program;
}

/** Runs the CLI; returns the exit status (the command's own, or the one its error maps to). */
export async function runCli(argv: string[]): Promise<number> {
  const program = buildCli();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitStatusOf(program);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return EXIT.ok;
      return EXIT.usage;
    }
    return reportError(e);
  }
}
