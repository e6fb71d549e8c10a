import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteSql } from '../../src/store/sqlite.js';
import { cli, BIN } from '../helpers/cli.js';
import { cleanupStore, isolationYaml, makeKey, tempDir } from '../helpers/gateway.js';
import { PtyDriver } from '../helpers/pty-driver.js';

/** Every admin command through the real CLI binary, happy path and bad input. */
// Dozens of CLI processes one after the other (each starts Node): minutes on a busy 2-core machine.
describe('admin CLI', { timeout: 180_000 }, () => {
  const dir = tempDir();
  chmodSync(dir, 0o711); // pair and role accounts traverse to their homes
  const cfg = path.join(dir, 'config.yaml');
  const run = (...args: string[]) => cli([...args, '--config', cfg]);
  const oath = (secret: string, offsetS = 0) =>
    execFileSync('oathtool', [
      '--totp',
      '-b',
      '-N',
      new Date(Date.now() + offsetS * 1000)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z/, ' UTC'),
      secret,
    ])
      .toString()
      .trim();

  beforeAll(async () => {
    writeFileSync(cfg, `dataDir: ./data\nkeysDir: ./keys\n${isolationYaml(dir)}`);
    expect(run('init').status).toBe(0);
  });
  afterAll(async () => {
    cleanupStore(path.join(dir, 'data'));
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows an example in --help of every command', async () => {
    for (const c of [
      ['user', 'add'],
      ['user', 'disable'],
      ['key', 'remove'],
      ['totp', 'recovery'],
      ['role', 'edit'],
      ['lockouts', 'clear'],
      ['sessions', 'kill'],
      ['audit', 'export'],
      ['compliance', 'report'],
      ['verify'],
      ['replay'],
    ]) {
      const r = cli([...c, '--help']);
      expect(r.status, c.join(' ')).toBe(0);
      expect(r.stdout, c.join(' ')).toContain('Example:');
    }
  });

  it('manages roles and users, refusing bad input with one line, a stable code and nothing written', async () => {
    expect(run('role', 'add', 'ops', '--shell', '/bin/sh').status).toBe(0);
    expect(run('role', 'add', 'dba').status).toBe(0);
    const dup = run('role', 'add', 'ops');
    expect([dup.status, dup.stderr.trim()]).toEqual([4, 'tmuxgate: TG_ERR_ROLE_EXISTS: role ops already exists']);
    const bad = run('user', 'add', 'bob', '--role', 'nosuch');
    expect(bad.status).toBe(3);
    expect(bad.stderr).toMatch(/^tmuxgate: TG_ERR_ROLE_NOT_FOUND: /);
    expect(JSON.parse(run('user', 'list', '--json').stdout)).toEqual([]); // nothing half-written
    for (const n of ['Bob', 'bob+x', '../x', '', 'b'.repeat(40)]) expect(run('user', 'add', n).status).toBe(2);
    expect(run('user', 'add', 'alice', '--role', 'ops').status).toBe(0);
    expect(run('role', 'grant', 'alice', 'dba').status).toBe(0);
    expect(run('role', 'grant', 'alice', 'dba').status).toBe(4);
    expect(run('role', 'edit', 'ops', '--idle-timeout', '10m', '--record-input', 'on', '--tmux-option', 'history-limit=5000').status).toBe(0);
    expect(run('role', 'edit', 'ops', '--tmux-option', 'default-command=curl x|sh').stderr).toContain('not allowed');
    expect(run('role', 'edit', 'ops', '--idle-timeout', 'soon').status).toBe(2);
    const roles = JSON.parse(run('role', 'list', '--json').stdout) as { name: string; idleTimeoutMs: number }[];
    expect(roles.find((r) => r.name === 'ops')!.idleTimeoutMs).toBe(600_000);
    expect(run('role', 'remove', 'dba').stderr).toContain('TG_ERR_ROLE_IN_USE');
    expect(run('role', 'revoke', 'alice', 'dba').status).toBe(0);
    expect(run('role', 'revoke', 'alice', 'dba').status).toBe(3);
    expect(run('role', 'grant', 'alice', 'dba').status).toBe(0);
    expect(run('role', 'remove', 'dba', '--force').status).toBe(0);
    expect(run('user', 'show', 'nobody').status).toBe(3);
    expect(JSON.parse(run('user', 'show', 'alice', '--json').stdout)).toMatchObject({ name: 'alice', roles: ['ops'], totp: 'none' });
    expect(run('user', 'disable', 'alice').status).toBe(0);
    expect(JSON.parse(run('user', 'show', 'alice', '--json').stdout).disabled).toBe(true);
    expect(run('user', 'enable', 'alice').status).toBe(0);
  });

  it('manages keys with fingerprints exactly as ssh-keygen -l prints them', async () => {
    const k = makeKey(dir, 'alice');
    expect(run('key', 'add', 'alice', '--file', k.pubFile).status).toBe(0);
    expect(run('key', 'add', 'alice', '--file', k.pubFile).status).toBe(4);
    expect(run('key', 'add', 'alice', 'ssh-dss AAAAB3NzaC1kc3MAAACBAP').status).toBe(2);
    expect(run('key', 'add', 'alice', 'not a key').status).toBe(2);
    expect(run('key', 'add', 'alice').status).toBe(2);
    const fp = execFileSync('ssh-keygen', ['-lf', k.pubFile]).toString().split(' ')[1]!;
    const listed = JSON.parse(run('key', 'list', 'alice', '--json').stdout) as { fingerprint: string; comment: string }[];
    expect(listed).toEqual([expect.objectContaining({ fingerprint: fp, comment: 'alice@test' })]);
    expect(run('key', 'list', 'alice').stdout).toContain(fp);
    expect(run('key', 'remove', 'alice', 'SHA256:bogus').status).toBe(2);
    expect(run('key', 'remove', 'alice', 'SHA256:' + 'A'.repeat(43)).status).toBe(3);
    expect(run('key', 'remove', 'alice', fp).status).toBe(0);
    expect(run('key', 'add', 'alice', readFileSync(k.pubFile, 'utf8')).status).toBe(0);
  });

  it('enrolls TOTP interactively: QR and URI, then the current code confirms it', async () => {
    const p = new PtyDriver(process.execPath, [BIN, 'totp', 'enroll', 'alice', '--config', cfg], { PATH: process.env.PATH!, HOME: dir, TERM: 'xterm' });
    await p.waitFor('Enter the code');
    const secret = /secret=([A-Z2-7]+)/.exec(p.text)![1]!;
    expect(p.text).toMatch(/▄|█/); // the QR code, drawn in the terminal
    p.write('000000\r');
    await p.waitFor('code rejected');
    p.write(oath(secret) + '\r');
    await p.waitFor('confirmed: alice can now log in');
    expect(await p.waitExit()).toBe(0);
    expect(JSON.parse(run('user', 'show', 'alice', '--json').stdout).totp).toBe('confirmed');
  });

  it('leaves a --json enrollment pending until totp confirm; reset drops it', async () => {
    expect(run('user', 'add', 'bob', '--role', 'ops').status).toBe(0);
    const e = JSON.parse(run('totp', 'enroll', 'bob', '--json').stdout) as { user: string; secret: string; uri: string };
    expect(e.uri).toMatch(/^otpauth:\/\/totp\/tmuxgate:bob\?/);
    expect(JSON.parse(run('user', 'show', 'bob', '--json').stdout).totp).toBe('pending');
    expect(run('totp', 'confirm', 'bob', '12345').status).toBe(2);
    expect(run('totp', 'confirm', 'bob', '000000').status).toBe(6);
    expect(run('totp', 'confirm', 'bob', oath(e.secret)).status).toBe(0);
    expect(run('totp', 'reset', 'bob').status).toBe(0);
    expect(JSON.parse(run('user', 'show', 'bob', '--json').stdout).totp).toBe('none');
    const rc = JSON.parse(run('totp', 'recovery', 'bob', '-n', '3', '--json').stdout) as { codes: string[] };
    expect(rc.codes).toHaveLength(3);
    expect(rc.codes[0]).toMatch(/^[A-Z2-9]{4}(-[A-Z2-9]{4}){3}$/);
    const db = new Database(path.join(dir, 'data', 'tmuxgate.db'), { readonly: true });
    const raw = JSON.stringify(db.prepare('SELECT * FROM recovery_codes').all());
    db.close();
    expect(raw).not.toContain(rc.codes[0]!.replace(/-/g, ''));
    expect(run('user', 'remove', 'bob').status).toBe(0);
    expect(run('user', 'show', 'bob').status).toBe(3);
  });

  it('lists and clears lockouts, lists sessions, and refuses a kill of an unknown session', async () => {
    expect(JSON.parse(run('lockouts', 'list', '--json').stdout)).toEqual([]);
    expect(run('lockouts', 'clear', 'alice').stdout).toContain('was not locked out');
    expect(JSON.parse(run('sessions', 'list', '--json').stdout)).toEqual([]);
    expect(run('sessions', 'list', '--since', 'yesterday-ish').status).toBe(2);
    expect(run('sessions', 'kill', 's_nope').status).toBe(3);
  });

  it('tails, verifies and exports the audit log with the OS user who ran each change', async () => {
    const tail = run('audit', 'tail', '-n', '5', '--json')
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; actor: string });
    expect(tail).toHaveLength(5);
    expect(tail.every((r) => r.actor.startsWith('os:'))).toBe(true);
    expect(run('audit', 'verify').stdout).toContain('audit log intact');
    const jsonl = run('audit', 'export', '--format', 'jsonl').stdout.trim().split('\n');
    expect(jsonl.map((l) => (JSON.parse(l) as { type: string; data: { action?: string } }).data.action)).toEqual(
      expect.arrayContaining(['user.add', 'key.add', 'role.grant', 'user.disable', 'role.remove']),
    );
    const syslog = run('audit', 'export', '--format', 'syslog', '--since', '1h').stdout.trim().split('\n');
    for (const l of syslog) expect(l).toMatch(/^<\d+>1 \d{4}-\d\d-\d\dT[\d:.]+Z \S+ tmuxgate - [a-z.-]+ \[tmuxgate@32473 id="\d+" actor="[^"]+".*\] \S+$/);
    expect(run('audit', 'export', '--format', 'xml').status).toBe(2);
  });

  it('audit verify names an edited, deleted, inserted or reordered row, and a cut tail', async () => {
    const { writeCheckpoint } = await import('../../src/audit/log.js');
    const { AuditEventRepo } = await import('../../src/store/audit-events.js');
    const { loadAuditKey } = await import('../../src/crypto/audit-key.js');
    const dbFile = path.join(dir, 'data', 'tmuxgate.db');
    const key = loadAuditKey(path.join(dir, 'keys'));
    const db = new Database(dbFile);
    await writeCheckpoint(new AuditEventRepo(new SqliteSql(db)), key.sign, Date.now());
    const backup = db.prepare('SELECT * FROM audit_events ORDER BY id').all() as Record<string, unknown>[];
    const restore = () => {
      db.prepare('DELETE FROM audit_events').run();
      const ins = db.prepare(
        'INSERT INTO audit_events (id, ts, type, actor, data, prev_hash, hash) VALUES (@id, @ts, @type, @actor, @data, @prev_hash, @hash)',
      );
      for (const r of backup) ins.run(r);
    };
    const verify = () => run('audit', 'verify');
    db.prepare("UPDATE audit_events SET actor = 'os:mallory' WHERE id = 3").run();
    expect(verify().stdout).toMatch(/TAMPERED at row 3: edited/);
    expect(verify().status).toBe(5);
    restore();
    db.prepare('DELETE FROM audit_events WHERE id = 4').run();
    expect(verify().stdout).toMatch(/TAMPERED at row 5: broken-link/);
    restore();
    const r4 = backup[3]!;
    db.prepare('UPDATE audit_events SET id = id + 1000 WHERE id >= 4').run();
    db.prepare('INSERT INTO audit_events (id, ts, type, actor, data, prev_hash, hash) VALUES (4, ?, ?, ?, ?, ?, ?)').run(
      r4.ts,
      'admin.change',
      'os:mallory',
      '{}',
      r4.prev_hash,
      r4.hash,
    );
    expect(verify().stdout).toMatch(/TAMPERED at row 4: edited/);
    restore();
    const [a, b] = [backup[5]!, backup[6]!];
    db.prepare('UPDATE audit_events SET data = ?, hash = ?, prev_hash = ?, type = ?, actor = ?, ts = ? WHERE id = 6').run(
      b.data,
      b.hash,
      b.prev_hash,
      b.type,
      b.actor,
      b.ts,
    );
    db.prepare('UPDATE audit_events SET data = ?, hash = ?, prev_hash = ?, type = ?, actor = ?, ts = ? WHERE id = 7').run(
      a.data,
      a.hash,
      a.prev_hash,
      a.type,
      a.actor,
      a.ts,
    );
    expect(verify().stdout).toMatch(/TAMPERED at row 6: broken-link/);
    restore();
    const max = backup.length;
    db.prepare('DELETE FROM audit_events WHERE id > ?').run(max - 3);
    const cut = verify();
    expect(cut.stdout).toMatch(/the log was cut: checkpoint \d+ signed row \d+ but the log ends at row/);
    expect(cut.status).toBe(5);
    restore();
    expect(verify().status).toBe(0);
    db.close();
  });
});
