import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/config/load.js';
import type { AuditRow } from '../../src/store/audit-events.js';
import { formatAuditRow, frame, frameAuditRow, rfc3339, SD_ID } from '../../src/evidence/syslog-format.js';
import { parseAuditMessage, splitFrames } from '../../src/evidence/syslog-parse.js';

const H = (c: string) => c.repeat(64);
const row = (over: Partial<AuditRow> = {}): AuditRow => ({
  id: 7,
  ts: Date.UTC(2026, 0, 2, 3, 4, 5, 67),
  type: 'session.start',
  actor: 'alice',
  data: canonicalJson({ user: 'alice', role: 'ops', cols: 80 }),
  prev_hash: H('a'),
  hash: H('b'),
  ...over,
});
const opts = { hostname: 'gw1', procId: 4242 };

/** Every character a terminal, a line-based reader or a frame parser could trip on. */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

describe('RFC 5424 message for one audit row', () => {
  it('lays out PRI, VERSION, TIMESTAMP, HOSTNAME, APP-NAME, PROCID, MSGID, SD and MSG', () => {
    expect(formatAuditRow(row(), opts)).toBe(
      `<85>1 2026-01-02T03:04:05.067Z gw1 tmuxgate 4242 session.start [${SD_ID} id="7" prev="${H('a')}" hash="${H('b')}" actor="alice"] ` +
        '{"cols":80,"role":"ops","user":"alice"}',
    );
  });

  it.each([
    // [type, data, facility, PRI]: authpriv(10)*8 + severity unless a facility is given
    ['session.start', '{}', undefined, 85],
    ['auth.failure', '{}', undefined, 84],
    ['lockout.start', '{}', undefined, 84],
    ['request.denied', '{}', undefined, 84],
    ['recording.failed', '{}', undefined, 83],
    ['tmux.intrusion', '{}', undefined, 83],
    ['admin.change', '{"action":"session.kill"}', undefined, 84],
    ['admin.change', '{"action":"user.add"}', undefined, 85],
    ['host.account', '{"action":"terminate"}', undefined, 84],
    ['host.account', 'not json', undefined, 85],
    ['some.future-type', '{}', undefined, 85],
    ['session.start', '{}', 16, 133],
    ['auth.failure', '{}', 4, 36],
  ] as const)('%s %s facility %s -> PRI %i', (type, data, facility, pri) => {
    const m = formatAuditRow(row({ type, data }), { ...opts, ...(facility !== undefined ? { facility } : {}) });
    expect(m.startsWith(`<${pri}>1 `)).toBe(true);
  });

  it('writes TIMESTAMP as RFC 3339 with milliseconds in UTC, NILVALUE when RFC 5424 cannot say it', () => {
    expect(rfc3339(0)).toBe('1970-01-01T00:00:00.000Z');
    expect(rfc3339(Date.UTC(2026, 11, 31, 23, 59, 59, 999))).toBe('2026-12-31T23:59:59.999Z');
    for (const bad of [NaN, Infinity, -1e15, 1e16]) expect(rfc3339(bad)).toBe('-');
  });

  it('takes os.hostname() unless a node name is configured, and keeps HOSTNAME printable ASCII', () => {
    expect(formatAuditRow(row(), { procId: 1 }).split(' ')[2]).toMatch(/^[\x21-\x7e]{1,255}$/);
    expect(formatAuditRow(row(), { hostname: 'my host\nx', procId: 1 }).split(' ')[2]).toBe('my_host_x');
    expect(formatAuditRow(row(), { hostname: 'h'.repeat(300), procId: 1 }).split(' ')[2]).toHaveLength(255);
  });

  // Hostile text in every user-controlled field: none may end the line, the SD element or the
  // frame early, and the receiver must get every field back exactly.
  const hostile: [string, Partial<AuditRow>][] = [
    ['newlines in actor and data', { actor: 'eve\nFeb 1 root: fake', data: canonicalJson({ reason: 'a\r\nb\n' }) }],
    ['SD closing and quoting in actor', { actor: 'eve"] [x@1 a="b"] {"fake":1}' }],
    ['backslashes', { actor: 'a\\b\\', data: canonicalJson({ p: 'C:\\x\\"' }) }],
    ['NUL and ESC', { actor: 'e\0v\x1b[2Je', data: canonicalJson({ t: '\x1b]0;pwned\x07\0' }) }],
    ['DEL and C1 controls', { actor: 'a\x7fb\u009bc\u0085d', data: canonicalJson({ t: '\u009b31m\x7f' }) }],
    ['line/paragraph separators and bidi overrides', { actor: 'a\u2028b\u2029c\u202ed\u200be\ufeff', data: canonicalJson({ t: '\u202egnp.exe\u2028' }) }],
    ['non-ASCII', { actor: 'Jörg-日本-😀', data: canonicalJson({ user: 'Zoë', note: '𝔘𝔫𝔦' }) }],
    ['percent signs', { actor: '100%25%', data: canonicalJson({ t: '%0A' }) }],
    ['an injected second frame', { actor: '"] 59 <13>1 - - - - - - injected', data: canonicalJson({ t: '\n59 <13>1 - evil - - - - x' }) }],
    ['a very long type with spaces and controls', { type: `x y\n${'t'.repeat(300)}` }],
    ['a non-ASCII type', { type: 'séssion.start' }],
  ];

  it.each(hostile)('%s: printable, one frame, one SD element, and read back exactly', (_name, over) => {
    const r = row(over);
    const msg = formatAuditRow(r, opts);
    expect(msg).not.toMatch(UNSAFE);
    expect(msg).not.toContain('\n');
    const frames = splitFrames(frameAuditRow(r, opts));
    expect(frames).toHaveLength(1);
    expect(frames[0]!.toString('utf8')).toBe(msg);
    const back = parseAuditMessage(msg);
    expect(back).not.toBeNull();
    expect(back!.row).toEqual(r);
    expect(back!.omitted).toEqual([]);
    // Exactly one SD element: after ours comes the MSG, which starts with '{'.
    expect(msg.split(' ')[6]).toBe(`[${SD_ID}`);
    expect(back!.msgId).toMatch(/^[\x21-\x7e]{1,32}$/);
    // MSG is printable ASCII JSON with the row's data as its value.
    const body = back!.msg;
    expect(msg.endsWith(`] ${body}`)).toBe(true);
    expect(body).toMatch(/^[\x20-\x7e]+$/);
    expect(canonicalJson(JSON.parse(body))).toBe(r.data);
  });

  it('sanitizes MSGID to at most 32 printable ASCII characters and carries the exact type as a parameter', () => {
    const r = row({ type: `x y\n${'t'.repeat(300)}` });
    const back = parseAuditMessage(formatAuditRow(r, opts))!;
    expect(back.msgId).toBe(`x_y_${'t'.repeat(28)}`);
    expect(back.row.type).toBe(r.type);
    expect(formatAuditRow(row(), opts)).not.toContain(' type=');
  });

  it('a lone surrogate (which SQLite cannot store either) becomes U+FFFD, never a broken byte', () => {
    const msg = formatAuditRow(row({ actor: 'a\ud800b' }), opts);
    expect(parseAuditMessage(msg)!.row.actor).toBe('a\ufffdb');
  });

  it('counts the frame length in bytes, not characters, so frames of any text split back in order', () => {
    const r = row({ actor: 'é😀', data: canonicalJson({ t: 'ü' }) });
    const f = frameAuditRow(r, opts);
    const msg = formatAuditRow(r, opts);
    expect(Buffer.byteLength(msg)).toBeGreaterThan(msg.length);
    expect(f.toString('ascii', 0, f.indexOf(0x20))).toBe(String(Buffer.byteLength(msg)));
    const rows = hostile.map(([, over], i) => row({ ...over, id: i + 1 }));
    const stream = Buffer.concat(rows.map((x) => frameAuditRow(x, opts)));
    expect(splitFrames(stream).map((b) => parseAuditMessage(b.toString('utf8'))!.row)).toEqual(rows);
    expect(frame('é').toString('utf8')).toBe('2 é');
  });

  it('replaces data that would make the message too long for the receiver by its digest, and says so', () => {
    const big = canonicalJson({ detail: 'x'.repeat(20_000) });
    const msg = formatAuditRow(row({ data: big }), { ...opts, maxMessageBytes: 8096 });
    expect(Buffer.byteLength(msg)).toBeLessThanOrEqual(8096);
    const back = parseAuditMessage(msg)!;
    expect(back.omitted).toEqual(['data']);
    expect(JSON.parse(back.row.data)).toEqual({ bytes: Buffer.byteLength(big), sha256: createHash('sha256').update(big).digest('hex') });
    expect(back.row.hash).toBe(H('b'));
  });

  it('a message of exactly the limit goes whole; one byte more does not', () => {
    const base = Buffer.byteLength(formatAuditRow(row({ data: canonicalJson({ d: '' }) }), opts));
    const fits = canonicalJson({ d: 'y'.repeat(8096 - base) });
    expect(Buffer.byteLength(formatAuditRow(row({ data: fits }), opts))).toBe(8096);
    expect(parseAuditMessage(formatAuditRow(row({ data: fits }), opts))!.omitted).toEqual([]);
    const over = canonicalJson({ d: 'y'.repeat(8097 - base) });
    expect(parseAuditMessage(formatAuditRow(row({ data: over }), opts))!.omitted).toEqual(['data']);
  });

  it('digests a huge actor and type too when the header alone would not fit', () => {
    const r = row({ actor: '\n'.repeat(5000), type: 'ä'.repeat(3000), data: canonicalJson({ d: 'z'.repeat(9000) }) });
    const msg = formatAuditRow(r, { ...opts, maxMessageBytes: 2048 });
    expect(Buffer.byteLength(msg)).toBeLessThanOrEqual(2048);
    const back = parseAuditMessage(msg)!;
    expect(back.omitted).toEqual(['data', 'actor', 'type']);
    expect(back.row.actor).toBe(`sha256:${createHash('sha256').update(r.actor).digest('hex')}`);
    expect(back.row.id).toBe(7);
  });

  it('splitFrames refuses a stream that is not octet-counted', () => {
    expect(() => splitFrames(Buffer.from('<13>1 - - - - - - x\n'))).toThrow(/octet count/);
    expect(() => splitFrames(Buffer.from('10 <13>1'))).toThrow(/cut short/);
  });
});
