import type { Db } from './db.js';

/** gateway_state: small named values the gateway keeps between starts (e.g. the last config, to log what changed). */
export class GatewayStateRepo {
  constructor(private readonly db: Db) {}

  /** The stored value, or null. */
  get(key: string): string | null {
    return (this.db.prepare('SELECT value FROM gateway_state WHERE key = ?').get(key) as { value: string } | undefined)?.value ?? null;
  }

  /** Stores (or replaces) a value. */
  set(key: string, value: string): void {
    this.db.prepare('INSERT INTO gateway_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }
}
