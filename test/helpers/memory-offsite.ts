import type { OffsiteHoldings, OffsiteRecord, OffsiteStore } from '../../src/evidence/offsite-store.js';

/** An off-box store in memory that holds nothing to read back: a test defines `put` (what it counts, refuses or holds). */
export abstract class MemoryOffsite implements OffsiteStore {
  readonly sink = 's3' as const;
  readonly destination = 'memory';
  readonly held: OffsiteRecord[] = [];
  abstract put(records: readonly OffsiteRecord[]): Promise<string[]>;
  async holdings(): Promise<OffsiteHoldings> {
    return { header: false, chunks: [], trailer: null };
  }
  async records(): Promise<OffsiteRecord[]> {
    return [];
  }
  async sessions(): Promise<string[]> {
    return [];
  }
  async putAnchors(): Promise<void> {}
  async anchors(): Promise<never[]> {
    return [];
  }
  async appendOnly(): Promise<string> {
    return 'unknown: memory';
  }
  async close(): Promise<void> {}
}
