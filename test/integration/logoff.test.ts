import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { TestGateway, socketsIn, type TestUser } from '../helpers/gateway.js';
import { waitUntil } from '../helpers/poll.js';
import { addRole, grantRole } from '../../src/admin/operations.js';

describe('automatic logoff through the real client (injected clock)', () => {
  const t = new TestGateway({ sessions: { idleTimeout: '15m', idleWarning: '60s', maxSessionTime: '12h' } });
  let alice: TestUser;

  beforeAll(async () => {
    await t.start();
    alice = await t.user('alice');
    await addRole(t.admin, { name: 'short', maxSessionMs: 30 * 60_000, idleTimeoutMs: 60 * 60_000 });
    await grantRole(t.admin, 'alice', 'short');
  });
  afterAll(() => t.stop());

  it('warns a minute ahead, then logs off after 15 idle minutes; the tmux session lives on', async () => {
    const d = await t.login(alice);
    await t.run(d, 'STAY=still-here; echo stored-$((1+1))', 'stored-2');
    const mark = d.out.length;
    t.clock.advance(14 * 60_000);
    await d.waitFor('you will be logged off in 60 seconds', 10_000, mark);
    t.clock.advance(60_000);
    await d.waitFor('logged off after 15 minutes without input', 10_000, mark);
    await d.waitExit();
    // The end is audited once the recording is sealed, just after the client has left.
    const end = await waitUntil(async () => (await t.audit('session.end')).at(-1), 'session.end audited');
    expect(end.data.reason).toBe('idle-timeout');
    const [sock] = socketsIn(`${t.config.paths.socketDir}/r1-u1`);
    expect(spawnSync('tmux', ['-S', sock!, 'has-session']).status).toBe(0);
    const back = await t.login(alice);
    await t.run(back, 'echo "$STAY"', 'still-here');
    back.kill();
  });

  it("uses the role's own idle timeout and warning time", async () => {
    await addRole(t.admin, { name: 'brief', idleTimeoutMs: 5 * 60_000, idleWarningMs: 2 * 60_000 });
    await grantRole(t.admin, 'alice', 'brief');
    const d = await t.login(alice, 'alice+brief');
    const mark = d.out.length;
    t.clock.advance(3 * 60_000);
    await d.waitFor('you will be logged off in 120 seconds', 10_000, mark);
    t.clock.advance(2 * 60_000);
    await d.waitFor('logged off after 5 minutes without input', 10_000, mark);
    await d.waitExit();
  });

  it("is not kept alive by the terminal's own replies to queries; a real keystroke still is", async () => {
    // What a user's terminal sends by itself when a program in the session asks: DA, CPR, focus,
    // OSC colour/title replies, DECRQSS and XTVERSION replies, mode and window reports.
    const REPORTS = [
      '\x1b[?62;22c',
      '\x1b[>1;10;0c',
      '\x1b[12;40R',
      '\x1b[I',
      '\x1b[O',
      '\x1b]11;rgb:0000/0000/0000\x1b\\',
      '\x1b]lmy title\x1b\\',
      '\x1bP1$r0m\x1b\\',
      '\x1bP>|xterm(390)\x1b\\',
      '\x1b[?2004;1$y',
      '\x1b[8;40;120t',
    ];
    const ignored = () => t.logLines.filter((l) => l.includes('terminal reports only')).length;
    /** The client writes only reports; resolves once the gateway has read them all (its debug log says so). */
    const reportsOnly = async () => {
      const before = ignored();
      for (const r of REPORTS) {
        const seen = ignored();
        d.write(r);
        await waitUntil(() => ignored() > seen, 'the gateway read the reports');
      }
      expect(ignored() - before).toBeGreaterThanOrEqual(REPORTS.length);
    };
    // Its own role (own tmux session): tmux hands the unknown reports to this shell's input line.
    await addRole(t.admin, { name: 'reports', idleTimeoutMs: 15 * 60_000, idleWarningMs: 60_000 });
    await grantRole(t.admin, 'alice', 'reports');
    const d = await t.login(alice, 'alice+reports');
    for (let i = 0; i < 2; i++) {
      await reportsOnly();
      t.clock.advance(5 * 60_000);
    }
    // Ten minutes of reports only, then one real key (Ctrl-U clears what tmux passed to the shell).
    d.write('\x15');
    await t.run(d, 'echo typed-$((6*7))', 'typed-42');
    const mark = d.out.length;
    for (let i = 0; i < 2; i++) {
      t.clock.advance(5 * 60_000);
      await reportsOnly();
    }
    expect(d.exitCode).toBeNull(); // 20 minutes after login, 10 after the keystroke: still here
    t.clock.advance(4 * 60_000);
    await d.waitFor('you will be logged off in 60 seconds', 10_000, mark);
    await reportsOnly();
    t.clock.advance(60_000);
    await d.waitFor('logged off after 15 minutes without input', 10_000, mark);
    await d.waitExit();
  });

  it('typing keeps a session alive past the idle timeout', async () => {
    const d = await t.login(alice);
    for (let i = 0; i < 4; i++) {
      t.clock.advance(10 * 60_000);
      await t.run(d, `echo tick-${i}-$((i+1))`.replace('$((i+1))', String(i + 1)), `tick-${i}-${i + 1}`);
    }
    expect(d.exitCode).toBeNull();
    d.kill();
  });

  it("ends at the role's maximum session time even while the user types", async () => {
    const d = await t.login(alice, 'alice+short');
    for (let i = 0; i < 3; i++) {
      t.clock.advance(9 * 60_000);
      await t.run(d, `echo busy-${i}`, `busy-${i}`);
    }
    t.clock.advance(4 * 60_000);
    await d.waitFor('maximum session time of 30 minutes reached');
    await d.waitExit();
  });
});
