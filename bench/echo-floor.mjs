#!/usr/bin/env node
// The floor of keystroke echo for a Node server on this machine (issue 16): key -> echo round trips
// through the same tmux (same tmux.conf, `cat` in a /bin/sh pane, run as tgbench) behind
//   sshd         OpenSSH's sshd (C, a process per connection)
//   gateway      tmuxgate (recording on, as bench/load.mjs runs it)
//   node-ssh2    a minimal Node server: the patched ssh2 with the gateway's algorithms, a pty per
//                shell, bytes copied both ways (fs.writeSync to the pty master, as the gateway does);
//                no session, recorder, store or log code
//   node-ssh2-link  the same minimal server, but the pty is held by a second such process behind an
//                ssh2 link (an exec channel with a pty, the allow-list's first cipher), as a cluster's
//                relayed session crosses the node link: the floor of that second hop (not in the default set)
//   node-tls-link  the same, the link mutual TLS 1.3 (node:tls) instead of SSH (not in the default set)
//   node-tcp     a minimal Node relay: plain TCP <-> pty, no SSH
//   c-tcp        the same relay in C (bench/echo-relay.c: poll, read/write, a process per connection)
// The SSH variants run with aes128-gcm (what ssh2's client picks first on a CPU with AES-NI, as in
// bench/load.mjs) and with chacha20-poly1305 (what the OpenSSH client picks first). The probes take
// turns key by key (one key on each, then the next round), so a background spike lands on all.
// The differences split the gateway's extra time over sshd (per cipher):
//   node-tcp - c-tcp                     Node's event loop and libuv's pty/TCP I/O
//   (node-ssh2 - node-tcp) - (sshd - c-tcp)  ssh2's packet handling and crypto, beyond sshd's
//   gateway - node-ssh2                  tmuxgate's own code on the path (session, recorder, ...)
// Also the server side's CPU per echo, less its CPU at rest (all threads of the Node processes;
// sshd's and the C relay's processes; tmux not counted anywhere).
// The Node and C relays run at the gateway's priority (nice -5, TG_BENCH_NICE), their tmux clients at 0.
// Usage: sudo node bench/echo-floor.mjs [--samples 300] [--runs 3] [--only v1,v2] [--no-append]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
};

// ---- relay mode: `node echo-floor.mjs --relay tcp|ssh <uid> <gid> <hostkey|-> <cipher|-> <program> [args...]`
if (process.argv[2] === '--relay') {
  const [kind, uid, gid, hostKey, cipher, file, ...args] = process.argv.slice(3);
  const pty = await import('node-pty');
  // At the gateway's priority (nice -5 by default, its children back at the start priority), as it runs.
  const { raiseGatewayPriority, atUserPriority } = await import(path.join(ROOT, 'dist/platform/priority.js'));
  raiseGatewayPriority(Number(process.env.TG_BENCH_NICE ?? -5));
  // As the account, through the static tg-spawn-as, as the gateway starts its clients (the patched
  // node-pty refuses uid/gid of its own).
  const { spawnAsArgv } = await import(path.join(ROOT, 'dist/platform/pty.js'));
  const as = spawnAsArgv({ uid: Number(uid), gid: Number(gid), nproc: null }, file, args);
  const spawnPty = () => {
    const p = atUserPriority(() =>
      pty.spawn(as.file, as.args, {
        name: 'xterm-256color',
        cols: 120,
        rows: 40,
        cwd: '/',
        encoding: null,
        env: { PATH: '/usr/bin:/bin', TERM: 'xterm-256color', HOME: '/' },
      }),
    );
    const fd = p._fd;
    // As the gateway's directWriter: straight to the non-blocking master, node-pty's queue for the rest.
    const write = (d) => {
      try {
        const n = writeSync(fd, d);
        if (n < d.length) p.write(d.subarray(n));
      } catch {
        p.write(d);
      }
    };
    return { p, write };
  };
  const tlsFiles = () => {
    const [key, cert] = (process.env.TG_FLOOR_TLS ?? '').split(',');
    return key ? { key: readFileSync(key), cert: readFileSync(cert), ca: readFileSync(cert) } : {};
  };
  if (kind === 'tcp' || kind === 'tls-owner') {
    // tls-owner: the same relay behind mutual TLS (TG_FLOOR_TLS: key and cert files; the peer must present that cert).
    const onSock = (sock) => {
      const { p, write } = spawnPty();
      sock.on('data', write);
      p.onData((d) => sock.write(d));
      sock.on('close', () => p.kill('SIGHUP'));
      sock.on('error', () => {});
      p.onExit(() => sock.destroy());
    };
    const srv =
      kind === 'tcp'
        ? net.createServer({ noDelay: true }, onSock)
        : (await import('node:tls')).createServer({ ...tlsFiles(), requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3', noDelay: true }, onSock);
    srv.listen(0, '127.0.0.1', () => console.log(`listening on ${srv.address().port}`));
  } else {
    // ssh: a minimal ssh2 server with a pty per shell. ssh-front / ssh-owner: the same server,
    // but its shell is a channel to a second such process (ssh-owner, at TG_FLOOR_OWNER_PORT) that
    // holds the pty: the shape of the gateway's node link (ssh2 client to ssh2 server, an exec
    // request with a pty, the link's own cipher choice: the allow-list's first), with none of its code.
    const ssh2 = (await import('ssh2')).default;
    const { effectiveAlgorithms, ssh2Algorithms } = await import(path.join(ROOT, 'dist/crypto/algorithms.js'));
    const algorithms = ssh2Algorithms(effectiveAlgorithms(cipher === '-' ? {} : { cipher: [cipher] }));
    const linkAlgorithms = ssh2Algorithms(effectiveAlgorithms({}));
    let link = null;
    const viaTls = kind === 'ssh-front' && process.env.TG_FLOOR_LINK === 'tls';
    if (kind === 'ssh-front' && !viaTls) {
      link = await new Promise((resolve, reject) => {
        const c = new ssh2.Client();
        c.on('ready', () => resolve(c)).on('error', reject);
        c.connect({
          host: '127.0.0.1',
          port: Number(process.env.TG_FLOOR_OWNER_PORT),
          username: 'node',
          password: '-',
          algorithms: linkAlgorithms,
          hostVerifier: () => true,
        });
        c.setNoDelay(true);
      });
    }
    const srv = new ssh2.Server({ hostKeys: [readFileSync(hostKey)], algorithms: kind === 'ssh-owner' ? linkAlgorithms : algorithms }, (client) => {
      client.setNoDelay(true);
      client.on('error', () => {});
      client.on('authentication', (ctx) => ctx.accept());
      client.on('ready', () =>
        client.on('session', (accept) => {
          const s = accept();
          s.on('pty', (ok) => ok?.());
          const attach = (ch) => {
            if (viaTls) {
              import('node:tls').then(({ connect }) => {
                const remote = connect({
                  host: '127.0.0.1',
                  port: Number(process.env.TG_FLOOR_OWNER_PORT),
                  ...tlsFiles(),
                  minVersion: 'TLSv1.3',
                  checkServerIdentity: () => undefined,
                });
                remote.setNoDelay(true);
                remote.on('error', () => ch.close());
                ch.on('data', (d) => remote.write(d));
                remote.on('data', (d) => ch.write(d));
                ch.on('close', () => remote.destroy());
                remote.on('close', () => ch.close());
              });
              return;
            }
            if (link) {
              link.exec('attach', { pty: { term: 'xterm-256color', cols: 120, rows: 40, width: 0, height: 0, modes: {} } }, (err, remote) => {
                if (err) return ch.close();
                ch.on('data', (d) => remote.write(d));
                remote.on('data', (d) => ch.write(d));
                ch.on('close', () => remote.close());
                remote.on('close', () => ch.close());
              });
              return;
            }
            const { p, write } = spawnPty();
            ch.on('data', write);
            p.onData((d) => ch.write(d));
            ch.on('close', () => p.kill('SIGHUP'));
            p.onExit(() => ch.close());
          };
          s.on('shell', (ok) => attach(ok()));
          s.on('exec', (ok) => attach(ok()));
        }),
      );
    });
    srv.listen(0, '127.0.0.1', () => console.log(`listening on ${srv.address().port}`));
  }
} else await driver();

async function driver() {
  const { Gateway, Sshd, ensureAccount, pct, waitFor, echoOnce, sshShell, ACCOUNT } = await import('./lib.mjs');
  const { totpCode } = await import(path.join(ROOT, 'dist/auth/totp.js'));
  const samples = Number(arg('--samples', '300'));
  const runs = Number(arg('--runs', '3'));
  const CIPHERS = { aes: 'aes128-gcm@openssh.com', chacha: 'chacha20-poly1305@openssh.com' };
  const all = ['sshd/aes', 'sshd/chacha', 'gateway/aes', 'gateway/chacha', 'node-ssh2/aes', 'node-ssh2/chacha', 'node-tcp', 'c-tcp'];
  const only = arg('--only', null)?.split(',') ?? all;
  const PROMPT = /\[sshd\+bench\][\s\S]*\$ /;
  ensureAccount();
  const uid = Number(execFileSync('id', ['-u', ACCOUNT], { encoding: 'utf8' }));
  const gid = Number(execFileSync('id', ['-g', ACCOUNT], { encoding: 'utf8' }));
  const dir = mkdtempSync('/tmp/tgf-');
  chmodSync(dir, 0o755);
  const sockDir = path.join(dir, 'tmux');
  mkdirSync(sockDir);
  chmodSync(sockDir, 0o777);
  const cleanup = [];
  const children = [];

  /** CPU time in ns of the given pids, all threads; a pid that has gone counts 0. */
  const cpuNs = (pids) => {
    let ns = 0;
    for (const pid of pids) {
      try {
        for (const t of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        /* gone */
      }
    }
    return ns;
  };
  const descendants = (pid) => {
    const out = [];
    const walk = (p) => {
      for (const t of (() => {
        try {
          return readdirSync(`/proc/${p}/task`);
        } catch {
          return [];
        }
      })()) {
        for (const c of readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').split(' ').filter(Boolean)) {
          out.push(Number(c));
          walk(Number(c));
        }
      }
    };
    walk(pid);
    return out;
  };
  const comm = (pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      return '';
    }
  };

  const startRelay = async (cmd, args, env = {}) => {
    const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
    children.push(proc);
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    const m = await waitFor(() => /listening on (\d+)/.exec(out), `${cmd} listening`, 20_000);
    return { proc, port: Number(m[1]) };
  };
  const tcpProbe = (port) =>
    new Promise((resolve, reject) => {
      const sock = net.connect({ port, host: '127.0.0.1', noDelay: true });
      const probe = { ch: sock, data: '', onData: null };
      sock.on('data', (d) => {
        probe.onData?.(d);
        probe.data += d.toString('latin1');
        if (probe.data.length > 200_000) probe.data = probe.data.slice(-100_000);
      });
      sock.on('error', reject);
      sock.on('connect', () => resolve(probe));
    });

  const variants = [];
  try {
    // One sshd per cipher: its processes for the probe's connection are the sshd children.
    const sshds = {};
    const tmuxArgs = (name, conf) => ['-S', path.join(sockDir, name), '-f', conf, 'new-session', '-A', '-s', 'main'];
    /** An in-process ssh2 client on `port` with cipher `c`, once its shell's prompt is up. */
    const sshProbe = async (port, c, v) => {
      const probe = await sshShell({ port, username: ACCOUNT, key: readFileSync(path.join((await confSshd).dir, 'id')), code: () => '', cipher: CIPHERS[c] });
      await waitFor(() => PROMPT.test(probe.data), `${v} prompt`, 60_000);
      return probe;
    };
    for (const v of only) {
      const [kind, c] = v.split('/');
      const cipher = CIPHERS[c];
      if (kind === 'sshd') {
        const sshd = new Sshd();
        cleanup.push(() => sshd.stop());
        await sshd.start();
        sshds[v] = sshd;
        const probe = await sshShell({
          port: sshd.port,
          username: ACCOUNT,
          key: readFileSync(path.join(sshd.dir, 'id')),
          code: () => '',
          command: `tmux -S ${sshd.sock}/p -f ${sshd.conf} new-session -A -s main`,
          cipher,
        });
        await waitFor(() => PROMPT.test(probe.data), 'sshd prompt', 60_000);
        variants.push({ name: v, probe, pids: () => descendants(sshd.proc.pid).filter((p) => comm(p) === 'sshd') });
      } else if (kind === 'gateway') {
        const gw = new Gateway(1, '', undefined, { pairs: false });
        cleanup.push(() => gw.stop());
        await gw.start();
        const probe = await sshShell({
          port: gw.port,
          username: 'u0',
          key: readFileSync(path.join(gw.dir, 'id_u0')),
          code: () => totpCode(gw.secrets[0], Date.now() + 30_000),
          cipher,
        });
        await waitFor(() => /tmuxgate[\s\S]*\$ /.test(probe.data), 'gateway prompt', 60_000);
        variants.push({ name: v, probe, pids: () => [gw.proc.pid] });
      }
    }
    // The relays reuse an sshd's tmux.conf (the gateway's, with sshd's status tag), in their own socket.
    const confSshd =
      Object.values(sshds)[0] ??
      (() => {
        const s = new Sshd();
        cleanup.push(() => s.stop());
        return s.start().then(() => s);
      })();
    const conf = (await confSshd).conf;
    const tmux = execFileSync('sh', ['-c', 'command -v tmux'], { encoding: 'utf8' }).trim();
    /** This script as a Node relay (`ssh`, `ssh-owner`, `ssh-front` or `tcp`) in front of its own tmux server `name`. */
    const nodeRelay = (mode, hostKey, cipher, name, env = {}) =>
      startRelay(
        process.execPath,
        [new URL(import.meta.url).pathname, '--relay', mode, String(uid), String(gid), hostKey, cipher, tmux, ...tmuxArgs(name, conf)],
        env,
      );
    for (const v of only) {
      const [kind, c] = v.split('/');
      if (kind === 'node-ssh2') {
        const hk = path.join(dir, `host-${c}`);
        execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hk]);
        const r = await nodeRelay('ssh', hk, CIPHERS[c], `n-${c}`);
        const probe = await sshProbe(r.port, c, v);
        variants.push({ name: v, probe, pids: () => [r.proc.pid] });
      } else if (kind === 'node-ssh2-link') {
        const hk = path.join(dir, `host-link-${c}`);
        execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hk]);
        const owner = await nodeRelay('ssh-owner', hk, '-', `l-${c}`);
        const front = await nodeRelay('ssh-front', hk, CIPHERS[c], `l-${c}-unused`, { TG_FLOOR_OWNER_PORT: String(owner.port) });
        const probe = await sshProbe(front.port, c, v);
        variants.push({ name: v, probe, pids: () => [front.proc.pid, owner.proc.pid] });
      } else if (kind === 'node-tls-link') {
        const hk = path.join(dir, `host-tls-${c}`);
        execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hk]);
        const [key, cert] = [path.join(dir, 'tls.key'), path.join(dir, 'tls.crt')];
        execFileSync('openssl', ['req', '-x509', '-newkey', 'ed25519', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=node'], {
          stdio: 'ignore',
        });
        const env = { TG_FLOOR_TLS: `${key},${cert}` };
        const owner = await nodeRelay('tls-owner', '-', '-', `tl-${c}`, env);
        const front = await nodeRelay('ssh-front', hk, CIPHERS[c], `tl-${c}-unused`, { ...env, TG_FLOOR_LINK: 'tls', TG_FLOOR_OWNER_PORT: String(owner.port) });
        const probe = await sshProbe(front.port, c, v);
        variants.push({ name: v, probe, pids: () => [front.proc.pid, owner.proc.pid] });
      } else if (kind === 'node-tcp') {
        const r = await nodeRelay('tcp', '-', '-', 't');
        const probe = await tcpProbe(r.port);
        await waitFor(() => PROMPT.test(probe.data), `${v} prompt`, 60_000);
        variants.push({ name: v, probe, pids: () => [r.proc.pid] });
      } else if (kind === 'c-tcp') {
        const bin = path.join(dir, 'echo-relay');
        execFileSync('cc', ['-O2', '-o', bin, path.join(ROOT, 'bench/echo-relay.c'), '-lutil']);
        const r = await startRelay(bin, ['0', String(uid), String(gid), tmux, ...tmuxArgs('c', conf)]);
        const probe = await tcpProbe(r.port);
        await waitFor(() => PROMPT.test(probe.data), `${v} prompt`, 60_000);
        variants.push({ name: v, probe, pids: () => [r.proc.pid, ...descendants(r.proc.pid).filter((p) => comm(p) === 'echo-relay')] });
      }
    }

    for (const v of variants) v.probe.ch.write('cat\r');
    await new Promise((r) => setTimeout(r, 500));
    const letters = 'abcdefghijklmnopqrstuvwxyz';
    // Warm-up, not counted: the JIT's first compilations of each server's echo path.
    for (let i = 0; i < 50; i++) for (const v of variants) await echoOnce(v.probe, letters[i % 26]);
    // Each server's CPU at rest (timers, the recorder's flushes), subtracted from the per-echo figure.
    const idle0 = variants.map((v) => cpuNs(v.pids()));
    await new Promise((r) => setTimeout(r, 3000));
    const idleRate = variants.map((v, k) => (cpuNs(v.pids()) - idle0[k]) / 3000); // ns per ms
    const perRun = [];
    for (let run = 0; run < runs; run++) {
      const lat = variants.map(() => []);
      const cpu0 = variants.map((v) => cpuNs(v.pids()));
      const t0 = performance.now();
      for (let i = 0; i < samples; i++) {
        const ch = letters[i % 26];
        for (const [k, v] of variants.entries()) {
          lat[k].push(await echoOnce(v.probe, ch));
          await new Promise((r) => setTimeout(r, 10 + Math.random() * 20));
        }
      }
      const ms = performance.now() - t0;
      const cpu = variants.map((v, k) => (cpuNs(v.pids()) - cpu0[k] - idleRate[k] * ms) / 1000 / samples);
      perRun.push(variants.map((v, k) => ({ p50: pct(lat[k], 50), p99: pct(lat[k], 99), cpu: cpu[k] })));
      console.log(
        `run ${run + 1}: ` +
          variants
            .map((v, k) => `${v.name} ${perRun[run][k].p50.toFixed(3)}/${perRun[run][k].p99.toFixed(2)} ms ${perRun[run][k].cpu.toFixed(0)} us`)
            .join(', '),
      );
    }
    const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const res = Object.fromEntries(
      variants.map((v, k) => [v.name, { p50: med(perRun.map((r) => r[k].p50)), p99: med(perRun.map((r) => r[k].p99)), cpu: med(perRun.map((r) => r[k].cpu)) }]),
    );
    const lines = [
      `## ${new Date().toISOString().slice(0, 10)} echo floor (\`bench/echo-floor.mjs\`) on ${os.cpus().length} x ${os.cpus()[0].model.split(' ').slice(0, 2).join(' ')}, node ${process.version}, load average ${os
        .loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')} at the end`,
      '',
      `Quiet machine, \`cat\` in tmux behind each server, ${samples} keys per variant per run, medians of ${runs} runs (each run's p50 and p99).`,
      '',
      '| server | echo p50 | echo p99 | server CPU per echo (less its CPU at rest) |',
      '| --- | --- | --- | --- |',
      ...Object.entries(res).map(([n, r]) => `| ${n} | ${r.p50.toFixed(3)} ms | ${r.p99.toFixed(2)} ms | ${r.cpu.toFixed(0)} us |`),
    ];
    for (const c of Object.keys(CIPHERS)) {
      const g = res[`gateway/${c}`];
      const s = res[`sshd/${c}`];
      const n = res[`node-ssh2/${c}`];
      const t = res['node-tcp'];
      const ct = res['c-tcp'];
      if (!g || !s || !n || !t || !ct) continue;
      const us = (x) => `${(1000 * x).toFixed(0)} us`;
      lines.push(
        '',
        `${c}: gateway - sshd = ${us(g.p50 - s.p50)} at p50, of which Node's event loop + libuv I/O (node-tcp - c-tcp) ${us(t.p50 - ct.p50)}, ssh2 beyond sshd ((node-ssh2 - node-tcp) - (sshd - c-tcp)) ${us(n.p50 - t.p50 - (s.p50 - ct.p50))}, tmuxgate's code (gateway - node-ssh2) ${us(g.p50 - n.p50)}; the minimal Node ssh2 server is ${(n.p50 / s.p50).toFixed(2)}x sshd at p50, ${(n.p99 / s.p99).toFixed(2)}x at p99.`,
      );
    }
    const text = lines.join('\n') + '\n';
    console.log('\n' + text);
    if (!process.argv.includes('--no-append')) appendFileSync(path.join(ROOT, 'bench/RESULTS.md'), '\n' + text);
    for (const v of variants) v.probe.ch.end?.();
  } finally {
    for (const v of variants) (v.probe.c ?? v.probe.ch).end?.();
    for (const c of children) c.kill('SIGTERM');
    for (const f of readdirSync(sockDir)) spawnSync('tmux', ['-S', path.join(sockDir, f), 'kill-server'], { stdio: 'ignore' });
    for (const f of cleanup.reverse()) await f();
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
}
