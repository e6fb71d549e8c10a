import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { backendOptions } from '../helpers/haproxy.js';

const root = path.resolve(import.meta.dirname, '../..');
const deploy = path.join(root, 'deploy');

interface Mount {
  type: string;
  source: string;
  target: string;
  read_only?: boolean;
  bind?: { create_host_path?: boolean };
}
interface Service {
  image?: string;
  build?: string;
  profiles?: string[];
  ports?: string[];
  volumes?: (Mount | string)[];
  secrets?: ({ source: string; target: string } | string)[];
  networks?: Record<string, { ipv4_address?: string }> | string[];
  cap_drop?: string[];
  cap_add?: string[];
  sysctls?: Record<string, number | string>;
  hostname?: string;
  environment?: Record<string, string>;
  depends_on?: Record<string, unknown> | string[];
}
interface Compose {
  services: Record<string, Service>;
  secrets: Record<string, { file: string }>;
}

// `merge: true`: the nodes share their settings through `<<: *node`, as compose reads it.
const compose = parse(readFileSync(path.join(deploy, 'docker-compose.cluster.yml'), 'utf8'), { merge: true }) as Compose;
const single = parse(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8')) as Compose;
const haproxyCfg = readFileSync(path.join(deploy, 'haproxy.cfg'), 'utf8');
const configOf = (node: string) => loadConfig(path.join(deploy, `config.${node}.yaml`));
const config = configOf('node-a');
const svc = (name: string): Service => compose.services[name]!;
const mounts = (s: Service): Mount[] => (s.volumes ?? []).filter((v): v is Mount => typeof v === 'object');
const address = (s: Service): string | undefined => (Array.isArray(s.networks) ? undefined : s.networks?.cluster?.ipv4_address);
const nodes = ['node-a', 'node-b'];

describe('deploy/docker-compose.cluster.yml: HAProxy, two nodes, PostgreSQL 15', () => {
  it('runs exactly HAProxy 2.6, two tmuxgate nodes built from the repo and PostgreSQL 15 (the key maker only on request)', () => {
    const started = Object.entries(compose.services)
      .filter(([, s]) => !s.profiles)
      .map(([n]) => n);
    expect(started.sort()).toEqual(['haproxy', 'node-a', 'node-b', 'postgres']);
    expect(svc('haproxy').image).toMatch(/^haproxy:2\.6\b/);
    expect(svc('postgres').image).toMatch(/^postgres:15\b/);
    for (const n of nodes) {
      expect(svc(n).image).toBe('tmuxgate:latest');
      expect(existsSync(path.join(deploy, svc(n).build!, 'Dockerfile'))).toBe(true);
      expect(svc(n).environment?.TMUXGATE_CONFIG).toBe('/etc/tmuxgate/config.yaml');
      expect(Object.keys(svc(n).depends_on as Record<string, unknown>)).toContain('postgres');
    }
    expect(svc('init').profiles).toEqual(['setup']);
  });

  it('mounts the shared keys read-only on every node, from a host dir that must exist; only the one-off init writes them', () => {
    for (const n of nodes) {
      const keys = mounts(svc(n)).filter((m) => m.target === config.paths.keysDir);
      expect(keys).toEqual([{ type: 'bind', source: './secrets/keys', target: config.paths.keysDir, read_only: true, bind: { create_host_path: false } }]);
      // Its own data and homes: recordings and pair homes stay on the node.
      const own = (svc(n).volumes ?? []).filter((v): v is string => typeof v === 'string');
      expect(own).toEqual([`${n}-data:${config.paths.dataDir}`, `${n}-home:${config.isolation.homeBase}`]);
      const cfg = mounts(svc(n)).find((m) => m.target === '/etc/tmuxgate/config.yaml')!;
      expect(cfg).toMatchObject({ source: `./config.${n}.yaml`, read_only: true });
    }
    expect(mounts(svc('init')).find((m) => m.target === config.paths.keysDir)!.read_only ?? false).toBe(false);
    // The keys never go to the database or a named volume: nothing else mounts the keys dir.
    for (const [name, s] of Object.entries(compose.services)) {
      if (!['node-a', 'node-b', 'init'].includes(name)) expect(JSON.stringify(s.volumes ?? [])).not.toContain('keys');
    }
  });

  it('the nodes read the database URL from a secret, the store is PostgreSQL, and no secret is committed', () => {
    expect(config.store).toMatchObject({ kind: 'postgres', urlFile: '/etc/tmuxgate/pg_url' });
    expect(config.store.url).toBeUndefined();
    for (const n of nodes) expect(svc(n).secrets).toEqual([{ source: 'pg_url', target: config.store.urlFile }]);
    expect(svc('postgres').secrets).toEqual(['pg_password']);
    for (const s of Object.values(compose.secrets)) expect(s.file).toMatch(/^\.\/secrets\//);
    expect(readFileSync(path.join(deploy, 'secrets/.gitignore'), 'utf8')).toMatch(/^\*$/m);
  });

  it('only HAProxy is published, and the nodes trust PROXY headers from its address alone', () => {
    expect(svc('haproxy').ports).toEqual(['2222:22']);
    for (const n of [...nodes, 'postgres']) expect(svc(n).ports).toBeUndefined();
    expect(config.listen.proxyProtocol?.trustedFrom).toEqual([`${address(svc('haproxy'))}/32`]);
  });

  it('the nodes keep the single-node isolation settings: root with the same capabilities, and what the link needs', () => {
    const one = single.services.tmuxgate!;
    for (const n of nodes) {
      expect(svc(n).cap_drop).toEqual(one.cap_drop);
      // NET_BIND_SERVICE: the link connects from a port below 1024, which no user in the container may bind.
      expect([...svc(n).cap_add!].sort()).toEqual([...one.cap_add!, 'NET_BIND_SERVICE'].sort());
      expect(Number(svc(n).sysctls?.['net.ipv4.ip_unprivileged_port_start'])).toBe(1024);
    }
    expect(config.isolation.pairAccounts).toBe(true);
  });
});

describe('deploy/config.node-*.yaml: each node of the compose cluster is a cluster node', () => {
  it('each has its own id and a link at its compose address, the others the same settings', () => {
    const [a, b] = nodes.map(configOf);
    for (const [n, c] of [
      ['node-a', a!],
      ['node-b', b!],
    ] as const) {
      expect(c.cluster).toMatchObject({ nodeId: n, linkSourcePorts: 'root', link: { listen: '0.0.0.0:7022', advertise: `${address(svc(n))}:7022` } });
      expect(svc(n).hostname).toBe(n);
    }
    const { cluster: _a, hash: _ha, paths: _pa, ...restA } = a!;
    const { cluster: _b, hash: _hb, paths: _pb, ...restB } = b!;
    expect(restB).toEqual(restA);
  });
});

describe('deploy/haproxy.cfg serves the compose cluster', () => {
  it('is the file HAProxy mounts, and sends PROXY v2 with health checks to both nodes at their addresses', () => {
    const m = mounts(svc('haproxy')).find((x) => x.target === '/usr/local/etc/haproxy/haproxy.cfg')!;
    expect(m).toMatchObject({ source: './haproxy.cfg', read_only: true });
    const opts = backendOptions(haproxyCfg, 'tmuxgate');
    expect(opts).toContain('option tcp-check');
    expect(opts).toContain('tcp-check expect string SSH-2.0-tmuxgate');
    expect(opts.find((l) => l.startsWith('default-server'))).toMatch(/\bsend-proxy-v2\b.*\bcheck\b/);
    const servers = [...haproxyCfg.matchAll(/^\s+server (\S+) (\S+)(.*)$/gm)].map(([, name, addr, rest]) => ({ name, addr, rest: rest!.trim() }));
    expect(servers).toEqual(nodes.map((n) => ({ name: n, addr: `${address(svc(n))}:${config.listen.port}`, rest: '' })));
  });
});
