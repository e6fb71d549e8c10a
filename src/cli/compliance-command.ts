import { Command } from 'commander';
import { example, withAdmin, withCommon } from './common.js';
import { printJson, printable } from './output.js';
import { EXIT } from '../errors.js';
import { runChecks } from '../compliance/checks.js';

/** `tmuxgate compliance report`: pass/fail per safeguard with the evidence read; non-zero on any fail. */
export function complianceReportCommand(): Command {
  return withCommon(new Command('report'))
    .description('check the HIPAA technical safeguards and tmux hardening against the live system')
    .option('--json', 'JSON output')
    .option('--markdown', 'a Markdown table for the security team')
    .addHelpText('after', example('tmuxgate compliance report', 'tmuxgate compliance report --markdown > report.md'))
    .action((o: { json?: boolean; markdown?: boolean }, cmd: Command) =>
      withAdmin(cmd, (a) => {
        const checks = runChecks(a);
        const failed = checks.filter((c) => !c.pass).length;
        a.audit.emit(a.actor, { type: 'admin.change', action: 'compliance.report', target: 'gateway', detail: { failed, checks: checks.length } });
        if (o.json) printJson({ generatedAt: new Date(a.clock.now()).toISOString(), passed: checks.length - failed, failed, checks });
        else if (o.markdown) {
          const generated = new Date(a.clock.now()).toISOString();
          process.stdout.write(`# tmuxgate compliance report\n\nGenerated ${generated}: ${checks.length - failed} pass, ${failed} fail.\n\n`);
          process.stdout.write('| result | safeguard | check | evidence |\n| --- | --- | --- | --- |\n');
          for (const c of checks) {
            const evidence = printable(c.evidence).replace(/\|/g, '\\|');
            process.stdout.write(`| ${c.pass ? 'PASS' : '**FAIL**'} | ${c.safeguard} | ${c.title} | ${evidence} |\n`);
          }
        } else {
          for (const c of checks) process.stdout.write(`${c.pass ? 'PASS' : 'FAIL'}  ${c.safeguard.padEnd(18)} ${c.title}\n      ${printable(c.evidence)}\n`);
          process.stdout.write(`\n${checks.length - failed} pass, ${failed} fail\n`);
        }
        process.exitCode = failed ? EXIT.failure : EXIT.ok;
      }),
    );
}
