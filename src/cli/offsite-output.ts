import { printable } from './output.js';
import type { OffsiteVerdict } from '../evidence/offsite-verify.js';

/** One line per verdict, then one indented line per difference: what `verify --offsite` and `audit verify --offsite` print. */
export function offsiteLines(verdicts: OffsiteVerdict[], subject?: string): string {
  return verdicts
    .map((v) => {
      const status = v.status === 'differs' ? 'DIFFERS' : v.status;
      const head = `${printable(subject ?? v.subject)} [${v.sink}]: ${status}: local ${v.local}; off the box ${v.offsite}`;
      const lines = v.differences.map((d) => `  ${d.problem ? 'PROBLEM' : 'note'} ${d.kind}${d.at !== null ? ` at ${d.at}` : ''}: ${printable(d.detail)}`);
      return [head, ...lines].join('\n') + '\n';
    })
    .join('');
}
