import type pg from 'pg';
import type { PostgresSql } from '../../src/store/postgres.js';
import { waitUntil } from './poll.js';

type QueryArgs = unknown[];

/**
 * Counts the round trips to PostgreSQL that a piece of work waits for one after the other. Every
 * statement of the store's pool runs for real, but its answer is held back until all statements
 * then in flight have answered; then all of them are released together: one "wave". Statements
 * sent together (Promise.all) land in one wave; a statement sent only once another answered lands
 * in the next. The number of waves is the number of loopback latencies the work costs.
 * Attach before the pool's first connection (it patches each connection as it is made).
 */
export function roundTripGate(sql: PostgresSql): {
  measure<T>(fn: () => Promise<T>): Promise<{ result: T; waves: number; statements: string[][] }>;
} {
  let gating = false;
  let inFlight = 0;
  let held: { release: () => void; text: string }[] = [];
  sql.pool.on('connect', (client: pg.PoolClient) => {
    const query = client.query.bind(client) as (...a: QueryArgs) => unknown;
    (client as unknown as { query: (...a: QueryArgs) => unknown }).query = (...args: QueryArgs) => {
      if (!gating) return query(...args);
      const first = args[0];
      const text = typeof first === 'string' ? first : String((first as { text?: string } | undefined)?.text ?? '?');
      inFlight++;
      const land = () => {
        inFlight--;
        return new Promise<void>((release) => held.push({ release, text: text.split(/\s+/).slice(0, 3).join(' ') }));
      };
      const at = args.findIndex((a) => typeof a === 'function');
      if (at >= 0) {
        const cb = args[at] as (...r: unknown[]) => void;
        args[at] = (...r: unknown[]) => void land().then(() => cb(...r));
        return query(...args);
      }
      return (query(...args) as Promise<unknown>).then(
        (r) => land().then(() => r),
        (e: unknown) =>
          land().then(() => {
            throw e;
          }),
      );
    };
  });
  return {
    async measure(fn) {
      gating = true;
      let done = false;
      const statements: string[][] = [];
      const running = fn().finally(() => (done = true));
      running.catch(() => {});
      try {
        for (;;) {
          await waitUntil(() => done || (inFlight === 0 && held.length > 0), 'a wave of statements', 15_000, 1);
          if (held.length === 0) break;
          const wave = held;
          held = [];
          statements.push(wave.map((h) => h.text));
          for (const h of wave) h.release();
        }
        return { result: await running, waves: statements.length, statements };
      } finally {
        gating = false;
      }
    },
  };
}
