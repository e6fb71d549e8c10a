import { Command } from 'commander';
import { configOf, example, withCommon } from './common.js';
import { printJson } from './output.js';
import { openDb, migrate } from '../store/db.js';
import { ensureKeysDir } from '../crypto/key-files.js';
import { loadHostKey, knownHostsLine } from '../ssh/host-key.js';
import { loadMasterKey } from '../crypto/master-key.js';
import { loadAuditKey } from '../crypto/audit-key.js';
import { openAdmin } from '../admin/context.js';

/** `tmuxgate init`: keys (0600 in a 0700 dir) and the database, idempotently. */
export function initCommand(): Command {
  return withCommon(new Command('init'))
    .description('create the host key, master key, audit key and database (keeps existing ones)')
    .option('--json', 'JSON output')
    .addHelpText('after', example('tmuxgate init --config /etc/tmuxgate/config.yaml'))
    .action((o: { json?: boolean }, cmd: Command) => {
      process.umask(0o077);
      const c = configOf(cmd);
      ensureKeysDir(c.paths.keysDir);
      const host = loadHostKey(c.paths.keysDir, { create: true });
      const master = loadMasterKey(c.paths.keysDir, { create: true });
      loadAuditKey(c.paths.keysDir);
      const a = openAdmin(c, { keys: master.provider });
      a.audit.emit(a.actor, { type: 'admin.change', action: 'init', target: c.paths.dataDir, detail: { hostKeyCreated: host.created, masterKeyCreated: master.created } });
      a.close();
      const out = { keysDir: c.paths.keysDir, dataDir: c.paths.dataDir, hostKeyFingerprint: host.fingerprint, masterKeyId: master.provider.keyId };
      if (o.json) printJson(out);
      else process.stdout.write(`keys in ${out.keysDir}, data in ${out.dataDir}\nhost key ${out.hostKeyFingerprint}\nmaster key id ${out.masterKeyId}\n`);
    });
}

/** `tmuxgate migrate`: apply pending schema migrations. */
export function migrateCommand(): Command {
  return withCommon(new Command('migrate'))
    .description('apply pending database migrations (the gateway also does this at start)')
    .addHelpText('after', example('tmuxgate migrate'))
    .action((_o, cmd: Command) => {
      const c = configOf(cmd);
      const db = openDb(c.paths.dbFile, { migrate: false });
      try {
        const applied = migrate(db);
        process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
      } finally {
        db.close();
      }
    });
}

/** `tmuxgate hostkey`: fingerprint and a known_hosts line to hand to users. */
export function hostkeyCommand(): Command {
  return withCommon(new Command('hostkey'))
    .description("print the gateway's host key fingerprint and a known_hosts line")
    .option('--json', 'JSON output')
    .addHelpText('after', example('tmuxgate hostkey >> ~/.ssh/known_hosts.tmuxgate'))
    .action((o: { json?: boolean }, cmd: Command) => {
      const c = configOf(cmd);
      const k = loadHostKey(c.paths.keysDir, { create: false });
      const line = knownHostsLine(c.listen.host, c.listen.port, k.publicLine);
      if (o.json) printJson({ fingerprint: k.fingerprint, type: 'ssh-ed25519', knownHosts: line });
      else process.stdout.write(`256 ${k.fingerprint} tmuxgate host key (ED25519)\n${line}\n`);
    });
}
