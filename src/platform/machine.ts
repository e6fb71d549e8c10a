import { readFileSync } from 'node:fs';
import os from 'node:os';

/**
 * This machine's id, for what is per machine (OS accounts, a node's process): `configured`
 * (cluster.host) if set, else systemd's /etc/machine-id, else the host name. Two gateways on one
 * machine share it, and so share its accounts; a container needs its own or cluster.host.
 */
export function machineId(configured?: string, files = ['/etc/machine-id', '/var/lib/dbus/machine-id']): string {
  if (configured) return configured;
  for (const f of files) {
    try {
      const id = readFileSync(f, 'utf8').trim();
      if (/^[0-9a-f]{32}$/.test(id)) return id;
    } catch {
      // not there: the next
    }
  }
  return `host:${os.hostname()}`;
}

/** Whether a process with this pid runs on this machine (EPERM: it does, as another user). */
export function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
