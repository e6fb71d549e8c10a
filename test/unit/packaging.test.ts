import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/load.js';

const root = path.resolve(import.meta.dirname, '../..');

describe('packaging', () => {
  it('docker-compose.yml parses and names the gateway service, its port and volumes', () => {
    const c = parse(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8')) as { services: Record<string, { ports: string[]; volumes: string[]; build: string }> };
    const s = c.services.tmuxgate!;
    expect(s.ports).toContain('2222:2222');
    expect(s.volumes.some((v) => v.endsWith(':/var/lib/tmuxgate/keys'))).toBe(true);
    expect(s.volumes.some((v) => v.endsWith(':/var/lib/tmuxgate/data'))).toBe(true);
    expect(existsSync(path.join(root, s.build, 'Dockerfile'))).toBe(true);
  });

  it('every file the Dockerfile copies exists, and its config is valid', () => {
    const df = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
    const sources = [...df.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    expect(sources.length).toBeGreaterThan(5);
    for (const s of sources) expect(existsSync(path.join(root, s)), s).toBe(true);
    const c = loadConfig(path.join(root, 'deploy/config.docker.yaml'));
    expect(c.paths.keysDir).toBe('/var/lib/tmuxgate/keys');
    expect(loadConfig(path.join(root, 'deploy/config.example.yaml')).ssh.algorithms.cipher).toHaveLength(2);
  });

  it('commits no private key, master key or database', () => {
    for (const d of ['keys', 'data']) {
      const ignore = readFileSync(path.join(root, d, '.gitignore'), 'utf8');
      expect(ignore).toMatch(/^\*$/m);
    }
  });
});

describe('host key generation', () => {
  it('never yields a malformed ed25519 key (ssh2 1.17 drops a leading zero about 1 in 300)', async () => {
    const { generateEd25519 } = await import('../../src/ssh/host-key.js');
    const { parseAuthorizedKey } = await import('../../src/auth/public-key.js');
    for (let i = 0; i < 1500; i++) expect(parseAuthorizedKey(generateEd25519().public).bits).toBe(256);
  });
});
