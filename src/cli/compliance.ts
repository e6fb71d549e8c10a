import { Command } from 'commander';
import { example, handler, withAdmin, withCommon } from './common.js';
import { printJson, printable } from './output.js';
import { EXIT } from '../errors.js';
import { complianceReport, type ComplianceReport } from '../compliance/checks.js';

/** The report as a Markdown table for the security team. */
function markdown(r: ComplianceReport): string {
  const rows = r.checks.map((c) => `| ${c.pass ? 'PASS' : '**FAIL**'} | ${c.safeguard} | ${c.title} | ${printable(c.evidence).replace(/\|/g, '\\|')} |\n`);
  return (
    `# tmuxgate compliance report\n\nGenerated ${r.generatedAt}: ${r.passed} pass, ${r.failed} fail.\n\n` +
    '| result | safeguard | check | evidence |\n| --- | --- | --- | --- |\n' +
    rows.join('')
  );
}

/** The report as text: one block per check, then the counts. */
function text(r: ComplianceReport): string {
  const blocks = r.checks.map((c) => `${c.pass ? 'PASS' : 'FAIL'}  ${c.safeguard.padEnd(18)} ${c.title}\n      ${printable(c.evidence)}\n`);
  return `${blocks.join('')}\n${r.passed} pass, ${r.failed} fail\n`;
}

/** `tmuxgate compliance report`: pass/fail per safeguard with the evidence read; exit 1 on any fail. */
export function complianceCommand(): Command {
  const compliance = new Command('compliance').description('HIPAA technical safeguards, checked against the live system');
  compliance.addCommand(
    withCommon(new Command('report'))
      .description('check the HIPAA technical safeguards and tmux hardening against the live system')
      .option('--json', 'JSON output')
      .option('--markdown', 'a Markdown table for the security team')
      .addHelpText('after', example('tmuxgate compliance report', 'tmuxgate compliance report --markdown > report.md'))
      .action(
        handler(async (o: { json?: boolean; markdown?: boolean }, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            const r = await complianceReport(a);
            if (o.json) printJson(r);
            else process.stdout.write(o.markdown ? markdown(r) : text(r));
            return r.failed ? EXIT.failure : EXIT.ok;
          }),
        ),
      ),
  );
  return compliance;
}
