import { Command } from 'commander';
import { createInterface } from 'node:readline/promises';
import QRCode from 'qrcode';
import { example, handler, withAdmin, withCommon } from './common.js';
import { printJson, printable } from './output.js';
import type { AdminContext } from '../admin/context.js';
import { EXIT, TgError } from '../errors.js';
import { confirmTotp, enrollTotp, generateRecoveryCodes, resetTotp } from '../admin/operations.js';

/** Asks for the code the app shows now, up to three times, until the pending secret is confirmed. */
async function confirmInteractively(a: AdminContext, userName: string): Promise<void> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    for (let attempt = 1; ; attempt++) {
      const code = await rl.question('Enter the code the app shows now to confirm: ');
      try {
        await confirmTotp(a, userName, code);
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
}

/** `tmuxgate totp enroll | confirm | reset | recovery` */
export function totpCommand(): Command {
  const totp = new Command('totp').description('enroll TOTP (authenticator app) secrets');
  totp.addCommand(
    withCommon(new Command('enroll'))
      .description('make a new secret: shows a QR code and asks for a code to confirm it (pending until confirmed)')
      .argument('<user>')
      .option('--json', 'print {"user","secret","uri"} and leave it pending for `totp confirm`')
      .addHelpText('after', example('tmuxgate totp enroll alice', 'tmuxgate totp enroll alice --json && tmuxgate totp confirm alice 123456'))
      .action(
        handler(async (userName: string, o: { json?: boolean }, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            const r = await enrollTotp(a, userName);
            if (o.json) {
              printJson(r);
              return EXIT.ok;
            }
            const qr = await QRCode.toString(r.uri, { type: 'terminal', small: true, errorCorrectionLevel: 'M' });
            process.stdout.write(`${qr}\nScan with an authenticator app, or enter the secret by hand:\n  ${r.secret}\n  ${r.uri}\n\n`);
            if (process.stdin.isTTY) await confirmInteractively(a, userName);
            else process.stdout.write(`pending: confirm with: tmuxgate totp confirm ${userName} CODE\n`);
            return EXIT.ok;
          }),
        ),
      ),
  );
  totp.addCommand(
    withCommon(new Command('confirm'))
      .description('confirm a pending secret with the code the app shows now')
      .argument('<user>')
      .argument('<code>')
      .addHelpText('after', example('tmuxgate totp confirm alice 492039'))
      .action(
        handler(async (userName: string, code: string, _o: unknown, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            await confirmTotp(a, userName, code);
            process.stdout.write(`confirmed: ${userName} can now log in with key + code\n`);
            return EXIT.ok;
          }),
        ),
      ),
  );
  totp.addCommand(
    withCommon(new Command('reset'))
      .description("drop a user's TOTP secret (they cannot log in until enrolled again)")
      .argument('<user>')
      .addHelpText('after', example('tmuxgate totp reset alice && tmuxgate totp enroll alice'))
      .action(
        handler(async (u: string, _o: unknown, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            await resetTotp(a, u);
            process.stdout.write(`TOTP reset for ${u}; enroll again with: tmuxgate totp enroll ${u}\n`);
            return EXIT.ok;
          }),
        ),
      ),
  );
  totp.addCommand(
    withCommon(new Command('recovery'))
      .description('make one-time recovery codes (replacing old ones); each works once in place of a code')
      .argument('<user>')
      .option('-n, --count <n>', 'how many', '10')
      .option('--json', 'JSON output')
      .addHelpText('after', example('tmuxgate totp recovery alice'))
      .action(
        handler(async (u: string, o: { count: string; json?: boolean }, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            const n = Number(o.count);
            if (!Number.isInteger(n) || n < 1 || n > 50) throw new TgError('TG_ERR_INVALID_ARGUMENT', '--count must be 1..50');
            const codes = await generateRecoveryCodes(a, u, n);
            if (o.json) printJson({ user: u, codes });
            else process.stdout.write(`recovery codes for ${u} (each works once; shown only now):\n${codes.map((c) => `  ${c}`).join('\n')}\n`);
            return EXIT.ok;
          }),
        ),
      ),
  );
  return totp;
}
