import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestGateway, type TestUser } from '../helpers/gateway.js';
import { addRole, grantRole } from '../../src/admin/operations.js';
import { waitUntil } from '../helpers/poll.js';

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

  it("a watcher's keystrokes never reach the owner: not even a program the owner's server makes the watcher's client run", async () => {
    // The watcher's read-only tmux client runs as the owner's account (privilege separation) and
    // obeys the owner's server: `detach-client -E` makes it exec any program, which then reads the
    // watcher's terminal. Here it stores what the watcher types in the owner's home.
    const a = await t.login(alice);
    const share = await command(alice, 'share bob');
    expect(await share.waitExit()).toBe(0);
    const w = await command(bob, 'watch alice+ops', true);
    await a.waitFor('bob is watching (read-only)');
    await t.run(
      a,
      `for c in $(tmux list-clients -F '#{client_readonly}#{client_name}' | sed -n 's/^1//p'); do tmux detach-client -t "$c" -E "cat > $HOME/loot"; done; sleep 0.3; echo HOOKED-$((2+3))`,
      'HOOKED-5',
    );
    w.write('bob-typed-SECRET-7\r');
    // Ctrl-\ leaves, whatever runs in the watcher's client; what bob typed before it was dealt with first.
    w.write('\x1c');
    const code = await w.waitExit();
    await t.run(a, `cat $HOME/loot 2>/dev/null; echo LOOT-END-$((4+4))`, 'LOOT-END-8');
    expect(a.text).not.toContain('bob-typed-SECRET-7');
    expect(code).toBe(0);
    await waitUntil(async () => (await t.audit('share.leave')).some((e) => e.data.viewer === 'bob' && e.data.reason === 'detached'), 'bob left');
    (await command(alice, 'unshare bob')).kill();
    a.kill();
  });

  it('still refuses any other exec command', async () => {
    const d = await command(alice, 'share');
    await d.waitFor(/exec request failed/);
    const e = await command(alice, 'cat /etc/passwd');
    await e.waitFor(/exec request failed/);
  });
});
