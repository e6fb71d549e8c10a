import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/load.js';

const root = path.resolve(import.meta.dirname, '../..');

describe('packaging', () => {
  it('docker-compose.yml parses and names the gateway service, its port and volumes', async () => {
    const c = parse(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8')) as {
      services: Record<string, { ports: string[]; volumes: string[]; build: string }>;
    };
    const s = c.services.tmuxgate!;
    expect(s.ports).toContain('2222:2222');
    expect(s.volumes.some((v) => v.endsWith(':/var/lib/tmuxgate/keys'))).toBe(true);
    expect(s.volumes.some((v) => v.endsWith(':/var/lib/tmuxgate/data'))).toBe(true);
    expect(existsSync(path.join(root, s.build, 'Dockerfile'))).toBe(true);
  });

  it('compose runs isolation for real: root with exactly the capabilities it needs, homes on a volume', async () => {
    const c = parse(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8')) as {
      services: Record<
        string,
        { cap_drop: string[]; cap_add: string[]; user?: string; privileged?: boolean; volumes: string[]; tmpfs: string[]; security_opt: string[] }
      >;
    };
    const s = c.services.tmuxgate!;
    expect(s.cap_drop).toEqual(['ALL']);
    expect([...s.cap_add].sort()).toEqual(['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'KILL', 'SETGID', 'SETUID']);
    expect(s.user ?? 'root').toBe('root');
    expect(s.privileged ?? false).toBe(false);
    expect(s.security_opt).toContain('no-new-privileges:true');
    expect(s.volumes.some((v) => v.endsWith(':/var/lib/tmuxgate/home'))).toBe(true);
    expect(s.tmpfs).toContain('/run');
    const docker = loadConfig(path.join(root, 'deploy/config.docker.yaml'));
    expect(docker.isolation.homeBase).toBe('/var/lib/tmuxgate/home');
    expect(docker.isolation.pairAccounts).toBe(true);
  });

  it('the image is built on a maintained Node LTS and installs what isolation runs', async () => {
    const df = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
    const bases = [...df.matchAll(/^FROM node:(\d+)/gm)].map((m) => Number(m[1]));
    expect(bases.length).toBe(2);
    for (const major of bases) expect([22, 24]).toContain(major); // 20 reached end of life in April 2026
    const deps = readFileSync(path.join(root, 'scripts/install-system-deps.sh'), 'utf8');
    const runtime = /^RUNTIME=\(([^)]*)\)/m.exec(deps)![1]!.split(/\s+/);
    for (const p of ['tmux', 'procps', 'bubblewrap', 'passwd', 'util-linux']) expect(runtime).toContain(p);
  });

  it('every file the Dockerfile copies exists, and its config is valid', async () => {
    const df = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
    const sources = [...df.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    expect(sources.length).toBeGreaterThan(5);
    for (const s of sources) expect(existsSync(path.join(root, s)), s).toBe(true);
    const c = loadConfig(path.join(root, 'deploy/config.docker.yaml'));
    expect(c.paths.keysDir).toBe('/var/lib/tmuxgate/keys');
    expect(loadConfig(path.join(root, 'deploy/config.example.yaml')).ssh.algorithms.cipher).toHaveLength(2);
  });

  it("the systemd unit keeps the users' tmux servers across restarts and sets no ceiling one user could fill", async () => {
    const text = readFileSync(path.join(root, 'deploy/tmuxgate.service'), 'utf8');
    const service = /^\[Service\]\n([\s\S]*?)(?=^\[)/m.exec(text)![1]!;
    const keys = new Map(
      service
        .split('\n')
        .filter((l) => /^[A-Za-z]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const),
    );
    expect(keys.get('ExecStart')).toMatch(/^\/usr\/bin\/node \/opt\/tmuxgate\/bin\/tmuxgate\.js serve --config \/etc\/tmuxgate\/config\.yaml$/);
    expect(keys.get('KillMode')).toBe('process'); // control-group (the default) would end every session at each restart
    expect(keys.get('KillSignal')).toBe('SIGTERM'); // the drain
    expect(keys.get('TasksMax')).toBe('infinity');
    expect(Number(keys.get('LimitNOFILE'))).toBeGreaterThanOrEqual(65536);
    expect(keys.get('NoNewPrivileges')).toBe('yes');
    // The config its install lines write is valid, and keeps data and keys out of /etc.
    const yaml = /printf '([^']+)' > \/etc\/tmuxgate\/config\.yaml/.exec(text)![1]!.replaceAll('\\n', '\n');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-unit-'));
    try {
      writeFileSync(path.join(dir, 'config.yaml'), yaml);
      const c = loadConfig(path.join(dir, 'config.yaml'));
      expect([c.paths.dataDir, c.paths.keysDir]).toEqual(['/var/lib/tmuxgate/data', '/var/lib/tmuxgate/keys']);
      // systemd's own checker, where it is installed: no unknown key, no value it cannot parse.
      writeFileSync(path.join(dir, 'tmuxgate.service'), text);
      const r = spawnSync('systemd-analyze', ['verify', path.join(dir, 'tmuxgate.service')], { encoding: 'utf8' });
      if (!r.error) expect(`${r.stdout}${r.stderr}`).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(readFileSync(path.join(root, 'README.md'), 'utf8')).toContain('deploy/tmuxgate.service');
  });

  it('commits no private key, master key or database', async () => {
    for (const d of ['keys', 'data']) {
      const ignore = readFileSync(path.join(root, d, '.gitignore'), 'utf8');
      expect(ignore).toMatch(/^\*$/m);
    }
  });
});

describe('host key generation', () => {
  it('never yields a malformed ed25519 key (ssh2 1.17 drops a leading zero about 1 in 300)', async () => {
    const { generateEd25519 } = await import('../../src/auth/host-key.js');
    const { parseAuthorizedKey } = await import('../../src/auth/public-key.js');
    for (let i = 0; i < 1500; i++) expect(parseAuthorizedKey(generateEd25519().public).bits).toBe(256);
  });
});
