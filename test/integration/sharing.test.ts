import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestGateway, type TestUser } from '../helpers/gateway.js';
import { addRole, grantRole } from '../../src/admin/operations.js';

/** Read-only sharing through the gateway's own exec commands, with the real OpenSSH client. */
describe('read-only sharing', () => {
  const t = new TestGateway();
  let alice: TestUser;
  let bob: TestUser;
  beforeAll(async () => {
    await t.start();
    alice = await t.user('alice');
    bob = await t.user('bob');
  });
  afterAll(() => t.stop());

  /** Runs a gateway command over ssh exec (key + TOTP as always) and returns its output. */
  async function command(u: TestUser, cmd: string, tty = false) {
    const d = t.ssh(u, u.name, tty ? ['-t'] : ['-T'], {}, [cmd]);
    await d.waitFor('Verification code:');
    d.write(t.code(u) + '\r');
    return d;
  }

  it('lets alice share with bob, who watches read-only; alice sees who watches; unshare ends it', async () => {
    const a = await t.login(alice);
    await t.run(a, 'echo OWNER-SCREEN-$((7*6))', 'OWNER-SCREEN-42');

    const notShared = await command(bob, 'watch alice', true);
    await notShared.waitFor('that session is not shared with you');
    expect(await notShared.waitExit()).toBe(1);

    const share = await command(alice, 'share bob');
    await share.waitFor('bob may now watch your ops session read-only');
    expect(await share.waitExit()).toBe(0);

    const w = await command(bob, 'watch alice+ops', true);
    await w.waitFor('OWNER-SCREEN-42');
    await a.waitFor('bob is watching (read-only)');
    w.write('echo VIEWER-TYPED-$((1+1))\r');
    await t.run(a, 'echo OWNER-AGAIN', 'OWNER-AGAIN');
    await w.waitFor('OWNER-AGAIN');
    expect(a.text).not.toContain('VIEWER-TYPED-2');

    const list = await command(alice, 'watchers');
    await list.waitFor(/may watch: bob[\s\S]*watching now: bob/);

    const unshare = await command(alice, 'unshare bob');
    await unshare.waitFor('bob may no longer watch');
    await w.waitFor('alice stopped sharing');
    await w.waitExit();
    const types = (await t.audit()).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['share.grant', 'share.join', 'share.leave', 'share.revoke']));
    a.kill();
  });

  it('a viewer role is a standing read-only view of one named session', async () => {
    await addRole(t.admin, { name: 'watch-alice', kind: 'viewer', viewOf: 'alice+ops' });
    await grantRole(t.admin, 'bob', 'watch-alice');
    const a = await t.login(alice);
    await t.run(a, 'echo VIEWED-$((8*8))', 'VIEWED-64');
    const v = t.ssh(bob, 'bob+watch-alice');
    await v.waitFor('Verification code:');
    v.write(t.code(bob) + '\r');
    await v.waitFor('VIEWED-64');
    v.write('echo FROM-VIEWER-$((2+2))\r');
    await t.run(a, 'echo OWNER-LAST', 'OWNER-LAST');
    await v.waitFor('OWNER-LAST');
    expect(a.text).not.toContain('FROM-VIEWER-4');
    v.kill();
    a.kill();
    await expect(addRole(t.admin, { name: 'bad-viewer', kind: 'viewer' })).rejects.toThrow(/--view-of/);
  });

  it('still refuses any other exec command', async () => {
    const d = await command(alice, 'share');
    await d.waitFor(/exec request failed/);
    const e = await command(alice, 'cat /etc/passwd');
    await e.waitFor(/exec request failed/);
  });
});
