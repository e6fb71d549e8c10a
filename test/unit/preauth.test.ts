import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/platform/clock.js';
import { PreAuthAudit, sampleName } from '../../src/audit/preauth.js';
import type { AuditEvent } from '../../src/audit/events.js';
import { AuditEventSchema } from '../../src/audit/events.js';

function sink() {
  const rows: Extract<AuditEvent, { type: 'preauth.summary' }>[] = [];
  const emit = async (_a: string, e: AuditEvent) => void rows.push(AuditEventSchema.parse(e) as (typeof rows)[number]);
  return { rows, emit, post: (a: string, e: AuditEvent) => void emit(a, e) };
}

describe('pre-authentication audit aggregator (on the injected clock)', () => {
  it('writes one row per address per interval, with counts by reason and a sample of names', async () => {
    const clock = new FakeClock();
    const s = sink();
    const p = new PreAuthAudit(s, clock, { interval: 60_000, maxRowsPerSecond: 1 });
    for (let i = 0; i < 1000; i++) p.record('192.0.2.1', i % 2 ? 'publickey:unknown-user' : 'publickey:bad-signature', `u${i % 7}`);
    p.record('192.0.2.2', 'refused:too many');
    clock.advance(59_999);
    expect(s.rows).toEqual([]);
    clock.advance(1);
    expect(s.rows).toHaveLength(2);
    expect(s.rows[0]).toMatchObject({
      addr: '192.0.2.1',
      addresses: 1,
      attempts: 1000,
      reasons: { 'publickey:unknown-user': 500, 'publickey:bad-signature': 500 },
      distinctNames: 7,
    });
    expect(s.rows[0]!.names).toHaveLength(5);
    expect(s.rows[1]).toMatchObject({ addr: '192.0.2.2', attempts: 1, names: [], distinctNames: 0 });
    clock.advance(600_000);
    expect(s.rows).toHaveLength(2); // quiet intervals write nothing
  });

  it('bounds rows per interval: the busiest addresses get their own row, the rest share one', async () => {
    const clock = new FakeClock();
    const s = sink();
    const p = new PreAuthAudit(s, clock, { interval: 10_000, maxRowsPerSecond: 0.5 });
    for (let a = 0; a < 300; a++) for (let i = 0; i <= a % 50; i++) p.record(`10.0.${a >> 8}.${a & 255}`, 'x', 'n');
    clock.advance(10_000);
    expect(s.rows).toHaveLength(5);
    const star = s.rows.at(-1)!;
    expect(star.addr).toBe('*');
    expect(star.addresses).toBe(296);
    expect(s.rows.reduce((a, r) => a + r.attempts, 0)).toBe(Array.from({ length: 300 }, (_, a) => (a % 50) + 1).reduce((x, y) => x + y));
    expect(s.rows.slice(0, 4).every((r) => r.attempts === 50)).toBe(true);
  });

  it('bounds memory: addresses beyond maxAddresses fold into the shared row at once', async () => {
    const clock = new FakeClock();
    const s = sink();
    const p = new PreAuthAudit(s, clock, { interval: 1000, maxRowsPerSecond: 100, maxAddresses: 10 });
    for (let a = 0; a < 1000; a++) p.record(`2001:db8::${a.toString(16)}`, 'x');
    clock.advance(1000);
    expect(s.rows).toHaveLength(11);
    expect(s.rows.find((r) => r.addr === '*')).toMatchObject({ addresses: 990, attempts: 990 });
  });

  it('close() writes what is pending and stops the timer', async () => {
    const clock = new FakeClock();
    const s = sink();
    const p = new PreAuthAudit(s, clock, { interval: 60_000, maxRowsPerSecond: 1 });
    p.record('192.0.2.9', 'x', 'late');
    p.close();
    expect(s.rows).toHaveLength(1);
    p.record('192.0.2.9', 'x');
    clock.advance(120_000);
    expect(s.rows).toHaveLength(1);
  });

  it('escapes and truncates names', async () => {
    expect(sampleName('ev\x1b[31mil')).toBe('ev\\x{1b}[31mil');
    expect(sampleName('a\\b\u009b\x7f')).toBe('a\\\\b\\x{9b}\\x{7f}');
    expect(sampleName('x'.repeat(100))).toBe('x'.repeat(32) + '…');
    expect(sampleName('😀')).toBe('\\x{1f600}');
  });
});
