import { z } from 'zod';
import { duration, retentionField } from './duration.js';
import { ALLOWED } from '../crypto/algorithms.js';
import { parseCidr } from '../platform/cidr.js';
import { EvidenceConfigSchema } from './evidence.js';
import { redactionSchema } from './redaction.js';

/** An algorithm list may only name members of the built-in allow-list, and never be empty. */
const narrowing = (all: readonly string[]) =>
  z
    .array(z.string())
    .min(1)
    .superRefine((list, ctx) => {
      for (const [i, a] of list.entries()) {
        if (!all.includes(a)) {
          ctx.addIssue({
            code: 'custom',
            path: [i],
            message: `${a} is not in the built-in allow-list (${all.join(', ')}); the config can only narrow it`,
          });
        }
      }
    })
    .optional();

const lockout = (failures: number, base: string) =>
  z
    .strictObject({
      maxFailures: z.number().int().min(1).max(1000).default(failures),
      window: duration(15 * 60_000),
      baseDuration: duration(base),
      maxDuration: duration(24 * 3_600_000),
    })
    .prefault({});

/** "10:30:100" or 100 -> { start, rate, full }. */
const startups = z.union([z.number().int().min(1), z.string()]).transform((v, ctx) => {
  const m = typeof v === 'number' ? [String(v), String(v), '100', String(v)] : (/^(\d+):(\d+):(\d+)$/.exec(v) ?? (/^\d+$/.test(v) ? [v, v, '100', v] : null));
  const [start, rate, full] = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [NaN, NaN, NaN];
  if (!m || !(start >= 1 && start <= full && rate >= 0 && rate <= 100)) {
    ctx.addIssue({ code: 'custom', message: `not start:rate:full with 1 <= start <= full and rate 0-100: ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return { start, rate, full };
});

/** "host:port" ("[v6]:port" for IPv6): where a node's link listens or is reached. */
const hostPort = z
  .string()
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'host:port (an IPv6 address in brackets: [::1]:7022)')
  .refine((s) => Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535, 'port above 65535');

/** Wildcard listen addresses: other nodes cannot reach a node there, so it must advertise one they can. */
const WILDCARD = /^(0\.0\.0\.0|\[::\]|\[::0\]):/;

/** The gateway's configuration file. Every field has a default; no file at all is valid. */
export const ConfigSchema = z
  .strictObject({
    listen: z
      .strictObject({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(2222),
        /**
         * Off unless set. When set, every connection must come from one of these addresses or
         * networks and start with a PROXY protocol (v1 or v2) header, whose client address is then
         * the one limits, lockouts, audit and logs use; any other connection is refused and counted.
         */
        proxyProtocol: z
          .strictObject({
            trustedFrom: z
              .array(
                z.string().superRefine((s, ctx) => {
                  const c = parseCidr(s);
                  if (typeof c === 'string') ctx.addIssue({ code: 'custom', message: c });
                }),
              )
              .min(1, 'name at least one load balancer address or network (address/prefix)')
              .max(1000),
          })
          .optional(),
      })
      .prefault({}),
    dataDir: z.string().min(1).default('./data'),
    keysDir: z.string().min(1).default('./keys'),
    /**
     * Where users, grants, sessions and the audit chain live. `sqlite` (the default) is a file
     * under dataDir for one node; `postgres` is shared by several nodes. The URL's password is
     * best kept out of the file: `urlFile` names a file (mode 0600) that holds the URL.
     */
    store: z
      .strictObject({
        kind: z.enum(['sqlite', 'postgres']).default('sqlite'),
        url: z
          .string()
          .regex(/^postgres(ql)?:\/\//, 'a postgres:// URL')
          .optional(),
        urlFile: z.string().min(1).optional(),
        /** Connections per node (PostgreSQL). */
        pool: z.number().int().min(1).max(200).default(10),
      })
      .refine((s) => s.kind === 'sqlite' || !!s.url !== !!s.urlFile, { message: 'store.kind postgres needs exactly one of url and urlFile' })
      .refine((s) => s.kind === 'postgres' || (!s.url && !s.urlFile), { message: 'url and urlFile are for store.kind postgres' })
      .default({ kind: 'sqlite', pool: 10 }),
    /**
     * Several gateway nodes on one PostgreSQL store (docs/cluster.md). Absent: one node, as ever.
     * A node's heartbeat older than `deadAfter` means the node is gone: its sessions are marked
     * interrupted and a user whose tmux server it held starts a new one where they land.
     */
    cluster: z
      .strictObject({
        /** Unique per node; names the node in sessions, recordings and `tmuxgate nodes list`. */
        nodeId: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (at most 64)'),
        /** The node-to-node link (SSH with the cluster's node key). Without it, sessions whose tmux lives here cannot be relayed to. */
        link: z.strictObject({ listen: hostPort, advertise: hostPort.optional() }).optional(),
        /**
         * `root` (default): link connections leave from a port below 1024 and a link accepts no
         * other, so no user on any node can reach a link's handshake (the node refuses to start
         * where users may bind such ports: net.ipv4.ip_unprivileged_port_start below 1024).
         * `any`: where address translation between nodes rewrites ports; firewall the link port
         * instead (docs/cluster.md). The same on every node.
         */
        linkSourcePorts: z.enum(['root', 'any']).default('root'),
        heartbeat: duration('2s'),
        deadAfter: duration('10s'),
        /** This machine's id for per-machine OS accounts; /etc/machine-id by default. */
        host: z
          .string()
          .regex(/^[A-Za-z0-9_.:-]{1,128}$/)
          .optional(),
      })
      .optional(),
    log: z.strictObject({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info') }).prefault({}),
    /**
     * The gateway's own CPU priority (nice, -20..0) above its users' programs, which start at the
     * priority the gateway was started with: keystrokes and logins are served first on a box full
     * of busy shells, and no user's program can starve the gateway. Needs root; 0 turns it off.
     */
    nice: z.number().int().min(-20).max(0).default(-5),
    sessions: z
      .strictObject({
        idleTimeout: duration('15m'),
        idleWarning: duration('60s'),
        maxSessionTime: duration('12h'),
        defaultTerm: z
          .string()
          .regex(/^[A-Za-z0-9._+-]{1,64}$/)
          .default('xterm-256color'),
        socketDir: z.string().min(1).optional(),
        tmuxPath: z.string().min(1).default('tmux'),
        defaultShell: z.string().startsWith('/').default('/bin/bash'),
        lang: z
          .string()
          .regex(/^[A-Za-z0-9._@-]{1,64}$/)
          .default('C.UTF-8'),
        /** A tmux server with no client for this long is killed and its socket removed. */
        dormantTimeout: duration('8h'),
        /**
         * How many sessions' tmux clients (and, on a first login, servers and shells) start at
         * once; later ones wait their turn in arrival order. In a login storm the first users then
         * have shells at once instead of everyone waiting as long as the last. 'auto': the CPUs
         * this process may use, at least 2.
         */
        startsAtOnce: z.union([z.literal('auto'), z.number().int().min(1).max(1024)]).default('auto'),
        /** The longest one start holds its turn: a start that hangs delays the others this long at most. */
        startTurnMax: duration('250ms'),
      })
      .prefault({}),
    isolation: z
      .strictObject({
        /**
         * Roles with runAs get one OS account per (role, user), allocated from the uid range, in
         * the runAs account's group: two users of one role cannot reach each other's tmux, files or
         * processes. Needs the gateway to run as root.
         */
        pairAccounts: z.boolean().default(true),
        uidMin: z.number().int().min(1000).default(61000),
        uidMax: z
          .number()
          .int()
          .max(2 ** 31 - 2)
          .default(61999),
        accountPrefix: z
          .string()
          .regex(/^[a-z][a-z0-9]{0,11}$/)
          .default('tg'),
        homeBase: z.string().startsWith('/').default('/var/lib/tmuxgate/home'),
        /** How often managed tmux servers are checked for clients the gateway did not start. */
        intrusionCheckInterval: duration('10s'),
        /** Processes one pair account may have at once (RLIMIT_NPROC): a pair cannot use up the host's pids. */
        maxProcesses: z.number().int().min(16).max(1_000_000).default(4096),
      })
      .prefault({}),
    /** Optional Prometheus endpoint (GET /metrics), loopback only: it reveals activity levels. */
    metrics: z
      .strictObject({
        enabled: z.boolean().default(false),
        host: z.enum(['127.0.0.1', '::1', 'localhost']).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(9464),
      })
      .prefault({}),
    /** How often the gateway signs the audit chain head (also at every shutdown). */
    auditCheckpointInterval: duration('60s'),
    recording: z
      .strictObject({
        /** Off only for benchmarks: the compliance report fails a gateway that does not record. */
        enabled: z.boolean().default(true),
        fsync: z.boolean().default(true),
        flushInterval: duration('1s'),
        maxChunkBytes: z
          .number()
          .int()
          .min(4096)
          .max(4 * 1024 * 1024)
          .default(64 * 1024),
        maxQueueBytes: z
          .number()
          .int()
          .min(65536)
          .default(8 * 1024 * 1024),
        /** How long a recording is kept after it ends, for roles that set none (role --retention). */
        retention: retentionField('6y'),
      })
      .prefault({}),
    auth: z
      .strictObject({
        totp: z
          .strictObject({
            window: z.number().int().min(0).max(3).default(1),
            issuer: z.string().min(1).max(64).default('tmuxgate'),
          })
          .prefault({}),
        /** Counts only failures after a valid key proof: wrong, replayed or malformed codes. */
        userLockout: lockout(5, '5m'),
        /** Counts every failure from one source address, the key step's included. */
        addressLockout: lockout(20, '5m'),
        /** The same for the address's network (IPv4 /24, IPv6 /64): many addresses, one attacker. */
        prefixLockout: lockout(100, '5m'),
        /**
         * Failures before a valid key proof are audited as one summary per address per interval,
         * and at most maxRowsPerSecond rows per second on average (the busiest addresses first).
         */
        preAuthAudit: z
          .strictObject({
            interval: duration('60s'),
            maxRowsPerSecond: z.number().min(0.01).max(1000).default(1),
          })
          .prefault({}),
      })
      .prefault({}),
    ssh: z
      .strictObject({
        loginGraceTime: duration('30s'),
        /** From accept to the end of the first key exchange (ident, KEXINIT, kex): seconds, not the grace time. */
        handshakeTimeout: duration('10s'),
        maxAuthTries: z.number().int().min(1).max(20).default(3),
        /** Unauthenticated connections per source address, and per IPv4 /24 or IPv6 /64. */
        maxStartupsPerAddress: z.number().int().min(1).default(10),
        maxStartupsPerPrefix: z.number().int().min(1).default(30),
        /** sshd's MaxStartups: "start:rate:full" (random early drop from start, at rate% rising to 100% at full), or one number N (= N:100:N). */
        maxStartups: startups.prefault('10:30:100'),
        keepaliveInterval: duration('15s'),
        keepaliveCountMax: z.number().int().min(1).default(3),
        algorithms: z
          .strictObject({
            kex: narrowing(ALLOWED.kex),
            cipher: narrowing(ALLOWED.cipher),
            mac: narrowing(ALLOWED.mac),
          })
          .prefault({}),
        banner: z.string().max(2000).optional(),
      })
      .prefault({}),
    /**
     * Four-eyes unmasking of redacted views (docs/redaction.md, "Unmasking: four eyes"): how long a
     * grant lasts unless the request says (`--for`), the longest it may last, and how long a
     * request waits for a second admin before it lapses.
     */
    unmask: z
      .strictObject({
        defaultDuration: duration('1h'),
        maxDuration: duration('8h'),
        requestTtl: duration('24h'),
      })
      .prefault({}),
    /** Off-box copies of the evidence: `syslog` (audit rows), `recordings` (chunks and anchors); off unless set (docs/evidence.md). */
    evidence: EvidenceConfigSchema,
    /** What auditors' views of sessions mask (docs/redaction.md): on by default, with the built-in detectors. */
    redaction: redactionSchema.prefault({}),
  })
  .superRefine((c, ctx) => {
    if (c.sessions.idleWarning >= c.sessions.idleTimeout) {
      ctx.addIssue({ code: 'custom', path: ['sessions', 'idleWarning'], message: 'must be shorter than sessions.idleTimeout' });
    }
    if (c.isolation.uidMin > c.isolation.uidMax) {
      ctx.addIssue({ code: 'custom', path: ['isolation', 'uidMin'], message: 'must not exceed isolation.uidMax' });
    }
    if (c.auth.preAuthAudit.interval < 1000) {
      ctx.addIssue({ code: 'custom', path: ['auth', 'preAuthAudit', 'interval'], message: 'must be at least 1s' });
    }
    if (c.ssh.maxStartupsPerAddress > c.ssh.maxStartupsPerPrefix) {
      ctx.addIssue({ code: 'custom', path: ['ssh', 'maxStartupsPerAddress'], message: 'must not exceed ssh.maxStartupsPerPrefix' });
    }
    if (c.cluster) clusterIssues(c.cluster, c.store.kind).forEach((i) => ctx.addIssue({ code: 'custom', ...i }));
    if (c.unmask.defaultDuration <= 0 || c.unmask.defaultDuration > c.unmask.maxDuration) {
      ctx.addIssue({ code: 'custom', path: ['unmask', 'defaultDuration'], message: 'must be positive and not exceed unmask.maxDuration' });
    }
    if (c.unmask.requestTtl <= 0) ctx.addIssue({ code: 'custom', path: ['unmask', 'requestTtl'], message: 'must be positive' });
    if (c.store.kind === 'sqlite' && c.evidence.recordings?.postgres) {
      const message = 'the SQLite single-node store has no PostgreSQL sink (use store.kind postgres, or the s3 sink)';
      ctx.addIssue({ code: 'custom', path: ['evidence', 'recordings', 'postgres'], message });
    }
    if (c.ssh.maxStartupsPerPrefix > c.ssh.maxStartups.full) {
      ctx.addIssue({ code: 'custom', path: ['ssh', 'maxStartupsPerPrefix'], message: 'must not exceed the full value of ssh.maxStartups' });
    }
  });

/** What is wrong with a cluster section, given the store it would share. */
function clusterIssues(
  c: { link?: { listen: string; advertise?: string | undefined } | undefined; heartbeat: number; deadAfter: number },
  store: string,
): { path: string[]; message: string }[] {
  const out: { path: string[]; message: string }[] = [];
  const add = (path: string[], message: string) => out.push({ path, message });
  if (store !== 'postgres') add(['cluster'], 'needs store.kind postgres: the nodes share users, sessions and the audit chain through it');
  if (c.heartbeat < 100) add(['cluster', 'heartbeat'], 'must be at least 100ms');
  if (c.deadAfter < 3 * c.heartbeat) add(['cluster', 'deadAfter'], 'must be at least three heartbeats, so one late beat is not a death');
  if (c.link && WILDCARD.test(c.link.listen) && !c.link.advertise) {
    add(['cluster', 'link', 'advertise'], 'needed when link.listen is a wildcard address: the host:port other nodes reach this one at');
  }
  return out;
}

export type ConfigInput = z.input<typeof ConfigSchema>;
export type Config = z.output<typeof ConfigSchema> & {
  /** Absolute paths resolved by the loader. */
  paths: { dataDir: string; keysDir: string; socketDir: string; dbFile: string; configFile: string | null };
  /** sha256 of the canonical config, for the audit log. */
  hash: string;
};
