import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import type { PostgresSinkConfig } from '../config/evidence.js';
import type { Clock } from '../platform/clock.js';
import { assertPrivate } from '../crypto/key-files.js';
import { TgError } from '../errors.js';
import { PostgresSql } from '../store/postgres.js';
import { OffsiteEvidenceRepo } from '../store/evidence-offsite.js';
import type { Sql } from '../store/sql.js';
import { holdingsOf, type Anchor, type OffsiteHoldings, type OffsiteRecord, type OffsiteStore } from './offsite-store.js';

/** The sink's URL: its own (inline or from a 0600 file), else the store's; `own` says which. */
export function postgresSinkUrl(config: Config, c: PostgresSinkConfig): { url: string; own: boolean } {
  const read = (f: string): string => {
    assertPrivate(f);
    return readFileSync(f, 'utf8').trim();
  };
  if (c.url) return { url: c.url, own: true };
  if (c.urlFile) return { url: read(c.urlFile), own: true };
  const s = config.store;
  if (s.kind !== 'postgres') throw new TgError('TG_ERR_CONFIG_INVALID', 'evidence.recordings.postgres: the SQLite single-node store has no PostgreSQL sink');
  return { url: s.url ?? read(s.urlFile!), own: false };
}

/** host:port/database as role, without the password. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `postgres://${u.hostname}:${u.port || 5432}${u.pathname} as ${decodeURIComponent(u.username) || '(default role)'}`;
  } catch {
    return 'postgres (unparsable URL)';
  }
}

/**
 * The PostgreSQL sink: evidence_recording_chunks and evidence_anchors (migration 0011) in the
 * store's database or a separate one, written through a role that should hold INSERT and
 * SELECT only (appendOnly() checks what it really holds). Every wait is bounded.
 */
export class PostgresOffsite implements OffsiteStore {
  readonly sink = 'postgres' as const;
  private readonly repo: OffsiteEvidenceRepo;

  constructor(
    private readonly sql: Sql,
    readonly destination: string,
    private readonly clock: Clock,
  ) {
    this.repo = new OffsiteEvidenceRepo(sql);
  }

  /** Connects a pool of its own (`pool` connections) to the sink's database. */
  static open(config: Config, c: PostgresSinkConfig, clock: Clock, name = 'tmuxgate-evidence'): PostgresOffsite {
    const { url } = postgresSinkUrl(config, c);
    const sql = new PostgresSql({ url, max: c.pool, applicationName: name, connectTimeoutMs: 10_000, queryTimeoutMs: 30_000 });
    return new PostgresOffsite(sql, describeUrl(url), clock);
  }

  async put(records: readonly OffsiteRecord[], node: string): Promise<string[]> {
    const rows = records.map((r) => ({ session_id: r.sessionId, kind: r.kind, seq: r.seq, record: r.bytes, chain_hash: r.hash, node }));
    const conflicts = await this.repo.insertRecords(rows, this.clock.now());
    return conflicts.map((c) => `${c.session_id}/${c.kind}/${c.seq}`);
  }

  async holdings(sessionId: string): Promise<OffsiteHoldings> {
    return holdingsOf(await this.repo.progress(sessionId));
  }

  async records(sessionId: string): Promise<OffsiteRecord[]> {
    return (await this.repo.records(sessionId)).map((r) => ({ sessionId: r.session_id, kind: r.kind, seq: r.seq, bytes: r.record, hash: r.chain_hash }));
  }

  sessions(): Promise<string[]> {
    return this.repo.sessions();
  }

  async putAnchors(anchors: readonly Anchor[]): Promise<void> {
    await this.repo.insertAnchors(anchors);
  }

  async anchors(kind: 'audit' | 'recording', subject?: string): Promise<Anchor[]> {
    return (await this.repo.anchors(kind, subject)).map(({ id: _id, ...a }) => a);
  }

  async appendOnly(): Promise<string> {
    const { missing, excess } = await this.repo.rights();
    if (missing.length) return `no: the sink's role cannot write ${missing.join(', ')} (run migration 0011 there and grant INSERT, SELECT)`;
    if (excess.length) return `no: the sink's role can alter what it wrote (${excess.join('; ')})`;
    return 'yes';
  }

  close(): Promise<void> {
    return this.sql.close();
  }
}
