import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { AdminContext } from '../admin/context.js';
import { verifyAuditChain, verifyCheckpoints } from '../audit/log.js';
import { AUDIT_KEY_FILE, AUDIT_PUB_FILE, verifyWithPublicKey } from '../crypto/audit-key.js';
import { MASTER_KEY_FILE } from '../crypto/master-key.js';
import { HOST_KEY_FILE } from '../ssh/host-key.js';
import { ALLOWED, effectiveAlgorithms } from '../ssh/algorithms.js';
import { formatDuration } from '../config/duration.js';
import { currentAccount, lookupAccount } from '../host/account.js';
import { tmuxConf } from '../host/tmux.js';
import { verifyOne } from '../cli/recording-commands.js';

export interface Check {
  id: string;
  safeguard: string;
  title: string;
  pass: boolean;
  evidence: string;
}

const mode = (p: string) => (existsSync(p) ? (statSync(p).mode & 0o777).toString(8).padStart(4, '0') : 'missing');
const HOUR = 3_600_000;

/**
 * Every check reads the live configuration and state, and says what it read. Nothing is assumed
 * from the design: a development setup fails least privilege, recording switched off fails audit
 * controls, a loosened timeout fails automatic logoff.
 */
export function runChecks(a: AdminContext, opts: { verifyLimit?: number } = {}): Check[] {
  const c = a.config;
  const checks: Check[] = [];
  const add = (id: string, safeguard: string, title: string, pass: boolean, evidence: string) => checks.push({ id, safeguard, title, pass, evidence });
  const users = a.users.list();
  const roles = a.roles.list();
  const shellRoles = roles.filter((r) => r.kind === 'shell');

  // (a)(1) unique user identification
  const keyCounts = a.keys.counts();
  const keyless = users.filter((u) => a.keys.listForUser(u.id).length === 0).map((u) => u.name);
  add('unique-user-id', '164.312(a)(1)', 'Unique user identification', users.length > 0 && keyCounts.keys === keyCounts.fingerprints,
    `${users.length} named users; ${keyCounts.keys} keys, each enrolled to exactly one user; sessions and audit rows carry the user name` +
      (keyless.length ? `; without keys: ${keyless.join(', ')}` : ''));

  // (a)(2)(ii) emergency access
  const withCodes = a.recoveryCodes.holders();
  const breakGlass = roles.filter((r) => r.allowRoot).map((r) => r.name);
  add('emergency-access', '164.312(a)(2)(ii)', 'Emergency access procedure', withCodes.length > 0,
    `users holding unused one-time recovery codes: ${withCodes.join(', ') || 'none'}; break-glass roles (allowRoot): ${breakGlass.join(', ') || 'none'}`);

  // (a)(2)(iii) automatic logoff
  const idle = c.sessions.idleTimeout;
  const loose = shellRoles.filter((r) => (r.idleTimeoutMs ?? idle) > 30 * 60_000 || (r.maxSessionMs ?? c.sessions.maxSessionTime) > 24 * HOUR);
  add('automatic-logoff', '164.312(a)(2)(iii)', 'Automatic logoff', idle <= 30 * 60_000 && c.sessions.maxSessionTime <= 24 * HOUR && loose.length === 0,
    `idle timeout ${formatDuration(idle)} (from user input only, warning ${formatDuration(c.sessions.idleWarning)} ahead), max session ${formatDuration(c.sessions.maxSessionTime)}; limits: idle <= 30m, session <= 24h${loose.length ? `; roles over the limits: ${loose.map((r) => r.name).join(', ')}` : ''}`);

  // (a)(2)(iv) encryption and decryption
  const mk = path.join(c.paths.keysDir, MASTER_KEY_FILE);
  const totpKeyIds = a.totp.keyIds();
  add('encryption-at-rest', '164.312(a)(2)(iv)', 'Encryption and decryption', c.recording.enabled && mode(mk) === '0600',
    `recording ${c.recording.enabled ? 'on' : 'OFF'} (AES-256-GCM, per-session data keys wrapped by the master key); master.key mode ${mode(mk)}; TOTP secrets sealed under key ids ${totpKeyIds.join(', ') || '(none yet)'}`);

  // (b) audit controls
  const chain = verifyAuditChain(a.auditEvents);
  let cps: ReturnType<typeof verifyCheckpoints> | null = null;
  const pubFile = path.join(c.paths.keysDir, AUDIT_PUB_FILE);
  if (existsSync(pubFile)) {
    const pem = readFileSync(pubFile, 'utf8');
    cps = verifyCheckpoints(a.auditEvents, (d, s) => verifyWithPublicKey(pem, d, s));
  }
  const auditOk = !chain.problem && !!cps && !cps.problem && c.recording.enabled;
  add('audit-controls', '164.312(b)', 'Audit controls', auditOk,
    `audit chain of ${chain.rows} rows ${chain.problem ? `BROKEN at row ${chain.problem.id} (${chain.problem.detail})` : 'verifies'}; ${cps ? `${cps.checkpoints} signed checkpoints${cps.problem ? ` FAIL: ${cps.problem.detail}` : ''}, last ${cps.lastCheckpointAt ? new Date(cps.lastCheckpointAt).toISOString() : 'never'}` : 'no audit public key'}; session recording ${c.recording.enabled ? 'on' : 'OFF'}`);

  // (c)(1) integrity, (c)(2) authenticate ePHI
  const recs = a.recordings.list().slice(-(opts.verifyLimit ?? 200));
  const tampered: string[] = [];
  let verified = 0;
  if (existsSync(pubFile)) {
    const pem = readFileSync(pubFile, 'utf8');
    for (const r of recs) {
      const v = verifyOne(a, r.session_id, pem, true);
      a.recordings.noteVerified(r.session_id, v.status, a.clock.now());
      if (v.status === 'tampered') tampered.push(`${r.session_id} (${v.problem?.reason})`);
      else verified++;
    }
  }
  add('integrity', '164.312(c)(1)', 'Integrity: recordings unaltered', tampered.length === 0,
    `verified ${verified} of the latest ${recs.length} recordings just now (${new Date(a.clock.now()).toISOString()}): hash chain, GCM tags, signed trailers${tampered.length ? `; TAMPERED: ${tampered.join(', ')}` : ''}`);
  const ak = path.join(c.paths.keysDir, AUDIT_KEY_FILE);
  add('authenticate-ephi', '164.312(c)(2)', 'Mechanism to authenticate ePHI', mode(ak) === '0600' && existsSync(pubFile),
    `recording trailers and audit checkpoints are Ed25519-signed; audit key mode ${mode(ak)}, public key ${existsSync(pubFile) ? 'published' : 'missing'} (tmuxgate audit pubkey)`);

  // (d) person or entity authentication
  const confirmed = a.totp.confirmedCount();
  const noTotp = users.filter((u) => a.totp.state(u.id) !== 'confirmed').map((u) => u.name);
  add('mfa', '164.312(d)', 'Person or entity authentication (MFA required)', c.auth.userLockout.maxFailures <= 10,
    `every login needs an enrolled key's signature and a TOTP code (not configurable off); ${confirmed} users with confirmed TOTP${noTotp.length ? `; cannot log in until enrolled: ${noTotp.join(', ')}` : ''}; lockout after ${c.auth.userLockout.maxFailures} failures per user, ${c.auth.addressLockout.maxFailures} per address`);

  // (e) transmission security
  const algs = effectiveAlgorithms(c.ssh.algorithms);
  const weak = [...algs.kex, ...algs.cipher, ...algs.mac, ...algs.serverHostKey].filter((x) => ![...ALLOWED.kex, ...ALLOWED.cipher, ...ALLOWED.mac, ...ALLOWED.serverHostKey].includes(x as never));
  add('transmission-security', '164.312(e)(1)', 'Transmission security: strong algorithms only', weak.length === 0,
    `kex ${algs.kex.join(' ')}; host key ${algs.serverHostKey.join(' ')}; no compression; SHA-1 signatures refused`);
  add('transmission-integrity', '164.312(e)(2)(i)', 'Integrity controls in transit', algs.mac.every((m) => m.includes('-etm@')) ,
    `AEAD ciphers or encrypt-then-MAC only: MACs ${algs.mac.join(' ')}`);
  add('transmission-encryption', '164.312(e)(2)(ii)', 'Encryption in transit', algs.cipher.every((x) => /gcm|chacha20|ctr/.test(x)),
    `ciphers ${algs.cipher.join(' ')}`);

  // host keys and tmux hardening
  const hk = path.join(c.paths.keysDir, HOST_KEY_FILE);
  add('host-key-permissions', 'hardening', 'Host key permissions', mode(hk) === '0600' && mode(c.paths.keysDir) === '0700',
    `${hk} ${mode(hk)}; keys dir ${mode(c.paths.keysDir)}`);
  const dirs = existsSync(c.paths.socketDir) ? readdirSync(c.paths.socketDir).filter((d) => /^r\d+-u\d+$/.test(d)) : [];
  const badDirs = dirs.filter((d) => mode(path.join(c.paths.socketDir, d)) !== '0700');
  add('socket-dirs', 'hardening', 'Private tmux socket directories', badDirs.length === 0 && (!existsSync(c.paths.socketDir) || mode(c.paths.socketDir) === '0711'),
    `socket root ${c.paths.socketDir} ${mode(c.paths.socketDir)}; ${dirs.length} per-(role, user) dirs${dirs.length ? `, modes ${[...new Set(dirs.map((d) => mode(path.join(c.paths.socketDir, d))))].join('/')}` : ''}${badDirs.length ? `; too open: ${badDirs.join(', ')}` : ''}`);
  const shared = dirs.filter((d) => readdirSync(path.join(c.paths.socketDir, d)).filter((f) => f.endsWith('.sock')).length > 1);
  add('no-shared-sockets', 'hardening', 'No shared tmux sockets', shared.length === 0,
    `one tmux server per (role, user), directory named from ids (r<role>-u<user>)${shared.length ? `; several sockets in: ${shared.join(', ')}` : ''}`);
  const confs = shellRoles.map((r) => ({ r, conf: tmuxConf(r, r.shell ?? c.sessions.defaultShell) }));
  add('tmux-allow-rename', 'hardening', 'tmux allow-rename off', confs.every((x) => x.conf.includes('set -g allow-rename off')),
    `generated tmux.conf for ${confs.length} shell roles sets allow-rename off, set-clipboard off, allow-passthrough off, update-environment ""`);
  const escal = confs.filter((x) => /run-shell|if-shell|set-hook|default-command\s+"[^"]/.test(x.conf));
  add('tmux-conf-safe', 'hardening', 'tmux.conf free of privilege escalation', escal.length === 0,
    `no run-shell, if-shell, hooks or default-command in ${confs.length} generated configs; role options limited to an allow-list${escal.length ? `; offending: ${escal.map((x) => x.r.name).join(', ')}` : ''}`);

  // least privilege
  const me = currentAccount();
  const dev = shellRoles.filter((r) => !r.runAs || r.runAs === me.name);
  const missing = shellRoles.filter((r) => r.runAs && !lookupAccount(r.runAs));
  const root = shellRoles.filter((r) => r.runAs && lookupAccount(r.runAs)?.uid === 0);
  const pairs = c.isolation.pairAccounts && process.getuid?.() === 0;
  add('least-privilege', 'hardening', 'Least privilege: one OS account per (role, user)', shellRoles.length > 0 && dev.length === 0 && missing.length === 0 && root.length === 0 && pairs,
    `${pairs ? `pair accounts on (uids ${c.isolation.uidMin}-${c.isolation.uidMax}, in each role account's group); ` : 'PAIR ACCOUNTS OFF: users of one role share its OS account; '}${dev.length ? `DEVELOPMENT MODE: roles under the gateway's own account (${me.name}): ${dev.map((r) => r.name).join(', ')}; ` : ''}${missing.length ? `accounts missing for: ${missing.map((r) => r.name).join(', ')}; ` : ''}${root.length ? `roles running as root (break-glass): ${root.map((r) => r.name).join(', ')}; ` : ''}${shellRoles.map((r) => `${r.name}->${r.runAs ?? me.name}`).join(', ') || 'no shell roles'}`);
  return checks;
}
