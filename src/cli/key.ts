import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { example, handler, withAdmin, withCommon } from './common.js';
import { printJson, printTable, printable } from './output.js';
import { EXIT, TgError } from '../errors.js';
import { addKey, removeKey } from '../admin/operations.js';
import { rotateKeys } from '../admin/master-key.js';

/** The one authorized_keys line of a .pub file (comments and blank lines aside). */
function keyLineOf(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new TgError('TG_ERR_INVALID_ARGUMENT', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  const lines = text.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
  if (lines.length !== 1) throw new TgError('TG_ERR_INVALID_KEY', `${file}: expected exactly one key line, found ${lines.length}`);
  return lines[0]!;
}

/** `tmuxgate key add | list | remove | rotate` (users' SSH keys; `rotate` is the master key) */
export function keyCommand(): Command {
  const key = new Command('key').alias('keys').description("manage users' SSH public keys");
  key.addCommand(
    withCommon(new Command('add'))
      .description('enroll a public key (an authorized_keys line, or --file)')
      .argument('<user>')
      .argument('[line]', "authorized_keys line, e.g. 'ssh-ed25519 AAAA... alice@laptop'")
      .option('--file <pubkey>', 'read the key from a .pub file')
      .addHelpText('after', example('tmuxgate key add alice --file ~/.ssh/id_ed25519.pub', "tmuxgate key add alice 'ssh-ed25519 AAAAC3Nza... alice@laptop'"))
      .action(
        handler(async (userName: string, line: string | undefined, o: { file?: string }, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            if ((line === undefined) === (o.file === undefined)) {
              throw new TgError('TG_ERR_USAGE', 'give either an authorized_keys line or --file, not both or neither');
            }
            const k = await addKey(a, userName, o.file ? keyLineOf(o.file) : line!);
            const what = `${printable(k.key_type)}${k.comment ? `, ${printable(k.comment)}` : ''}`;
            process.stdout.write(`added key ${k.fingerprint} (${what}) for ${printable(userName)}\n`);
            return EXIT.ok;
          }),
        ),
      ),
  );
  key.addCommand(
    withCommon(new Command('list'))
      .description("list a user's keys with SHA256 fingerprints")
      .argument('<user>')
      .option('--json', 'JSON output')
      .addHelpText('after', example('tmuxgate key list alice', 'tmuxgate key list alice --json'))
      .action(
        handler(async (userName: string, o: { json?: boolean }, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            const u = await a.users.get(userName);
            const rows = (await a.keys.listForUser(u.id)).map((k) => ({
              fingerprint: k.fingerprint,
              type: k.key_type,
              bits: k.bits,
              comment: k.comment,
              added: new Date(k.created_at).toISOString(),
            }));
            if (o.json) printJson(rows);
            else printTable(rows, ['bits', 'fingerprint', 'comment', 'type']);
            return EXIT.ok;
          }),
        ),
      ),
  );
  key.addCommand(
    withCommon(new Command('rotate'))
      .description('rotate the master key: re-wrap every recording data key and TOTP secret (recordings untouched)')
      .addHelpText('after', example('tmuxgate keys rotate && systemctl restart tmuxgate'))
      .action(
        handler(async (_o: unknown, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            const r = await rotateKeys(a);
            process.stdout.write(
              `master key rotated: ${r.oldId} -> ${r.newId}; ${r.rewrapped} secrets re-wrapped. ` +
                `The old key is kept as master.key.retired-${r.oldId}. Restart the gateway so new sessions use the new key.\n`,
            );
            return EXIT.ok;
          }),
        ),
      ),
  );
  key.addCommand(
    withCommon(new Command('remove'))
      .description('remove a key by its SHA256 fingerprint')
      .argument('<user>')
      .argument('<fingerprint>')
      .addHelpText('after', example('tmuxgate key remove alice SHA256:PTXOWe/y7/LH3phru6Uuqo4c1pEg4qK18iJjAu6b5eA'))
      .action(
        handler(async (u: string, fp: string, _o: unknown, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            await removeKey(a, u, fp);
            process.stdout.write(`removed key ${fp} from ${u}\n`);
            return EXIT.ok;
          }),
        ),
      ),
  );
  return key;
}
