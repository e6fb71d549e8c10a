import { Command } from 'commander';
import { configOf, example, handler, withCommon } from './common.js';
import { EXIT } from '../errors.js';
import { openDb, migrate } from '../store/db.js';

/** `tmuxgate migrate`: apply pending schema migrations. */
export function migrateCommand(): Command {
  return withCommon(new Command('migrate'))
    .description('apply pending database migrations (the gateway also does this at start)')
    .addHelpText('after', example('tmuxgate migrate'))
    .action(
      handler(async (_o: unknown, cmd: Command) => {
        const c = configOf(cmd);
        const db = openDb(c.paths.dbFile, { migrate: false });
        try {
          const applied = migrate(db);
          process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
        } finally {
          db.close();
        }
        return EXIT.ok;
      }),
    );
}
