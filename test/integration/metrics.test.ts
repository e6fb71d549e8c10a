import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestGateway, type TestUser } from '../helpers/gateway.js';
import { waitUntil } from '../helpers/poll.js';

describe('Prometheus metrics on loopback', () => {
  const t = new TestGateway({ metrics: { enabled: true, port: 0 } });
  let alice: TestUser;
  beforeAll(async () => {
    await t.start();
    alice = await t.user('alice');
  });
  afterAll(() => t.stop());

  const scrape = async () => (await fetch(`http://127.0.0.1:${t.gw.metricsPort}/metrics`)).text();
  const value = (text: string, name: string) => Number(new RegExp(`^tmuxgate_${name.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);

  it('counts logins by result, live sessions and recorded bytes', async () => {
    const d = t.ssh(alice, 'alice');
    await d.waitFor('Verification code:');
    d.write('000000\r');
    await d.waitFor(/Verification code:[\s\S]*Verification code:/);
    d.write(t.code(alice) + '\r');
    await d.waitFor('[alice+ops]');
    await t.run(d, 'echo M-$((4*4))', 'M-16');
    t.clock.advance(1000);
    await waitUntil(async () => value(await scrape(), 'recording_bytes_total{kind="in"}') > 0, 'recorded bytes');
    const text = await scrape();
    expect(value(text, 'sessions_active')).toBe(1);
    expect(value(text, 'logins_total{result="success"}')).toBe(1);
    expect(value(text, 'logins_total{result="failure"}')).toBe(1);
    expect(text).toContain('# TYPE tmuxgate_logins_total counter');
    expect(value(text, 'process_resident_memory_bytes')).toBeGreaterThan(1e6);
    expect(value(text, 'process_heap_used_bytes')).toBeGreaterThan(1e6);
    expect(value(text, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    // A chunk was sealed for the bytes above: its compression and encryption time is counted.
    expect(value(text, 'recording_seal_seconds_total')).toBeGreaterThan(0);
    expect(value(text, 'recording_seal_seconds_total')).toBeLessThan(value(text, 'process_cpu_seconds_total'));
    expect(value(text, 'recording_queue_bytes')).toBeGreaterThanOrEqual(0);
    expect(value(text, 'sessions_waiting_for_client')).toBe(0);
    expect(value(text, 'event_loop_utilization')).toBeGreaterThan(0);
    expect(value(text, 'event_loop_utilization')).toBeLessThanOrEqual(1);
    expect((await fetch(`http://127.0.0.1:${t.gw.metricsPort}/other`)).status).toBe(404);
    expect(t.gw.live.all().filter((s) => s.recorder).length).toBe(1); // the open session's recorder feeds recording_queue_bytes
    d.kill();
    await waitUntil(() => t.gw.live.all().filter((s) => s.recorder).length === 0, 'recorder let go when the session ends');
  });
});
