import { checkpointSigned, writeCheckpoint } from '../audit/log.js';
import type { AuditEventRepo, CheckpointRow } from '../store/audit-events.js';
import { verifyWithPublicKey } from '../crypto/audit-key.js';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { Anchor } from './offsite-store.js';

const RECORDING_ANCHOR_DOMAIN = 'tmuxgate-recording-anchor-v1\0';

/** Bytes a recording anchor's signature covers. */
export function recordingAnchorSigned(sessionId: string, chunks: number, head: string, ts: number): Buffer {
  return Buffer.from(`${RECORDING_ANCHOR_DOMAIN}${sessionId}\0${chunks}\0${head}\0${ts}`);
}

/** The audit checkpoint (already signed: audit/log.ts checkpointSigned) as an anchor. */
export function auditAnchor(c: CheckpointRow, node: string): Anchor {
  return { kind: 'audit', subject: 'audit', position: c.audit_id, head: c.head, ts: c.ts, signature: c.signature, node };
}

/** Whether an anchor's signature verifies with the audit public key. */
export function anchorVerifies(a: Anchor, publicKeyPem: string): boolean {
  const data = a.kind === 'audit' ? checkpointSigned(a.position, a.head, a.ts) : recordingAnchorSigned(a.subject, a.position, a.head, a.ts);
  return verifyWithPublicKey(publicKeyPem, data, a.signature);
}

/** A place anchors go: a store's table or bucket, or the syslog collector (audit anchors only). */
export interface AnchorTarget {
  readonly name: string;
  /** Only the audit checkpoint goes here (syslog). */
  readonly auditOnly?: boolean;
  putAnchors(anchors: readonly Anchor[]): Promise<void>;
}

/** A live recording's head after its last durable chunk. */
export interface RecordingHead {
  sessionId: string;
  chunks: number;
  head: string;
}

export interface AnchorerDeps {
  auditEvents: AuditEventRepo;
  sign: (data: Buffer) => Buffer;
  /** The live recordings' heads now. */
  heads: () => RecordingHead[];
  targets: AnchorTarget[];
  clock: Clock;
  logger?: Logger;
  node: string;
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * Ships signed chain heads off the box every `intervalMs` (at most 60 s) and once more at
 * close: the audit checkpoint (signing the head first if it moved) and each live recording's
 * head. A head a target already has is not sent again; a target that fails gets the newest
 * heads at the next tick (an anchor supersedes the ones before it).
 */
export class Anchorer {
  private cancel: (() => void) | null = null;
  private running: Promise<void> | null = null;
  /** Per target: what it last acknowledged ("audit" or a session id -> position/head). */
  private readonly sent = new Map<string, Map<string, string>>();
  /** Anchors acknowledged, per target name (a counter for metrics). */
  readonly shipped = new Map<string, number>();
  lastError: string | null = null;

  constructor(
    private readonly intervalMs: number,
    private readonly deps: AnchorerDeps,
  ) {
    for (const t of deps.targets) {
      this.sent.set(t.name, new Map());
      this.shipped.set(t.name, 0);
    }
  }

  start(): void {
    if (this.cancel) return;
    this.cancel = this.deps.clock.setInterval(() => void this.tick(), this.intervalMs);
  }

  /** Takes and ships the anchors now (one round at a time; a call during a round waits for it, then runs another). */
  async tick(): Promise<void> {
    while (this.running) await this.running;
    this.running = this.round().finally(() => (this.running = null));
    return this.running;
  }

  /** The last round, then stop. */
  async close(): Promise<void> {
    this.cancel?.();
    this.cancel = null;
    await this.tick();
  }

  private async round(): Promise<void> {
    const { deps } = this;
    const now = deps.clock.now();
    let audit: Anchor | null = null;
    try {
      await writeCheckpoint(deps.auditEvents, deps.sign, now);
      const c = await deps.auditEvents.lastCheckpoint();
      if (c) audit = auditAnchor(c, deps.node);
    } catch (e) {
      this.lastError = `audit checkpoint: ${message(e)}`;
      deps.logger?.error({ evidence: 'anchors', err: message(e) }, 'audit checkpoint for the anchor failed');
    }
    const recordings: Anchor[] = deps.heads().map((h) => ({
      kind: 'recording',
      subject: h.sessionId,
      position: h.chunks,
      head: h.head,
      ts: now,
      signature: deps.sign(recordingAnchorSigned(h.sessionId, h.chunks, h.head, now)),
      node: deps.node,
    }));
    await Promise.all(
      deps.targets.map(async (t) => {
        const sent = this.sent.get(t.name)!;
        const fresh = [audit, ...(t.auditOnly ? [] : recordings)].filter((a): a is Anchor => a !== null && sent.get(a.subject) !== `${a.position}/${a.head}`);
        if (fresh.length === 0) return;
        try {
          await t.putAnchors(fresh);
          for (const a of fresh) sent.set(a.subject, `${a.position}/${a.head}`);
          this.shipped.set(t.name, this.shipped.get(t.name)! + fresh.length);
          // Ended recordings are not asked about again; their last anchor stays in the map until pruned here.
          const live = new Set(['audit', ...recordings.map((a) => a.subject)]);
          for (const k of sent.keys()) if (!live.has(k)) sent.delete(k);
        } catch (e) {
          this.lastError = `${t.name}: ${message(e)}`;
          deps.logger?.warn({ evidence: 'anchors', target: t.name, err: message(e) }, 'anchors not shipped; the next round sends the newest');
        }
      }),
    );
  }
}
