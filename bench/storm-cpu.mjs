#!/usr/bin/env node
// Where a login storm's CPU goes, per side, in one run: a storm of N logins at once through the
// gateway (pair accounts on) and through sshd + tmux, each side's processes in a cpuacct cgroup
// (v1) of its own: the server side (the gateway or sshd, and every process they start: tmux
// servers and clients, shells) and the client side (this process and its `ssh` clients).
// Usage: sudo node bench/storm-cpu.mjs [--storm N]
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { Gateway, Sshd, ensureAccount, pct } from './lib.mjs';

const stormArg = process.argv.indexOf('--storm');
const STORM = stormArg > 0 ? Number(process.argv[stormArg + 1]) : 50;
const CG = '/sys/fs/cgroup/cpuacct';
const groups = ['gw', 'gwcli', 'sshd', 'sshdcli'].map((g) => `${CG}/tgstorm-${process.pid}-${g}`);
const [gwG, gwCliG, sshdG, sshdCliG] = groups;
for (const g of groups) mkdirSync(g);
const join = (g, pid) => writeFileSync(`${g}/cgroup.procs`, String(pid));
const usageMs = (g) => Number(readFileSync(`${g}/cpuacct.usage`, 'utf8')) / 1e6;

ensureAccount();
const gw = new Gateway(STORM + 2);
const sshd = new Sshd();
try {
  await gw.start();
  await sshd.start();
  join(gwG, gw.proc.pid);
  join(sshdG, sshd.proc.pid);
  await gw.login(STORM).then((c) => c.p.kill()); // warm: first-login costs out of the storm
  await sshd.login(STORM).then((c) => c.p.kill());
  const storm = async (side, g, cli) => {
    join(cli, process.pid);
    const before = { srv: usageMs(g), cli: usageMs(cli), gwMs: gw.cpuMs() };
    const t0 = performance.now();
    const ms = await Promise.all(Array.from({ length: STORM }, async (_, i) => {
      const t = performance.now();
      const c = side === 'gw' ? await gw.login(i) : await sshd.login(6000 + i);
      const d = performance.now() - t;
      c.p.kill();
      return d;
    }));
    const wall = performance.now() - t0;
    const srv = usageMs(g) - before.srv;
    const cliMs = usageMs(cli) - before.cli;
    join(CG, process.pid);
    const node = side === 'gw' ? ` (gateway process ${((gw.cpuMs() - before.gwMs) / STORM).toFixed(1)})` : '';
    console.log(`${side === 'gw' ? 'tmuxgate' : 'sshd+tmux'}: storm of ${STORM} p50 ${pct(ms, 50).toFixed(0)} ms, p99 ${pct(ms, 99).toFixed(0)} ms, all done ${wall.toFixed(0)} ms; CPU per login: server side ${(srv / STORM).toFixed(1)} ms${node}, client side ${(cliMs / STORM).toFixed(1)} ms`);
    await new Promise((r) => setTimeout(r, 3000)); // the sessions close and seal
  };
  await storm('gw', gwG, gwCliG);
  await storm('sshd', sshdG, sshdCliG);
} finally {
  join(CG, process.pid);
  gw.stop();
  sshd.stop();
  await new Promise((r) => setTimeout(r, 1000));
  for (const g of groups) {
    for (const p of readFileSync(`${g}/cgroup.procs`, 'utf8').split('\n').filter(Boolean)) try { join(CG, p); } catch {}
    try { rmdirSync(g); } catch {}
  }
}
