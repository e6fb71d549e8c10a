import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { SqliteSql } from '../../src/store/sqlite.js';
import type { Sql } from '../../src/store/sql.js';
import ssh2 from 'ssh2';
import { migrate } from '../../src/store/db.js';
import { buildStores } from '../../src/services/stores.js';
import { buildConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { MasterKeyProvider } from '../../src/crypto/master-key.js';
import { FakeClock } from '../../src/platform/clock.js';
import { createLogger, type Logger } from '../../src/platform/logger.js';
import { SeededRandom } from '../../src/platform/random.js';
import type { AdminContext } from '../../src/admin/context.js';
import { addKey, addUser, confirmTotp, enrollTotp } from '../../src/admin/operations.js';
import { totpCode } from '../../src/auth/totp.js';
import { fingerprintOf } from '../../src/auth/public-key.js';
import type { LoginFlowDeps } from '../../src/auth/login-flow.js';
import { generateEd25519 } from '../../src/auth/host-key.js';

export type KeyType = 'ed25519' | 'ecdsa' | 'rsa';

/** A key pair: the private key as ssh2 parses it, the public line, the wire blob and fingerprint. */
export interface TestKey {
  type: KeyType;
  private: ssh2.ParsedKey;
  privateText: string;
  publicLine: string;
  blob: Buffer;
  fingerprint: string;
}

/** A fresh key pair of `type` (ecdsa on nistp256, RSA at 2048 bits). */
export function newKey(type: KeyType): TestKey {
  const pair = type === 'ed25519' ? generateEd25519('test') : ssh2.utils.generateKeyPairSync(type, { bits: type === 'rsa' ? 2048 : 256, comment: 'test' });
  const parsed = ssh2.utils.parseKey(pair.private);
  if (parsed instanceof Error || Array.isArray(parsed)) throw new Error(`cannot parse a generated ${type} key`);
  const blob = parsed.getPublicSSH();
  return { type, private: parsed, privateText: pair.private, publicLine: pair.public, blob, fingerprint: fingerprintOf(blob) };
}

/** A user enrolled with one key and a confirmed TOTP secret. */
export interface LoginUser {
  name: string;
  key: TestKey;
  secret: string;
}

/** One audit row with its data parsed. */
export interface AuditSeen {
  type: string;
  actor: string;
  data: Record<string, unknown>;
}

/**
 * An in-memory SQLite store on a fake clock, with what LoginFlow needs built over it: the real
 * repositories, lockouts and audit log, and fakes that record pre-authentication summaries and
 * counters. Nothing touches the disk or an OS account.
 */
export class LoginWorld {
  readonly clock = new FakeClock(Date.UTC(2026, 0, 1, 12));
  readonly db = new Database(':memory:');
  readonly admin: AdminContext;
  readonly deps: LoginFlowDeps;
  readonly preauth: { addr: string; reason: string; name?: string | undefined }[] = [];
  readonly metrics = new Map<string, number>();
  readonly logLines: string[] = [];
  readonly logger: Logger;

  /** `sql`: another store (a migrated PostgreSQL) in place of the in-memory SQLite; the test closes it. */
  constructor(config: ConfigInput = {}, sql?: Sql) {
    this.db.pragma('foreign_keys = ON');
    migrate(this.db);
    const cfg = buildConfig(config, { file: null, baseDir: '/nonexistent' });
    this.logger = createLogger({
      level: 'debug',
      destination: new Writable({ write: (c: Buffer, _e, cb) => (this.logLines.push(c.toString()), cb()) }),
    });
    const random = new SeededRandom(1);
    const stores = buildStores(cfg, this.clock, sql ?? new SqliteSql(this.db), new MasterKeyProvider(randomBytes(32), [], random), undefined, random);
    this.admin = { ...stores, actor: 'os:test', close: async () => void this.db.close() };
    this.deps = {
      users: stores.users,
      roles: stores.roles,
      keys: stores.keys,
      totp: stores.totp,
      recoveryCodes: stores.recoveryCodes,
      lockouts: stores.lockouts,
      audit: stores.audit,
      preauth: { record: (addr, reason, name) => void this.preauth.push({ addr, reason, name }) },
      metrics: { inc: (name, by = 1) => void this.metrics.set(name, (this.metrics.get(name) ?? 0) + by) },
      clock: this.clock,
      totpWindow: cfg.auth.totp.window,
      maxAuthTries: cfg.ssh.maxAuthTries,
    };
  }

  /** Enrolls `name` with a new key of `type` and a confirmed TOTP secret, granted `role` as default. */
  async user(name: string, role = 'ops', type: KeyType = 'ed25519'): Promise<LoginUser> {
    if (!(await this.admin.roles.find(role))) await this.admin.roles.add({ name: role }, this.clock.now());
    await addUser(this.admin, name, role);
    const key = newKey(type);
    await addKey(this.admin, name, key.publicLine);
    const { secret } = await enrollTotp(this.admin, name);
    await confirmTotp(this.admin, name, totpCode(secret, this.clock.now()));
    return { name, key, secret };
  }

  /** The next valid, unspent code: moves the clock one 30 s step on first. */
  code(u: LoginUser): string {
    this.clock.advance(30_000);
    return totpCode(u.secret, this.clock.now());
  }

  /** Audit rows written so far (of `type`, if given), oldest first. */
  async audit(type?: string): Promise<AuditSeen[]> {
    return (await this.admin.auditEvents.recent({ ...(type ? { type } : {}), limit: 10_000 })).map((r) => ({
      type: r.type,
      actor: r.actor,
      data: JSON.parse(r.data) as Record<string, unknown>,
    }));
  }

  close(): void {
    this.db.close();
  }
}
