import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

/**
 * The gateway relies on patches to its dependencies (patches/, applied by patch-package at
 * install). A fresh `npm ci` that skipped them would still run, without the fixes: this fails.
 */
describe('dependency patches are applied', () => {
  it('every patch in patches/ names an installed package at its version', async () => {
    for (const f of readdirSync(path.join(ROOT, 'patches'))) {
      const m = /^(.+)\+(\d+\.\d+\.\d+)\.patch$/.exec(f);
      expect(m, f).not.toBeNull();
      const pkg = JSON.parse(readFileSync(path.join(ROOT, 'node_modules', m![1]!, 'package.json'), 'utf8')) as { version: string };
      expect(pkg.version, f).toBe(m![2]);
    }
  });

  it('ssh2: padding from a random pool, no SHA-1 or DSA in server-sig-algs, no PEM decoded per key exchange', async () => {
    const crypto = readFileSync(require.resolve('ssh2/lib/protocol/crypto.js'), 'utf8');
    expect(crypto).toContain('function fillPadding(');
    expect(crypto).not.toMatch(/randomFillSync\(packet, 5 \+ payloadLen, padLen\)/);
    const protocol = readFileSync(require.resolve('ssh2/lib/protocol/Protocol.js'), 'utf8');
    expect(protocol).toContain("'rsa-sha2-512,rsa-sha2-256'");
    // a host key signs with a KeyObject made once (not a PEM decoded per key exchange), and an X25519 key is imported raw
    expect(readFileSync(require.resolve('ssh2/lib/protocol/keyParser.js'), 'utf8')).toContain('this[SYM_PRIV_KEYOBJ] = key;');
    expect(readFileSync(require.resolve('ssh2/lib/protocol/kex.js'), 'utf8')).toContain(
      "key: { kty: 'OKP', crv: 'X25519', x: otherPublicKey.toString('base64url') },",
    );
  });

  it('node-pty: the master fd is close-on-exec and the child closes inherited fds', async () => {
    const src = readFileSync(path.join(ROOT, 'node_modules/node-pty/src/unix/pty.cc'), 'utf8');
    expect(src).toContain('FD_CLOEXEC');
    // and spawns without fork: posix_spawn does not copy the gateway's page tables (bench/README.md)
    expect(src).toContain('posix_spawn(&pid, argv[0], &actions, &attr, argv, env);');
    // and never starts a child as an account itself (the fork path's setuid keeps root's groups): the
    // gateway runs its static helper as the program instead (test/unit/pty.test.ts runs it)
    expect(src).toContain('node-pty does not start a child as an account');
    const built = require('node-pty/lib/unixTerminal.js') as { tgSpawnAs?: boolean; tgGroupsOf?: unknown };
    expect([built.tgSpawnAs, typeof built.tgGroupsOf]).toEqual([true, 'function']); // pty.node and build/Release/tg-spawn-as built
    const pty = require('node-pty') as typeof import('node-pty');
    expect(() => pty.spawn('/bin/true', [], { uid: 65534, gid: 65534 })).toThrow(/does not start a child as an account/);
  });
});
