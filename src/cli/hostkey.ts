import { Command } from 'commander';
import { configOf, example, handler, withCommon } from './common.js';
import { printJson } from './output.js';
import { EXIT } from '../errors.js';
import { loadHostKey, knownHostsLine } from '../auth/host-key.js';

/** `tmuxgate hostkey`: fingerprint and a known_hosts line to hand to users. */
export function hostkeyCommand(): Command {
  return withCommon(new Command('hostkey'))
    .description("print the gateway's host key fingerprint and a known_hosts line")
    .option('--json', 'JSON output')
    .addHelpText('after', example('tmuxgate hostkey >> ~/.ssh/known_hosts.tmuxgate'))
    .action(
      handler(async (o: { json?: boolean }, cmd: Command) => {
        const c = configOf(cmd);
        const k = loadHostKey(c.paths.keysDir, { create: false });
        const line = knownHostsLine(c.listen.host, c.listen.port, k.publicLine);
        if (o.json) printJson({ fingerprint: k.fingerprint, type: 'ssh-ed25519', knownHosts: line });
        else process.stdout.write(`256 ${k.fingerprint} tmuxgate host key (ED25519)\n${line}\n`);
        return EXIT.ok;
      }),
    );
}
