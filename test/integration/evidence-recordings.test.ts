import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { RecordingsOffsiteConfigInput } from '../../src/config/evidence.js';
import { FakeClock } from '../../src/platform/clock.js';
import { recordsAt } from '../../src/recording/offsite.js';
import { S3Offsite } from '../../src/evidence/offsite-s3.js';
import { anchorVerifies } from '../../src/evidence/anchors.js';
import { cliAsync } from '../helpers/cli.js';
import { TestGateway } from '../helpers/gateway.js';
import { waitUntil } from '../helpers/poll.js';
import { startS3, type TestS3 } from '../helpers/s3.js';

/**
 * A live gateway (SQLite store) ships its recordings to an S3-compatible server (s3rver, started
 * by the test) while sessions run: chunks within seconds of being durable, signed anchors, the
 * compliance check and metrics; verify --offsite finds a recording deleted locally; with
 * `required`, the sink going away ends the live session and refuses new ones.
 */

const isRoot = process.getuid?.() === 0;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** s3rver, and 0600 files holding its credentials (the sink reads credentials from files). */
async function bucket(): Promise<{ s3: TestS3; keyFiles: { accessKeyIdFile: string; secretAccessKeyFile: string } }> {
  const s3 = await startS3();
  const dir = mkdtempSync('/tmp/tg-s3keys-');
  cleanups.push(async () => {
    await s3.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const accessKeyIdFile = path.join(dir, 'id');
  const secretAccessKeyFile = path.join(dir, 'secret');
  writeFileSync(accessKeyIdFile, 'S3RVER\n', { mode: 0o600 });
  writeFileSync(secretAccessKeyFile, 'S3RVER\n', { mode: 0o600 });
  return { s3, keyFiles: { accessKeyIdFile, secretAccessKeyFile } };
}

async function gateway(s3: TestS3, keyFiles: object, recordings: Partial<RecordingsOffsiteConfigInput> = {}): Promise<TestGateway> {
  const s3Config = {
    endpoint: s3.endpoint,
    bucket: s3.bucket,
    forcePathStyle: true,
    ...keyFiles,
    objectLock: { mode: 'COMPLIANCE' as const, retainDays: 2192 },
  };
  const tg = new TestGateway({ evidence: { recordings: { anchorInterval: '1s', s3: s3Config, ...recordings } } });
  cleanups.push(() => tg.stop());
  await tg.start();
  return tg;
}

/** The test's own view of the bucket. */
async function reader(s3: TestS3, keyFiles: { accessKeyIdFile: string; secretAccessKeyFile: string }): Promise<S3Offsite> {
  const store = await S3Offsite.open(
    { endpoint: s3.endpoint, bucket: s3.bucket, region: 'us-east-1', prefix: '', forcePathStyle: true, ...keyFiles },
    new FakeClock(),
  );
  cleanups.push(() => store.close());
  return store;
}

const metric = async (tg: TestGateway, name: string): Promise<number> => {
  const text = await tg.gw.metrics.render();
  const line = text.split('\n').find((l) => l.startsWith(`tmuxgate_${name} `));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : NaN;
};

describe.skipIf(!isRoot)('a live gateway ships recordings to S3 (s3rver) as they are written', () => {
  it('chunks and anchors arrive while the session runs; compliance and metrics show it; verify --offsite names a recording deleted locally', async () => {
    const { s3, keyFiles } = await bucket();
    const tg = await gateway(s3, keyFiles);
    const store = await reader(s3, keyFiles);
    const alice = await tg.user('alice');
    const d = await tg.login(alice);
    const sessionId = tg.gw.live.all()[0]!.id;
    for (let i = 0; i < 3; i++) {
      await tg.run(d, `echo OFFSITE-$((${i}+200))`, `OFFSITE-${i + 200}`);
      tg.clock.advance(1000); // the flush interval, on the injected clock
    }
    const row = await waitUntil(async () => {
      const r = await tg.admin.recordings.get(sessionId);
      return r && r.chunks >= 3 ? r : null;
    }, 'three durable chunks');
    // Every durable chunk is off the box within seconds (real time), byte for byte.
    await waitUntil(async () => (await store.holdings(sessionId)).chunks.length >= row.chunks, 'the chunks to reach the bucket', 10_000, 100);
    const local = recordsAt(readFileSync(row.file), 0).records;
    const remote = await store.records(sessionId);
    expect(remote.length).toBeGreaterThanOrEqual(1 + row.chunks);
    for (const r of remote) expect(r.bytes).toEqual(local.find((l) => l.kind === r.kind && l.seq === r.seq)!.bytes);
    // Signed anchors: the session's head and the audit checkpoint, each second here (at most 60 s in production).
    const pem = (await cliAsync(['audit', 'pubkey', ...tg.cliConfig()])).stdout;
    const anchor = await waitUntil(
      async () => (await store.anchors('recording', sessionId)).find((a) => a.position >= row.chunks),
      'the session anchored',
      10_000,
      100,
    );
    expect(anchorVerifies(anchor, pem)).toBe(true);
    expect((await store.anchors('audit')).every((a) => anchorVerifies(a, pem))).toBe(true);
    expect((await store.anchors('audit')).length).toBeGreaterThan(0);
    await waitUntil(async () => (await metric(tg, 'evidence_recordings_lag_bytes{sink="s3"}')) === 0, 'no lag');
    expect(await metric(tg, 'evidence_recordings_shipped_chunks_total{sink="s3"}')).toBeGreaterThanOrEqual(3);
    expect(await metric(tg, 'evidence_anchors_shipped_total{target="s3"}')).toBeGreaterThanOrEqual(2);
    expect(await metric(tg, 'evidence_recordings_catalog_write_failures_total{sink="s3"}')).toBe(0);
    expect(await metric(tg, 'evidence_recordings_unreadable_catalogs_total{sink="s3"}')).toBe(0);

    const report = await cliAsync(['compliance', 'report', '--json', ...tg.cliConfig()]);
    const check = (JSON.parse(report.stdout) as { checks: { id: string; pass: boolean; evidence: string }[] }).checks.find(
      (c) => c.id === 'recordings-offsite',
    )!;
    expect(check.pass).toBe(true);
    expect(check.evidence).toMatch(
      /s3 \(s3:\/\/tg-evidence\/ at http:\/\/127\.0\.0\.1:\d+, onFailure buffer\): lag 0 bytes, 0 chunks \(bound 67108864 bytes each\); 1 of 1 gateways reporting; \d+ chunks shipped/,
    );
    expect(check.evidence).toContain("append-only: unknown: cannot read the bucket's Object Lock configuration");
    expect(check.evidence).toContain('catalogs: every write succeeded, none read was malformed');

    d.kill();
    await waitUntil(async () => (await tg.admin.recordings.get(sessionId))?.state === 'sealed', 'recording sealed');
    await waitUntil(async () => (await store.holdings(sessionId)).trailer !== null, 'the trailer to reach the bucket', 10_000, 100);
    const ok = await cliAsync(['verify', '--offsite', '--all', '--json', ...tg.cliConfig()]);
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    expect((JSON.parse(ok.stdout) as { subject: string; status: string }[]).map((v) => `${v.subject}:${v.status}`)).toEqual([`${sessionId}:match`]);
    const audit = await cliAsync(['audit', 'verify', '--offsite', ...tg.cliConfig()]);
    expect(audit.status).toBe(0);
    expect(audit.stdout).toMatch(/^audit log \[s3\]: match: local \d+ rows; off the box \d+ anchors, newest at row \d+/);

    unlinkSync(row.file); // root removes the recording on the gateway
    const gone = await cliAsync(['verify', '--offsite', sessionId, ...tg.cliConfig()]);
    expect(gone.status).toBe(5);
    expect(gone.stdout).toContain(`${sessionId} [s3]: DIFFERS: local missing;`);
    expect(gone.stdout).toContain('PROBLEM deleted-locally: the recording was deleted locally (its file is gone); off the box: header, ');
  }, 120_000);

  it('required: with the sink down and the lag over its bound, the live session ends and new ones are refused; back within it, sessions start again', async () => {
    const { s3, keyFiles } = await bucket();
    const tg = await gateway(s3, keyFiles, { onFailure: 'required', maxLagBytes: 65_536 });
    const alice = await tg.user('alice');
    const d = await tg.login(alice);
    await s3.down();
    // Output the recorder makes durable every (injected) second until the unshipped bytes pass 64 KiB.
    let n = 0;
    await waitUntil(
      async () => {
        if (d.out.includes('recording shipping is behind; sessions end until the off-box store is reachable')) return true;
        // tmux passes on a few percent of bulk output (what the screen shows): megabytes in, tens of KB
        // recorded, fewer on a busy machine (tmux skips more redraws): up to 80 rounds before the bound.
        if (n < 80) await tg.run(d, `head -c 2000000 /dev/urandom | base64; echo CHUNK-$((${++n}+1000))`, `CHUNK-${n + 1000}`, 30_000).catch(() => '');
        tg.clock.advance(1000);
        return false;
      },
      'the live session to end for the lag',
      90_000,
      50,
    );
    const again = tg.ssh(alice, 'alice');
    await again.waitFor('Verification code:');
    again.write(tg.code(alice) + '\r');
    await again.waitFor('tmuxgate: recording shipping is behind; new sessions are refused until the off-box store is reachable');
    expect(await again.waitExit()).toBe(1);
    expect((await tg.audit('session.end')).map((e) => e.data.reason)).toEqual(['evidence-lag']);
    const denied = (await tg.audit('request.denied')).filter((e) => e.data.request === 'shell');
    expect(denied).toHaveLength(1);
    expect(denied[0]!.data.detail).toMatch(/^recording shipping to s3: lag \d+ bytes > evidence\.recordings\.maxLagBytes 65536 \(onFailure: required; /);

    // The sink is back: the backlog is read back from the file and shipped, and sessions may start again.
    await s3.up();
    // The shipper retries on real time with back-off capped at 30 s: after a long outage (a busy
    // machine) the first retry after the sink returns may be that far off, and one more may follow.
    await waitUntil(async () => (await metric(tg, 'evidence_recordings_lag_bytes{sink="s3"}')) === 0, 'the backlog to be shipped', 120_000, 200);
    const d3 = await tg.login(alice);
    await tg.run(d3, 'echo BACK-$((40+2))', 'BACK-42');
  }, 300_000);
});
