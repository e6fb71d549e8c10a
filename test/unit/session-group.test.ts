import { afterEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { raiseSessionGroup } from '../../src/platform/priority.js';

/** A proc tree with what raiseSessionGroup reads: the autogroup switch, self/stat and self/autogroup. */
function fakeProc(o: { enabled?: string | null; stat: string; autogroup?: boolean }): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'tg-proc-'));
  mkdirSync(path.join(root, 'sys/kernel'), { recursive: true });
  mkdirSync(path.join(root, 'self'));
  if (o.enabled !== null) writeFileSync(path.join(root, 'sys/kernel/sched_autogroup_enabled'), `${o.enabled ?? '1'}\n`);
  writeFileSync(path.join(root, 'self/stat'), o.stat);
  if (o.autogroup !== false) writeFileSync(path.join(root, 'self/autogroup'), '/autogroup-7 nice 0\n');
  return root;
}

describe('raiseSessionGroup: the gateway session group under sched autogroup', () => {
  const roots: string[] = [];
  const proc = (o: Parameters<typeof fakeProc>[0]) => {
    const r = fakeProc(o);
    roots.push(r);
    return r;
  };
  afterEach(() => {
    for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
  });
  const group = (root: string) => readFileSync(path.join(root, 'self/autogroup'), 'utf8');

  it('raises the group of a gateway that leads its session', () => {
    const root = proc({ stat: '4242 (node) S 1 4242 4242 0 -1 4194560 ...' });
    expect(raiseSessionGroup(-5, root)).toEqual({ kind: 'raised' });
    expect(group(root)).toBe('-5');
  });

  it("leaves a terminal's session alone: its shell would be raised with the gateway", () => {
    const root = proc({ stat: '4242 (node) S 4100 4242 4100 34816 4242 4194560 ...' });
    expect(raiseSessionGroup(-5, root)).toEqual({ kind: 'shares-session' });
    expect(group(root)).toBe('/autogroup-7 nice 0\n');
  });

  it('reads the session after the last parenthesis: a process name cannot pose as one', () => {
    // comm is the executable's name, up to 15 bytes, and may hold ") S 1 4242 4242".
    const root = proc({ stat: '4242 (x) S 1 4242 4242) S 7 8 9 0 -1 4194560 ...' });
    expect(raiseSessionGroup(-5, root)).toEqual({ kind: 'shares-session' });
  });

  it('does nothing where autogroup is off, missing, or not asked for', () => {
    const leader = '4242 (node) S 1 4242 4242 0 -1 4194560 ...';
    for (const root of [proc({ enabled: '0', stat: leader }), proc({ enabled: null, stat: leader }), proc({ stat: leader, autogroup: false })]) {
      expect(raiseSessionGroup(-5, root)).toEqual({ kind: 'no-autogroup' });
    }
    const root = proc({ stat: leader });
    expect(raiseSessionGroup(0, root)).toEqual({ kind: 'no-autogroup' });
    expect(group(root)).toBe('/autogroup-7 nice 0\n');
  });

  it('says why when the kernel refuses', () => {
    const root = proc({ stat: '4242 (node) S 1 4242 4242 0 -1 4194560 ...', autogroup: false });
    mkdirSync(path.join(root, 'self/autogroup')); // the write fails (EISDIR), as the kernel's EPERM would
    const r = raiseSessionGroup(-5, root);
    expect(r.kind).toBe('refused');
    expect(r.kind === 'refused' && r.err).toMatch(/EISDIR/);
  });
});
