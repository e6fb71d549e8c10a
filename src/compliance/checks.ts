import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { AdminContext } from '../admin/context.js';
import { verifyAuditChain, verifyCheckpoints } from '../audit/log.js';
import { AUDIT_KEY_FILE, AUDIT_PUB_FILE, verifyWithPublicKey } from '../crypto/audit-key.js';
import { MASTER_KEY_FILE } from '../crypto/master-key.js';
import { HOST_KEY_FILE } from '../auth/host-key.js';
import { ALLOWED, effectiveAlgorithms } from '../crypto/algorithms.js';
import { formatDuration, formatRetention, SIX_YEARS_MS } from '../config/duration.js';
import { currentAccount, lookupAccount } from '../host/account.js';
import { tmuxConf } from '../host/tmux.js';
import { verifyStored } from '../recording/access.js';
import { SYSLOG_TARGET } from '../evidence/config.js';
import { retentionSummary } from '../admin/retention.js';
import type { SinkStatusRow } from '../store/evidence-sinks.js';

export interface Check {
  id: string;
  safeguard: string;
  title: string;
  pass: boolean;
  evidence: string;
}

export interface ComplianceReport {
  generatedAt: string;
  passed: number;
  failed: number;
  checks: Check[];
}

/** Runs every check and audits that the report was made (with its counts). */
export async function complianceReport(a: AdminContext): Promise<ComplianceReport> {
  const checks = await runChecks(a);
  const failed = checks.filter((c) => !c.pass).length;
  await a.audit.emit(a.actor, { type: 'admin.change', action: 'compliance.report', target: 'gateway', detail: { failed, checks: checks.length } });
  return { generatedAt: new Date(a.clock.now()).toISOString(), passed: checks.length - failed, failed, checks };
}

const mode = (p: string) => (existsSync(p) ? (statSync(p).mode & 0o777).toString(8).padStart(4, '0') : 'missing');
const HOUR = 3_600_000;

/**
 * Every check reads the live configuration and state, and says what it read. Nothing is assumed
 * from the design: a development setup fails least privilege, recording switched off fails audit
 * controls, a loosened timeout fails automatic logoff.
 */
export async function runChecks(a: AdminContext, opts: { verifyLimit?: number } = {}): Promise<Check[]> {
  const c = a.config;
  const checks: Check[] = [];
  const add = (id: string, safeguard: string, title: string, pass: boolean, evidence: string) => checks.push({ id, safeguard, title, pass, evidence });
  const users = await a.users.list();
  const roles = await a.roles.list();
  const shellRoles = roles.filter((r) => r.kind === 'shell');

  // (a)(1) unique user identification
  const keyCounts = await a.keys.counts();
  const keyless: string[] = [];
  for (const u of users) if ((await a.keys.listForUser(u.id)).length === 0) keyless.push(u.name);
  add(
    'unique-user-id',
    '164.312(a)(1)',
    'Unique user identification',
    users.length > 0 && keyCounts.keys === keyCounts.fingerprints,
    `${users.length} named users; ${keyCounts.keys} keys, each enrolled to exactly one user; sessions and audit rows carry the user name` +
      (keyless.length ? `; without keys: ${keyless.join(', ')}` : ''),
  );

  // (a)(2)(ii) emergency access
  const withCodes = await a.recoveryCodes.holders();
  const breakGlass = roles.filter((r) => r.allowRoot).map((r) => r.name);
  add(
    'emergency-access',
    '164.312(a)(2)(ii)',
    'Emergency access procedure',
    withCodes.length > 0,
    `users holding unused one-time recovery codes: ${withCodes.join(', ') || 'none'}; break-glass roles (allowRoot): ${breakGlass.join(', ') || 'none'}`,
  );

  // (a)(2)(iii) automatic logoff
  const idle = c.sessions.idleTimeout;
  const loose = shellRoles.filter((r) => (r.idleTimeoutMs ?? idle) > 30 * 60_000 || (r.maxSessionMs ?? c.sessions.maxSessionTime) > 24 * HOUR);
  add(
    'automatic-logoff',
    '164.312(a)(2)(iii)',
    'Automatic logoff',
    idle <= 30 * 60_000 && c.sessions.maxSessionTime <= 24 * HOUR && loose.length === 0,
    `idle timeout ${formatDuration(idle)} (from user input only, warning ${formatDuration(c.sessions.idleWarning)} ahead), max session ${formatDuration(c.sessions.maxSessionTime)}; limits: idle <= 30m, session <= 24h${loose.length ? `; roles over the limits: ${loose.map((r) => r.name).join(', ')}` : ''}`,
  );

  // (a)(2)(iv) encryption and decryption
  const mk = path.join(c.paths.keysDir, MASTER_KEY_FILE);
  const totpKeyIds = await a.totp.keyIds();
  add(
    'encryption-at-rest',
    '164.312(a)(2)(iv)',
    'Encryption and decryption',
    c.recording.enabled && mode(mk) === '0600',
    `recording ${c.recording.enabled ? 'on' : 'OFF'} (AES-256-GCM, per-session data keys wrapped by the master key); master.key mode ${mode(mk)}; TOTP secrets sealed under key ids ${totpKeyIds.join(', ') || '(none yet)'}`,
  );

  // (b) audit controls
  const chain = await verifyAuditChain(a.auditEvents);
  let cps: Awaited<ReturnType<typeof verifyCheckpoints>> | null = null;
  const pubFile = path.join(c.paths.keysDir, AUDIT_PUB_FILE);
  if (existsSync(pubFile)) {
    const pem = readFileSync(pubFile, 'utf8');
    cps = await verifyCheckpoints(a.auditEvents, (d, s) => verifyWithPublicKey(pem, d, s));
  }
  const auditOk = !chain.problem && !!cps && !cps.problem && c.recording.enabled;
  add(
    'audit-controls',
    '164.312(b)',
    'Audit controls',
    auditOk,
    `audit chain of ${chain.rows} rows ${chain.problem ? `BROKEN at row ${chain.problem.id} (${chain.problem.detail})` : 'verifies'}; ${cps ? `${cps.checkpoints} signed checkpoints${cps.problem ? ` FAIL: ${cps.problem.detail}` : ''}, last ${cps.lastCheckpointAt ? new Date(cps.lastCheckpointAt).toISOString() : 'never'}` : 'no audit public key'}; session recording ${c.recording.enabled ? 'on' : 'OFF'}`,
  );

  const shipping = await auditShipping(a);
  add('audit-offsite', '164.312(b)', 'Audit log shipped off the box', shipping.pass, shipping.evidence);
  const recShipping = await recordingShipping(a);
  add('recordings-offsite', '164.312(c)(1)', 'Recordings shipped off the box', recShipping.pass, recShipping.evidence);

  // (c)(1) integrity, (c)(2) authenticate ePHI
  const recs = (await a.recordings.list({ onNode: a.nodeId })).slice(-(opts.verifyLimit ?? 200));
  const tampered: string[] = [];
  let verified = 0;
  let purged = 0;
  if (existsSync(pubFile)) {
    const pem = readFileSync(pubFile, 'utf8');
    for (const r of recs) {
      const v = await verifyStored(a, r.session_id, pem, true);
      if (v.status === 'tampered') tampered.push(`${r.session_id} (${v.problem?.reason})`);
      else if (v.status === 'purged') purged++;
      else verified++;
    }
  }
  add(
    'integrity',
    '164.312(c)(1)',
    'Integrity: recordings unaltered',
    tampered.length === 0,
    `verified ${verified} of the latest ${recs.length} recordings just now (${new Date(a.clock.now()).toISOString()}): hash chain, GCM tags, signed trailers` +
      `${purged ? `; ${purged} purged under retention, each with a signed tombstone that verifies` : ''}${tampered.length ? `; TAMPERED: ${tampered.join(', ')}` : ''}`,
  );
  checks.push(await retentionCheck(a, roles));
  checks.push(await minimumNecessary(a));
  const ak = path.join(c.paths.keysDir, AUDIT_KEY_FILE);
  add(
    'authenticate-ephi',
    '164.312(c)(2)',
    'Mechanism to authenticate ePHI',
    mode(ak) === '0600' && existsSync(pubFile),
    `recording trailers and audit checkpoints are Ed25519-signed; audit key mode ${mode(ak)}, public key ${existsSync(pubFile) ? 'published' : 'missing'} (tmuxgate audit pubkey)`,
  );

  // (d) person or entity authentication
  const confirmed = await a.totp.confirmedCount();
  const noTotp: string[] = [];
  for (const u of users) if ((await a.totp.state(u.id)) !== 'confirmed') noTotp.push(u.name);
  add(
    'mfa',
    '164.312(d)',
    'Person or entity authentication (MFA required)',
    c.auth.userLockout.maxFailures <= 10,
    `every login needs an enrolled key's signature and a TOTP code (not configurable off); ${confirmed} users with confirmed TOTP${noTotp.length ? `; cannot log in until enrolled: ${noTotp.join(', ')}` : ''}; lockout after ${c.auth.userLockout.maxFailures} failures per user, ${c.auth.addressLockout.maxFailures} per address`,
  );

  // (e) transmission security
  const algs = effectiveAlgorithms(c.ssh.algorithms);
  const weak = [...algs.kex, ...algs.cipher, ...algs.mac, ...algs.serverHostKey].filter(
    (x) => ![...ALLOWED.kex, ...ALLOWED.cipher, ...ALLOWED.mac, ...ALLOWED.serverHostKey].includes(x as never),
  );
  add(
    'transmission-security',
    '164.312(e)(1)',
    'Transmission security: strong algorithms only',
    weak.length === 0,
    `kex ${algs.kex.join(' ')}; host key ${algs.serverHostKey.join(' ')}; no compression; SHA-1 signatures refused`,
  );
  add(
    'transmission-integrity',
    '164.312(e)(2)(i)',
    'Integrity controls in transit',
    algs.mac.every((m) => m.includes('-etm@')),
    `AEAD ciphers or encrypt-then-MAC only: MACs ${algs.mac.join(' ')}`,
  );
  add(
    'transmission-encryption',
    '164.312(e)(2)(ii)',
    'Encryption in transit',
    algs.cipher.every((x) => /gcm|chacha20|ctr/.test(x)),
    `ciphers ${algs.cipher.join(' ')}`,
  );

  // host keys and tmux hardening
  const hk = path.join(c.paths.keysDir, HOST_KEY_FILE);
  add(
    'host-key-permissions',
    'hardening',
    'Host key permissions',
    mode(hk) === '0600' && mode(c.paths.keysDir) === '0700',
    `${hk} ${mode(hk)}; keys dir ${mode(c.paths.keysDir)}`,
  );
  const dirs = existsSync(c.paths.socketDir) ? readdirSync(c.paths.socketDir).filter((d) => /^r\d+-u\d+$/.test(d)) : [];
  const badDirs = dirs.filter((d) => mode(path.join(c.paths.socketDir, d)) !== '0700');
  add(
    'socket-dirs',
    'hardening',
    'Private tmux socket directories',
    badDirs.length === 0 && (!existsSync(c.paths.socketDir) || mode(c.paths.socketDir) === '0711'),
    `socket root ${c.paths.socketDir} ${mode(c.paths.socketDir)}; ${dirs.length} per-(role, user) dirs${dirs.length ? `, modes ${[...new Set(dirs.map((d) => mode(path.join(c.paths.socketDir, d))))].join('/')}` : ''}${badDirs.length ? `; too open: ${badDirs.join(', ')}` : ''}`,
  );
  const shared = dirs.filter((d) => readdirSync(path.join(c.paths.socketDir, d)).filter((f) => f.endsWith('.sock')).length > 1);
  add(
    'no-shared-sockets',
    'hardening',
    'No shared tmux sockets',
    shared.length === 0,
    `one tmux server per (role, user), directory named from ids (r<role>-u<user>)${shared.length ? `; several sockets in: ${shared.join(', ')}` : ''}`,
  );
  const confs = shellRoles.map((r) => ({ r, conf: tmuxConf(r, r.shell ?? c.sessions.defaultShell) }));
  add(
    'tmux-allow-rename',
    'hardening',
    'tmux allow-rename off',
    confs.every((x) => x.conf.includes('set -g allow-rename off')),
    `generated tmux.conf for ${confs.length} shell roles sets allow-rename off, set-clipboard off, allow-passthrough off, update-environment ""`,
  );
  const escal = confs.filter((x) => /run-shell|if-shell|set-hook|default-command\s+"[^"]/.test(x.conf));
  add(
    'tmux-conf-safe',
    'hardening',
    'tmux.conf free of privilege escalation',
    escal.length === 0,
    `no run-shell, if-shell, hooks or default-command in ${confs.length} generated configs; role options limited to an allow-list${escal.length ? `; offending: ${escal.map((x) => x.r.name).join(', ')}` : ''}`,
  );

  // least privilege
  const me = currentAccount();
  const dev = shellRoles.filter((r) => !r.runAs || r.runAs === me.name);
  const missing = shellRoles.filter((r) => r.runAs && !lookupAccount(r.runAs));
  const root = shellRoles.filter((r) => r.runAs && lookupAccount(r.runAs)?.uid === 0);
  const pairs = c.isolation.pairAccounts && process.getuid?.() === 0;
  add(
    'least-privilege',
    'hardening',
    'Least privilege: one OS account per (role, user)',
    shellRoles.length > 0 && dev.length === 0 && missing.length === 0 && root.length === 0 && pairs,
    `${pairs ? `pair accounts on (uids ${c.isolation.uidMin}-${c.isolation.uidMax}, in each role account's group); ` : 'PAIR ACCOUNTS OFF: users of one role share its OS account; '}${dev.length ? `DEVELOPMENT MODE: roles under the gateway's own account (${me.name}): ${dev.map((r) => r.name).join(', ')}; ` : ''}${missing.length ? `accounts missing for: ${missing.map((r) => r.name).join(', ')}; ` : ''}${root.length ? `roles running as root (break-glass): ${root.map((r) => r.name).join(', ')}; ` : ''}${shellRoles.map((r) => `${r.name}->${r.runAs ?? me.name}`).join(', ') || 'no shell roles'}`,
  );
  return checks;
}

/**
 * evidence.syslog as the store sees it: the cursor against the newest row (the lag) and the
 * lease holder's view of the collector. Fails when the lag is over its bound or the node that
 * ships cannot reach the collector; says so when shipping is not configured.
 */
async function auditShipping(a: AdminContext): Promise<{ pass: boolean; evidence: string }> {
  const s = a.config.evidence.syslog;
  if (!s) {
    return { pass: true, evidence: 'audit log shipping is not configured (evidence.syslog): no copy of the audit log leaves this store' };
  }
  const row = await a.evidenceShipping.get(SYSLOG_TARGET);
  const newest = await a.auditEvents.maxId();
  const cursor = row?.shipped_id ?? 0;
  const lag = Math.max(0, newest - cursor);
  const over = lag > s.maxLagEvents;
  const live = !!row && row.lease_until > a.clock.now();
  const unreachable = live && row.unreachable_since !== null;
  const iso = (t: number) => new Date(t).toISOString();
  const who = !row
    ? 'no gateway has shipped yet'
    : !live
      ? `no gateway ships now (the last was ${row.holder ?? 'none'})`
      : unreachable
        ? `${row.holder} ships; collector UNREACHABLE since ${iso(row.unreachable_since!)}${row.last_error ? ` (${row.last_error})` : ''}`
        : `${row.holder} ships; ${row.connected ? 'connected' : 'connecting'}`;
  const bound = over ? `OVER its bound of ${s.maxLagEvents}` : `bound ${s.maxLagEvents}`;
  const to = `syslog over TLS to ${s.host}:${s.port} (onFailure ${s.onFailure})`;
  return { pass: !over && !unreachable, evidence: `${to}: ${cursor} of ${newest} audit rows confirmed at the collector, lag ${lag} (${bound}); ${who}` };
}

/**
 * Retention per role against HIPAA's six years (45 CFR 164.316(b)(2)(i)), holds, purges, and
 * recordings past retention not yet purged. Fails when a role (or the default) keeps recordings
 * for less than six years; recordings past retention are a warning in the evidence, not a failure.
 */
async function retentionCheck(a: AdminContext, roles: Awaited<ReturnType<AdminContext['roles']['list']>>): Promise<Check> {
  const def = a.config.recording.retention;
  const per = roles.filter((r) => r.kind === 'shell').map((r) => ({ name: r.name, ms: r.retentionMs ?? def, own: r.retentionMs != null }));
  const short = per.filter((r) => r.ms < SIX_YEARS_MS).map((r) => r.name);
  const s = await retentionSummary(a);
  const iso = (t: number) => new Date(t).toISOString();
  const parts = [
    `default retention ${formatRetention(def)}${def < SIX_YEARS_MS ? ' (UNDER six years)' : ''}`,
    `per role: ${per.map((r) => `${r.name} ${formatRetention(r.ms)}${r.own ? '' : ' (default)'}`).join(', ') || 'no shell roles'}`,
    short.length ? `UNDER six years: ${short.join(', ')}` : 'every role keeps recordings at least six years after they end',
    `legal holds: ${s.holds} standing on ${s.heldRecordings} recordings` +
      (s.oldestHold ? `, oldest ${s.oldestHold.id} on ${s.oldestHold.session_id} since ${iso(s.oldestHold.placed_at)}` : ''),
    `purges: ${s.purges}${s.lastPurge ? `, last ${s.lastPurge.sessionId} at ${iso(s.lastPurge.at)} by ${s.lastPurge.by ?? '?'}` : ''}` +
      ' (each a signed tombstone in the audit chain)',
    s.pastRetention
      ? `WARNING: ${s.pastRetention} recordings past retention not yet purged (tmuxgate recordings purge --expired)`
      : 'no recording past retention awaits purging',
  ];
  return {
    id: 'retention',
    safeguard: '164.316(b)(2)(i)',
    title: 'Retention, legal hold and provable deletion',
    pass: def >= SIX_YEARS_MS && short.length === 0,
    evidence: parts.join('; '),
  };
}

/** A node's status row counts as current for this long (nodes write theirs every 5 s). */
const STATUS_FRESH_MS = 60_000;

/**
 * The S3 sink's catalogs as the nodes count them since they started: writes that failed (the
 * segments are stored; readers index them until a later catalog names them, slower but nothing
 * lost) and catalogs read that are not catalogs (someone with the bucket's credentials wrote
 * junk, or an object was cut: not trusted, that writer day's segments are indexed instead).
 * Warnings, not failures: no evidence is missing because of either.
 */
export function catalogHealth(rows: readonly SinkStatusRow[]): string {
  const failures = rows.reduce((n, x) => n + (x.catalog_failures ?? 0), 0);
  const unreadable = rows.reduce((n, x) => n + (x.unreadable_catalogs ?? 0), 0);
  const last = rows.filter((x) => x.catalog_error_at !== null).sort((a, b) => b.catalog_error_at! - a.catalog_error_at!)[0];
  const lastText = last ? ` (last on ${last.node} at ${new Date(last.catalog_error_at!).toISOString()}: ${last.catalog_error ?? 'error'})` : '';
  const written = failures
    ? `catalogs: WARNING ${failures} writes failed${lastText}; readers index the segments they were to name until a later catalog names them`
    : 'catalogs: every write succeeded';
  const read = unreadable
    ? `WARNING ${unreadable} objects read as catalogs are not catalogs (not trusted: the segments of their writer day are indexed instead)`
    : 'none read was malformed';
  return `${written}, ${read}`;
}

/**
 * evidence.recordings as the store sees it: each node's lag per sink against the bound, whether
 * it can reach the sink, and whether the sink's credentials can alter what they wrote. Fails on
 * a lag over the bound, an unreachable sink with data waiting, or a writer that can alter its copy.
 */
async function recordingShipping(a: AdminContext): Promise<{ pass: boolean; evidence: string }> {
  const r = a.config.evidence.recordings;
  if (!r) return { pass: true, evidence: "recording shipping is not configured (evidence.recordings): recordings exist only on this gateway's disk" };
  const sinks = [r.postgres ? 'postgres' : null, r.s3 ? 's3' : null].filter((x): x is string => x !== null);
  const rows = await a.evidenceSinks.statuses();
  const now = a.clock.now();
  const iso = (t: number) => new Date(t).toISOString();
  let pass = true;
  const parts: string[] = [];
  for (const sink of sinks) {
    const mine = rows.filter((x) => x.sink === sink);
    const live = mine.filter((x) => now - x.updated_at <= STATUS_FRESH_MS);
    if (mine.length === 0) {
      parts.push(`${sink}: no gateway has reported yet`);
      continue;
    }
    const lag = live.reduce((n, x) => n + x.lag_bytes, 0);
    const chunks = live.reduce((n, x) => n + x.lag_chunks, 0);
    const over = live.filter((x) => x.lag_bytes > x.max_lag_bytes);
    const down = live.filter((x) => !x.connected && x.last_error_at !== null && x.lag_bytes > 0);
    const rights = mine[0]!.append_only;
    const mutable = rights?.startsWith('no') ?? false;
    if (over.length || down.length || mutable) pass = false;
    const bound = `bound ${r.maxLagBytes} bytes each`;
    const stale = mine.filter((x) => !live.includes(x)).map((x) => x.node);
    const nodes = `${live.length} of ${mine.length} gateways reporting${stale.length ? ` (stale: ${stale.join(', ')})` : ''}`;
    const lagText = `lag ${lag} bytes, ${chunks} chunks (${over.length ? `OVER its ${bound} on ${over.map((x) => x.node).join(', ')}` : bound})`;
    const downText = down.map((x) => `${x.node} since ${iso(x.last_error_at!)} (${x.last_error ?? 'error'})`).join(', ');
    const shipped = mine.reduce((n, x) => n + x.shipped_chunks, 0);
    parts.push(
      `${sink} (${mine[0]!.destination}, onFailure ${r.onFailure}): ${lagText}; ${nodes}; ${down.length ? `UNREACHABLE from ${downText}; ` : ''}` +
        `${shipped} chunks shipped since the gateways started; append-only: ${mutable ? `NO (${rights})` : (rights ?? 'not yet checked')}` +
        (sink === 's3' ? `; ${catalogHealth(mine)}` : ''),
    );
  }
  return { pass, evidence: `recordings shipped as they are written, signed anchors every ${r.anchorInterval / 1000} s: ${parts.join('; ')}` };
}

const grantLine = (g: { id: number; session_id: string; grantee: string; expires_at: number }): string =>
  `${g.id} on ${g.session_id} for ${g.grantee} until ${new Date(g.expires_at).toISOString()}`;

/**
 * Minimum necessary for reviewers: auditors' and admins' views of sessions are redacted unless a
 * four-eyes grant unmasks one session for a while. Fails when redaction is off (every view shows
 * every identifier); lists what is turned off, and the grants in force and open requests.
 */
async function minimumNecessary(a: AdminContext): Promise<Check> {
  const r = a.config.redaction;
  const now = a.clock.now();
  const grants = (await a.unmask.grants()).filter((g) => g.revoked_at === null && g.expires_at > now);
  const pending = (await a.unmask.requests()).filter((q) => q.state === 'pending' && q.expires_at > now);
  const parts = [
    r.enabled
      ? 'replay, export, search, observe and watch redact identifiers by default'
      : 'redaction is OFF (redaction.enabled: false): every view shows every identifier',
    r.disable.length ? `detectors turned off: ${r.disable.join(', ')}` : 'every built-in detector on',
    `${r.patterns.length} deployment patterns, ${r.known ? `${r.known.sha256.length} known identifiers (salted hashes)` : 'no known-identifier list'}`,
    `unmask: ${grants.length} grants in force${grants.length ? ` (${grants.map(grantLine).join(', ')})` : ''}, ` +
      `${pending.length} requests awaiting a second admin; each approval and unmasked view is in the audit chain`,
  ];
  return {
    id: 'minimum-necessary',
    safeguard: '164.514(d)',
    title: 'Minimum necessary: reviewers see identifiers masked',
    pass: r.enabled,
    evidence: parts.join('; '),
  };
}
