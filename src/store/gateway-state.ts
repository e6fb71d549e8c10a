import type { Sql } from './sql.js';

/** gateway_state: small named values the gateway keeps between starts (e.g. the last config, to log what changed). */
export class GatewayStateRepo {
  constructor(private readonly sql: Sql) {}

  /** The stored value, or null. */
  async get(key: string): Promise<string | null> {
    return ((await this.sql.get('SELECT value FROM gateway_state WHERE key = ?', [key])) as { value: string } | undefined)?.value ?? null;
  }

  /** Stores (or replaces) a value. */
  async set(key: string, value: string): Promise<void> {
    await this.sql.run('INSERT INTO gateway_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value', [key, value]);
  }

  /** Stores `value` unless the key has one; returns the stored value (the first writer's, when several race). */
  async setIfAbsent(key: string, value: string): Promise<string> {
    await this.sql.run('INSERT INTO gateway_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING', [key, value]);
    return (await this.get(key))!;
  }
}
