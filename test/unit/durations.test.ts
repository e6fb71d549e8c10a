import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FakeClock, MAX_TIMER_MS, makeSystemClock, type TimerApi } from '../../src/platform/clock.js';
import { buildConfig } from '../../src/config/load.js';
import { MAX_DURATION_MS } from '../../src/config/duration.js';
import { durationFlag } from '../../src/cli/common.js';
import { cli } from '../helpers/cli.js';
import { cleanupStore, isolationYaml, tempDir } from '../helpers/gateway.js';

const DAY = 86_400_000;

/**
 * Node's timers on a FakeClock, with Node's flaw: a delay above 2^31-1 ms fires after 1 ms.
 * Records every delay asked for, so a test can see that none overflowed.
 */
function nodeLikeTimers(fake: FakeClock): TimerApi & { asked: number[] } {
  const asked: number[] = [];
  const handle = (cancel: () => void) => ({ unref: () => undefined, cancel });
  const clamp = (ms: number) => (ms > MAX_TIMER_MS ? 1 : ms);
  return {
    asked,
    setTimeout: (fn, ms) => (asked.push(ms), handle(fake.setTimeout(fn, clamp(ms)))),
    setInterval: (fn, ms) => (asked.push(ms), handle(fake.setInterval(fn, clamp(ms)))),
    clearTimeout: (h) => (h as unknown as { cancel(): void }).cancel(),
    clearInterval: (h) => (h as unknown as { cancel(): void }).cancel(),
  };
}

describe('long timers on the system clock', () => {
  it('the Node-like timers used here do overflow (so the tests below can fail)', async () => {
    const fake = new FakeClock();
    const timers = nodeLikeTimers(fake);
    let fired = 0;
    timers.setTimeout(() => fired++, 30 * DAY);
    fake.advance(100);
    expect(fired).toBe(1);
  });

  it('a 30-day timeout fires after 30 days, not after 1 ms, in steps Node can take', async () => {
    const fake = new FakeClock();
    const timers = nodeLikeTimers(fake);
    const clock = makeSystemClock(timers, () => fake.now());
    let fired = 0;
    clock.setTimeout(() => fired++, 30 * DAY);
    fake.advance(100);
    expect(fired).toBe(0);
    fake.advance(30 * DAY - 101);
    expect(fired).toBe(0);
    fake.advance(1);
    expect(fired).toBe(1);
    fake.advance(60 * DAY);
    expect(fired).toBe(1);
    expect(Math.max(...timers.asked)).toBeLessThanOrEqual(MAX_TIMER_MS);
  });

  it('cancels a chained timeout in any of its steps', async () => {
    const fake = new FakeClock();
    const clock = makeSystemClock(nodeLikeTimers(fake), () => fake.now());
    let fired = 0;
    const cancel = clock.setTimeout(() => fired++, 60 * DAY);
    fake.advance(40 * DAY); // into the second step
    cancel();
    fake.advance(40 * DAY);
    expect(fired).toBe(0);
  });

  it('a 30-day interval fires once per 30 days, and short ones stay native', async () => {
    const fake = new FakeClock();
    const timers = nodeLikeTimers(fake);
    const clock = makeSystemClock(timers, () => fake.now());
    const at: number[] = [];
    const t0 = fake.now();
    const stop = clock.setInterval(() => at.push(fake.now() - t0), 30 * DAY);
    let short = 0;
    const stopShort = clock.setInterval(() => short++, 3_600_000);
    fake.advance(95 * DAY);
    expect(at).toEqual([30 * DAY, 60 * DAY, 90 * DAY]);
    expect(short).toBe(95 * 24);
    stop();
    stopShort();
    fake.advance(30 * DAY);
    expect(at).toHaveLength(3);
    expect(Math.max(...timers.asked)).toBeLessThanOrEqual(MAX_TIMER_MS);
  });

  it('treats negative and NaN delays as "now", like Node', async () => {
    const fake = new FakeClock();
    const clock = makeSystemClock(nodeLikeTimers(fake), () => fake.now());
    let fired = 0;
    clock.setTimeout(() => fired++, -5);
    clock.setTimeout(() => fired++, Number.NaN);
    fake.advance(0);
    expect(fired).toBe(2);
  });
});

describe('durations are bounded at the edge', () => {
  const dir = tempDir('tg-dur-');
  chmodSync(dir, 0o711);
  afterAll(async () => {
    cleanupStore(path.join(dir, 'data'));
    rmSync(dir, { recursive: true, force: true });
  });

  it('config: a duration beyond the bound is refused naming the field and the bound', async () => {
    expect(buildConfig({ sessions: { maxSessionTime: '30d' } }, { file: null, baseDir: dir }).sessions.maxSessionTime).toBe(30 * DAY);
    expect(() => buildConfig({ sessions: { maxSessionTime: '400d' } }, { file: null, baseDir: dir })).toThrow(
      /sessions\.maxSessionTime: "400d" is longer than the maximum of 365d/,
    );
    expect(() => buildConfig({ sessions: { idleTimeout: 1e30 } }, { file: null, baseDir: dir })).toThrow(/sessions\.idleTimeout.*maximum of 365d/);
  });

  it('CLI flags: 30d is fine, more than a year is TG_ERR_INVALID_ARGUMENT naming the bound', async () => {
    expect(durationFlag('30d', '--max-session')).toBe(30 * DAY);
    expect(durationFlag('365d', '--max-session')).toBe(MAX_DURATION_MS);
    expect(() => durationFlag('366d', '--max-session')).toThrow(
      expect.objectContaining({ code: 'TG_ERR_INVALID_ARGUMENT', message: '--max-session: 366d is longer than the maximum of 365d' }),
    );
    expect(() => durationFlag('99999999999999999999d', '--idle-timeout')).toThrow(/--idle-timeout: .* is longer than the maximum of 365d/);
  });

  it('the real CLI refuses --max-session 400d with exit 2 and stores nothing', async () => {
    const config = path.join(dir, 'config.yaml');
    // Hermetic: the role's own OS account (made by role add as root) gets a per-test prefix and is removed.
    writeFileSync(config, `dataDir: ./data\nkeysDir: ./keys\n${isolationYaml(dir)}`);
    expect(cli(['init', '--config', config]).status).toBe(0);
    const bad = cli(['role', 'add', 'longrole', '--max-session', '400d', '--config', config]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('TG_ERR_INVALID_ARGUMENT: --max-session: 400d is longer than the maximum of 365d');
    expect(cli(['role', 'add', 'longrole', '--max-session', '30d', '--idle-timeout', '30d', '--config', config]).status).toBe(0);
    expect(cli(['role', 'list', '--config', config]).stdout).toContain('longrole');
  });
});
