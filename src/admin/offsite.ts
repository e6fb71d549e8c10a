import { existsSync, readFileSync } from 'node:fs';
import type { AdminContext } from './context.js';
import { recordingAccess } from './recordings.js';
import { TgError } from '../errors.js';
import type { AuditRow } from '../store/audit-events.js';
import { openOffsiteStores } from '../evidence/open-sinks.js';
import type { Anchor, OffsiteStore } from '../evidence/offsite-store.js';
import { compareAudit, compareRecording, type OffsiteVerdict } from '../evidence/offsite-verify.js';
import { parseAuditMessage } from '../evidence/syslog-parse.js';
import { parseAnchorMessage } from '../evidence/syslog-anchor.js';

/** The configured off-box stores for a command, or a usage error naming the setting. */
async function storesFor(a: AdminContext, given?: OffsiteStore[]): Promise<{ stores: OffsiteStore[]; close(): Promise<void> }> {
  if (given) return { stores: given, close: async () => {} };
  const stores = await openOffsiteStores(a.config, a.clock, { name: 'tmuxgate-cli' });
  return { stores, close: async () => void (await Promise.all(stores.map((s) => s.close().catch(() => {})))) };
}

/** Runs `fn` against a store, turning an unreachable one into a coded error. */
async function ask<T>(s: OffsiteStore, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const why = (e as Error).message.split('\n')[0];
    throw new TgError('TG_ERR_OFFSITE_UNREACHABLE', `cannot read ${what} from the ${s.sink} sink (${s.destination}): ${why}`, { cause: e });
  }
}

/**
 * Compares one recording (or every one, `sessionId` null: those known locally and those only off
 * the box) with each sink's copy and anchors; audits each comparison as a recording access.
 */
export async function verifyRecordingsOffsite(
  a: AdminContext,
  sessionId: string | null,
  publicKeyPem: string,
  o: { stores?: OffsiteStore[]; progress?: (done: number, total: number) => void } = {},
): Promise<OffsiteVerdict[]> {
  const { stores, close } = await storesFor(a, o.stores);
  try {
    if (stores.length === 0) throw new TgError('TG_ERR_USAGE', 'no off-box store is configured: set evidence.recordings.postgres or evidence.recordings.s3');
    const ids = new Set<string>();
    if (sessionId !== null) ids.add(sessionId);
    else {
      for (const r of await a.recordings.list()) ids.add(r.session_id);
      for (const s of stores) for (const id of await ask(s, 'the session list', () => s.sessions())) ids.add(id);
    }
    const out: OffsiteVerdict[] = [];
    let done = 0;
    for (const id of [...ids].sort()) {
      const row = await a.recordings.get(id);
      const file = row && existsSync(row.file) ? readFileSync(row.file) : null;
      const verdicts: OffsiteVerdict[] = [];
      for (const s of stores) {
        const offsite = await ask(s, `recording ${id}`, () => s.records(id));
        const anchors = await ask(s, `the anchors of ${id}`, () => s.anchors('recording', id));
        verdicts.push(compareRecording({ sessionId: id, sink: s.sink, localFile: file, localRow: row !== null, offsite, anchors, publicKeyPem }));
      }
      if (sessionId !== null && !row && verdicts.every((v) => v.differences.length === 0)) {
        throw new TgError('TG_ERR_SESSION_NOT_FOUND', `no recording ${id} here or off the box`);
      }
      await recordingAccess(a, 'verify', id, `offsite ${verdicts.map((v) => `${v.sink} ${v.status}`).join(', ')}`);
      out.push(...verdicts);
      o.progress?.(++done, ids.size);
    }
    return out;
  } finally {
    await close();
  }
}

/** The collector's copy of the audit log and its anchors: a file of RFC 5424 messages, one per line (rsyslog's %rawmsg%). */
export function readCollectorFile(file: string): { rows: AuditRow[]; anchors: Anchor[] } {
  const rows: AuditRow[] = [];
  const anchors: Anchor[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const l = line.trim();
    if (!l) continue;
    const anchor = parseAnchorMessage(l);
    if (anchor) anchors.push(anchor);
    else {
      const m = parseAuditMessage(l);
      if (m) rows.push(m.row);
    }
  }
  return { rows, anchors };
}

/** The local audit chain against each sink's audit anchors, and against the collector's rows when `collectorFile` is given. */
export async function verifyAuditOffsite(
  a: AdminContext,
  publicKeyPem: string,
  o: { stores?: OffsiteStore[]; collectorFile?: string } = {},
): Promise<OffsiteVerdict[]> {
  const { stores, close } = await storesFor(a, o.stores);
  try {
    if (stores.length === 0 && !o.collectorFile) {
      const why = 'nothing off the box to compare with: set evidence.recordings (its sinks hold the audit anchors) or give --collector-file';
      throw new TgError('TG_ERR_USAGE', why);
    }
    const maxId = await a.auditEvents.maxId();
    const local = { maxId, hashOf: (id: number) => a.auditEvents.hashOf(id), rows: () => a.auditEvents.all() };
    const out: OffsiteVerdict[] = [];
    for (const s of stores) {
      const anchors = await ask(s, 'the audit anchors', () => s.anchors('audit'));
      out.push(await compareAudit({ sink: s.sink, anchors, local, publicKeyPem }));
    }
    if (o.collectorFile) {
      const copy = readCollectorFile(o.collectorFile);
      out.push(await compareAudit({ sink: 'syslog', anchors: copy.anchors, offsiteRows: copy.rows, local, publicKeyPem }));
    }
    return out;
  } finally {
    await close();
  }
}
