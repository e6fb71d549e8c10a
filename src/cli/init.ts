import { Command } from 'commander';
import { configOf, example, handler, withCommon } from './common.js';
import { printJson } from './output.js';
import { EXIT } from '../errors.js';
import { ensureKeysDir } from '../crypto/key-files.js';
import { loadHostKey } from '../auth/host-key.js';
import { loadMasterKey } from '../crypto/master-key.js';
import { loadAuditKey } from '../crypto/audit-key.js';
import { openAdmin } from '../admin/context.js';
import { loadNodeKey } from '../cluster/node.js';

/** `tmuxgate init`: keys (0600 in a 0700 dir) and the database, idempotently. */
export function initCommand(): Command {
  return withCommon(new Command('init'))
    .description('create the host key, master key, audit key and database (keeps existing ones)')
    .option('--json', 'JSON output')
    .addHelpText('after', example('tmuxgate init --config /etc/tmuxgate/config.yaml'))
    .action(
      handler(async (o: { json?: boolean }, cmd: Command) => {
        process.umask(0o077);
        const c = configOf(cmd);
        ensureKeysDir(c.paths.keysDir);
        const host = loadHostKey(c.paths.keysDir, { create: true });
        const master = loadMasterKey(c.paths.keysDir, { create: true });
        loadAuditKey(c.paths.keysDir);
        // A cluster's nodes share one node key (their link's client key): made here with the
        // others, so nodes can run with the keys dir mounted read-only.
        if (c.cluster) loadNodeKey(c.paths.keysDir);
        const a = await openAdmin(c, { keys: master.provider });
        try {
          const detail = { hostKeyCreated: host.created, masterKeyCreated: master.created };
          await a.audit.emit(a.actor, { type: 'admin.change', action: 'init', target: c.paths.dataDir, detail });
        } finally {
          await a.close();
        }
        const out = { keysDir: c.paths.keysDir, dataDir: c.paths.dataDir, hostKeyFingerprint: host.fingerprint, masterKeyId: master.provider.keyId };
        if (o.json) printJson(out);
        else process.stdout.write(`keys in ${out.keysDir}, data in ${out.dataDir}\nhost key ${out.hostKeyFingerprint}\nmaster key id ${out.masterKeyId}\n`);
        return EXIT.ok;
      }),
    );
}
