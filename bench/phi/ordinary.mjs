// Ordinary operations output with no PHI in it, generated in the formats the real commands print
// (Debian 12 procps, coreutils, systemd, util-linux, iproute2, git, psql, kubectl, docker, aws):
// what an ops engineer's screen is full of. Addresses are the servers' own (private ranges, the
// default gateway's, a global IPv6 prefix of a server: that one IS masked by the default
// configuration, and counted); e-mail addresses are engineers' in git log (not PHI: counted
// when masked); account numbers are cloud account ids (not PHI: counted when masked).
import { rng } from './generate.mjs';

const pad = (n, w) => String(n).padStart(w, ' ');
const z = (n, w) => String(n).padStart(w, '0');
const USERS = ['root', 'postgres', 'www-data', 'deploy', 'syslog', 'messagebus', 'systemd+', 'nobody', '_chrony', 'redis'];
const CMDS = [
  '/sbin/init', '/usr/sbin/sshd -D', 'postgres: 15/main: checkpointer', 'postgres: 15/main: walwriter', '/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main',
  'nginx: worker process', 'nginx: master process /usr/sbin/nginx -g daemon on; master_process on;', '/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock',
  'node /opt/app/dist/server.js --port 8080', '/usr/sbin/cron -f', '/lib/systemd/systemd-journald', '/usr/sbin/rsyslogd -n -iNONE', 'redis-server 127.0.0.1:6379',
  '[kworker/1:2-events]', '[ksoftirqd/0]', '[rcu_preempt]', 'sshd: deploy@pts/0', '-bash', 'tmux new-session -A -s ops', 'python3 /opt/etl/run.py --batch 20261124',
  'java -Xmx2g -jar /opt/hl7/bridge.jar --config /etc/hl7/bridge.yml', '/usr/bin/containerd', 'vim /etc/nginx/sites-enabled/default',
];
const HOSTS = ['db-01', 'app-02', 'etl-01', 'bastion', 'web-03'];
const SHA = (r, n = 40) => Array.from({ length: n }, () => '0123456789abcdef'[r.int(0, 15)]).join('');
const ip10 = (r) => `10.${r.int(0, 40)}.${r.int(0, 255)}.${r.int(1, 254)}`;
const time = (r) => `${z(r.int(0, 23), 2)}:${z(r.int(0, 59), 2)}:${z(r.int(0, 59), 2)}`;
const MON = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function ps(r) {
  const out = ['USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND'];
  for (let i = 0; i < 220; i++) {
    out.push(`${r.pick(USERS).padEnd(8)} ${pad(r.int(1, 4194304), 8)} ${pad((r.next() * 30).toFixed(1), 4)} ${pad((r.next() * 12).toFixed(1), 4)} ${pad(r.int(0, 9999999), 7)} ${pad(r.int(0, 2999999), 6)} ${r.pick(['?', 'pts/0', 'pts/1', 'tty1']).padEnd(8)} ${r.pick(['Ss', 'S', 'Sl', 'R+', 'I<', 'S<s', 'Ssl'])}`.padEnd(67) + `${r.pick(['Nov23', '10:02', '09:41', '2025'])} ${pad(`${r.int(0, 300)}:${z(r.int(0, 59), 2)}`, 6)} ${r.pick(CMDS)}`);
  }
  return out;
}

function df(r) {
  const out = ['Filesystem      Size  Used Avail Use% Mounted on'];
  const fs = ['udev', 'tmpfs', '/dev/nvme0n1p1', '/dev/nvme0n1p2', '/dev/mapper/vg0-data', 'overlay', 'shm', '/dev/sdb1', '10.20.0.15:/export/backup'];
  const mnt = ['/dev', '/run', '/', '/boot/efi', '/var/lib/postgresql', '/var/lib/docker/overlay2/' + SHA(r, 64) + '/merged', '/dev/shm', '/mnt/archive', '/mnt/backup'];
  for (let i = 0; i < 60; i++) out.push(`${r.pick(fs).padEnd(15)} ${pad(`${r.int(1, 999)}${r.pick(['G', 'M', 'K', 'T'])}`, 5)} ${pad(`${r.int(0, 999)}${r.pick(['G', 'M', 'K'])}`, 5)} ${pad(`${r.int(0, 999)}${r.pick(['G', 'M'])}`, 5)} ${pad(`${r.int(0, 100)}%`, 4)} ${r.pick(mnt)}`);
  out.push('', 'Filesystem       Inodes  IUsed    IFree IUse% Mounted on');
  for (let i = 0; i < 30; i++) out.push(`${r.pick(fs).padEnd(16)} ${pad(r.int(1000, 99999999), 8)} ${pad(r.int(0, 9999999), 7)} ${pad(r.int(1000, 99999999), 8)} ${pad(`${r.int(0, 100)}%`, 5)} ${r.pick(mnt)}`);
  return out;
}

function top(r) {
  const out = [];
  for (let k = 0; k < 4; k++) {
    out.push(
      `top - ${time(r)} up ${r.int(1, 400)} days, ${r.int(0, 23)}:${z(r.int(0, 59), 2)},  ${r.int(0, 9)} users,  load average: ${r.next().toFixed(2)}, ${r.next().toFixed(2)}, ${r.next().toFixed(2)}`,
      `Tasks: ${r.int(100, 400)} total,   ${r.int(0, 5)} running, ${r.int(100, 300)} sleeping,   0 stopped,   0 zombie`,
      `%Cpu(s):  ${(r.next() * 20).toFixed(1)} us,  ${(r.next() * 5).toFixed(1)} sy,  0.0 ni, ${(80 + r.next() * 19).toFixed(1)} id,  0.1 wa,  0.0 hi,  0.1 si,  0.0 st`,
      `MiB Mem :  ${(r.next() * 64000).toFixed(1)} total,   ${(r.next() * 9000).toFixed(1)} free,  ${(r.next() * 30000).toFixed(1)} used,  ${(r.next() * 20000).toFixed(1)} buff/cache`,
      `MiB Swap:   ${(r.next() * 4096).toFixed(1)} total,   ${(r.next() * 4096).toFixed(1)} free,      0.0 used.  ${(r.next() * 40000).toFixed(1)} avail Mem`,
      '',
      '    PID USER      PR  NI    VIRT    RES    SHR S  %CPU  %MEM     TIME+ COMMAND',
    );
    for (let i = 0; i < 40; i++) {
      out.push(`${pad(r.int(1, 4194304), 7)} ${r.pick(USERS).padEnd(9)} ${pad(r.pick(['20', 'rt', '0', '-51']), 3)} ${pad(r.pick([0, -20, 5]), 3)} ${pad(`${r.int(0, 99999)}${r.pick(['', 'm', 'g'])}`, 7)} ${pad(r.int(0, 999999), 6)} ${pad(r.int(0, 99999), 6)} ${r.pick(['S', 'R', 'I', 'D'])} ${pad((r.next() * 99).toFixed(1), 5)} ${pad((r.next() * 20).toFixed(1), 5)} ${pad(`${r.int(0, 999)}:${z(r.int(0, 59), 2)}.${z(r.int(0, 99), 2)}`, 9)} ${r.pick(CMDS).split(' ')[0].split('/').pop()}`);
    }
    out.push('');
  }
  return out;
}

function journal(r) {
  const out = [];
  for (let i = 0; i < 600; i++) {
    const host = r.pick(HOSTS);
    const head = `${r.pick(MON)} ${pad(r.int(1, 28), 2)} ${time(r)} ${host}`;
    out.push(
      r.pick([
        () => `${head} sshd[${r.int(1000, 99999)}]: Accepted publickey for ${r.pick(['deploy', 'ops', 'root'])} from ${ip10(r)} port ${r.int(1024, 65535)} ssh2: ED25519 SHA256:${Buffer.from(SHA(r, 64), 'hex').toString('base64').slice(0, 43)}`,
        () => `${head} sshd[${r.int(1000, 99999)}]: pam_unix(sshd:session): session opened for user ${r.pick(['deploy', 'ops'])}(uid=${r.int(1000, 1010)}) by (uid=0)`,
        () => `${head} systemd[1]: Started session-${r.int(1, 9999)}.scope - Session ${r.int(1, 9999)} of User ${r.pick(['deploy', 'ops'])}.`,
        () => `${head} systemd[1]: Started getty@tty1.service - Getty on tty1.`,
        () => `${head} systemd[${r.int(1000, 9999)}]: Reached target default.target - Main User Target.`,
        () => `${head} CRON[${r.int(1000, 99999)}]: (root) CMD (   cd / && run-parts --report /etc/cron.hourly)`,
        () => `${head} kernel: [${pad((r.next() * 99999).toFixed(6), 12)}] EXT4-fs (nvme0n1p2): mounted filesystem ${SHA(r, 8)}-${SHA(r, 4)}-${SHA(r, 4)}-${SHA(r, 4)}-${SHA(r, 12)} r/w with ordered data mode.`,
        () => `${head} postgres[${r.int(1000, 99999)}]: [${r.int(1, 9)}-1] ${r.int(2024, 2026)}-${z(r.int(1, 12), 2)}-${z(r.int(1, 28), 2)} ${time(r)}.${r.int(100, 999)} UTC [${r.int(1000, 99999)}] LOG:  checkpoint complete: wrote ${r.int(1, 9999)} buffers (${(r.next() * 10).toFixed(1)}%); 0 WAL file(s) added, 0 removed, ${r.int(0, 9)} recycled; write=${(r.next() * 300).toFixed(3)} s, sync=0.00${r.int(1, 9)} s, total=${(r.next() * 300).toFixed(3)} s`,
        () => `${head} nginx[${r.int(1000, 9999)}]: ${ip10(r)} - - [${z(r.int(1, 28), 2)}/${r.pick(MON)}/2026:${time(r)} +0000] "GET /api/v1/${r.pick(['health', 'items', 'orders', 'metrics'])}/${r.int(1, 99999)} HTTP/1.1" ${r.pick([200, 204, 304, 404, 502])} ${r.int(0, 99999)} "-" "kube-probe/1.29"`,
        () => `${head} app[${r.int(1000, 9999)}]: {"level":30,"time":${Date.UTC(2026, 10, 24) + r.int(0, 86400000)},"pid":${r.int(1000, 9999)},"hostname":"${host}","reqId":"req-${r.int(1, 99999)}","res":{"statusCode":200},"responseTime":${(r.next() * 90).toFixed(3)},"msg":"request completed"}`,
        () => `${head} dockerd[${r.int(100, 9999)}]: time="2026-11-24T${time(r)}.${r.int(100000000, 999999999)}Z" level=info msg="ignoring event" container=${SHA(r, 64)} module=libcontainerd namespace=moby topic=/tasks/delete type="*events.TaskDelete"`,
        () => `${head} kernel: [UFW BLOCK] IN=eth0 OUT= MAC=${SHA(r, 2)}:${SHA(r, 2)}:${SHA(r, 2)}:${SHA(r, 2)}:${SHA(r, 2)}:${SHA(r, 2)}:${SHA(r, 2)}:${SHA(r, 2)}:${SHA(r, 2)}:${SHA(r, 2)}:${SHA(r, 2)}:${SHA(r, 2)}:08:00 SRC=${ip10(r)} DST=${ip10(r)} LEN=${r.int(40, 1500)} TOS=0x00 PREC=0x00 TTL=${r.int(30, 64)} ID=${r.int(1, 65535)} DF PROTO=TCP SPT=${r.int(1024, 65535)} DPT=${r.pick([22, 443, 5432])} WINDOW=${r.int(1000, 65535)} RES=0x00 SYN URGP=0`,
        () => `${head} chronyd[${r.int(100, 999)}]: Selected source ${ip10(r)} (ntp.internal)`,
        () => `${head} systemd-logind[${r.int(100, 999)}]: New session ${r.int(1, 9999)} of user ${r.pick(['deploy', 'ops'])}.`,
        () => `${head} etl[${r.int(1000, 9999)}]: batch 20261124-${z(r.int(1, 99), 2)} loaded ${r.int(1, 999999)} rows in ${(r.next() * 900).toFixed(1)} s (${r.int(1, 99999)} rows/s)`,
      ])(),
    );
  }
  return out;
}

function dmesg(r) {
  const out = [];
  let t = 0;
  for (let i = 0; i < 300; i++) {
    t += r.next() * 3;
    const ts = `[${pad(t.toFixed(6), 12)}]`;
    out.push(
      `${ts} ${r.pick([
        () => `BIOS-e820: [mem 0x${SHA(r, 16)}-0x${SHA(r, 16)}] ${r.pick(['usable', 'reserved', 'ACPI data'])}`,
        () => `ACPI: ${r.pick(['RSDP', 'XSDT', 'FACP', 'DSDT', 'APIC'])} 0x${SHA(r, 16).toUpperCase()} ${z(r.int(0, 999999), 6)} (v0${r.int(1, 6)} ${r.pick(['BOCHS ', 'INTEL ', 'AMAZON'])} ${r.pick(['BXPC    ', 'AMZNFACP'])} 0000000${r.int(1, 9)} ${r.pick(['BXPC', 'AMZN'])} 0000000${r.int(1, 9)})`,
        () => `pci 0000:00:${z(r.int(0, 31), 2)}.${r.int(0, 7)}: [${SHA(r, 4)}:${SHA(r, 4)}] type 00 class 0x${SHA(r, 6)}`,
        () => `usb 1-${r.int(1, 4)}: New USB device found, idVendor=${SHA(r, 4)}, idProduct=${SHA(r, 4)}, bcdDevice= ${r.int(0, 9)}.${z(r.int(0, 99), 2)}`,
        () => `usb 1-${r.int(1, 4)}: SerialNumber: ${SHA(r, 12).toUpperCase()}`,
        () => `EXT4-fs (nvme0n1p${r.int(1, 3)}): mounted filesystem ${SHA(r, 8)}-${SHA(r, 4)}-${SHA(r, 4)}-${SHA(r, 4)}-${SHA(r, 12)} ro with ordered data mode. Quota mode: none.`,
        () => `nvme nvme0: ${r.int(2, 8)}/0/0 default/read/poll queues`,
        () => `e1000e 0000:00:1f.6 eth0: NIC Link is Up ${r.pick([1000, 100])} Mbps Full Duplex, Flow Control: Rx/Tx`,
        () => `Memory: ${r.int(1000000, 64000000)}K/${r.int(1000000, 67000000)}K available (${r.int(10000, 20000)}K kernel code, ${r.int(1000, 9999)}K rwdata, ${r.int(1000, 9999)}K rodata, ${r.int(1000, 9999)}K init, ${r.int(1000, 9999)}K bss, ${r.int(100000, 999999)}K reserved, 0K cma-reserved)`,
        () => `audit: type=1400 audit(${r.int(1700000000, 1790000000)}.${r.int(100, 999)}:${r.int(1, 999)}): apparmor="STATUS" operation="profile_load" profile="unconfined" name="/usr/bin/man" pid=${r.int(100, 9999)} comm="apparmor_parser"`,
        () => `Out of memory: Killed process ${r.int(1000, 99999)} (java) total-vm:${r.int(1000000, 9999999)}kB, anon-rss:${r.int(100000, 9999999)}kB, file-rss:0kB, shmem-rss:0kB, UID:${r.int(0, 1010)} pgtables:${r.int(1000, 99999)}kB oom_score_adj:0`,
        () => `clocksource: tsc: mask: 0xffffffffffffffff max_cycles: 0x${SHA(r, 11)}, max_idle_ns: ${r.int(100000000, 999999999999)} ns`,
        () => `random: crng init done`,
      ])()}`,
    );
  }
  return out;
}

function lsl(r) {
  const out = [];
  for (const dir of ['/etc', '/var/log', '/usr/bin', '/opt/app/releases']) {
    out.push(`${dir}:`, `total ${r.int(100, 99999)}`);
    for (let i = 0; i < 70; i++) {
      const name = r.pick([
        () => `${r.pick(['syslog', 'auth.log', 'kern.log', 'dpkg.log', 'nginx', 'postgresql-15-main.log'])}${r.pick(['', '.1', `.${r.int(2, 9)}.gz`])}`,
        () => `${r.pick(['app', 'etl', 'bridge'])}-${r.int(2024, 2026)}${z(r.int(1, 12), 2)}${z(r.int(1, 28), 2)}T${z(r.int(0, 23), 2)}${z(r.int(0, 59), 2)}${z(r.int(0, 59), 2)}Z.tar.gz`,
        () => r.pick(['passwd', 'group', 'hosts', 'resolv.conf', 'ssh', 'systemd', 'crontab', 'fstab', 'python3.11', 'x86_64-linux-gnu-gcc-12', 'journalctl', 'tmux']),
        () => `${SHA(r, 12)}.json`,
      ])();
      out.push(`${r.pick(['-rw-r--r--', 'drwxr-xr-x', '-rwxr-xr-x', 'lrwxrwxrwx', '-rw-r-----'])} ${pad(r.int(1, 40), 2)} ${r.pick(['root', 'syslog', 'postgres', 'deploy']).padEnd(8)} ${r.pick(['root', 'adm', 'postgres', 'deploy']).padEnd(8)} ${pad(r.int(0, 999999999), 9)} ${r.pick(MON)} ${pad(r.int(1, 28), 2)} ${r.pick([time(r).slice(0, 5), ' 2025', ' 2024'])} ${name}`);
    }
    out.push('');
  }
  return out;
}

function gitlog(r) {
  const names = ['Dana Whitfield <dana.whitfield@ops.example.com>', 'Sam Okoro <sam@ops.example.com>', 'renovate[bot] <29139614+renovate[bot]@users.noreply.github.com>', 'Li Wei <li.wei@ops.example.com>'];
  const subjects = ['fix: retry the HL7 bridge connection after 30 s', 'chore(deps): update node to v20.20.2', 'etl: load the 2026-11 batch in chunks of 5000', 'nginx: raise client_max_body_size to 20m', 'Revert "db: add index on orders(created_at)"', 'docs: runbook for the 03:00 backup job', 'ci: pin actions/checkout@v4'];
  const out = [];
  for (let i = 0; i < 120; i++) {
    out.push(`commit ${SHA(r)}`, `Author: ${r.pick(names)}`, `Date:   ${r.pick(['Mon', 'Tue', 'Wed', 'Thu', 'Fri'])} ${r.pick(MON)} ${r.int(1, 28)} ${time(r)} 2026 ${r.pick(['+0000', '+0100', '-0500'])}`, '', `    ${r.pick(subjects)}`, '');
    if (r.next() < 0.3) out.push(`    Reviewed-on: https://git.example.com/ops/infra/pulls/${r.int(100, 9999)}`, '');
  }
  return out;
}

function psql(r) {
  const out = [];
  out.push(' pid  | usename  | application_name |  client_addr  |         backend_start         | state  |              query', '------+----------+------------------+---------------+-------------------------------+--------+------------------------------------');
  for (let i = 0; i < 40; i++) out.push(` ${pad(r.int(1000, 99999), 4)} | ${r.pick(['app', 'etl', 'postgres', 'grafana']).padEnd(8)} | ${r.pick(['psql', 'node-postgres', 'pg_dump', '']).padEnd(16)} | ${ip10(r).padEnd(13)} | 2026-11-24 ${time(r)}.${r.int(100000, 999999)}+00 | ${r.pick(['active', 'idle']).padEnd(6)} | ${r.pick(['SELECT 1', 'COMMIT', 'SELECT * FROM orders WHERE id = $1', 'autovacuum: VACUUM public.audit_log'])}`);
  out.push(`(${40} rows)`, '');
  out.push('     relname      | seq_scan | seq_tup_read | idx_scan | n_live_tup | n_dead_tup |        last_autovacuum', '------------------+----------+--------------+----------+------------+------------+-------------------------------');
  for (let i = 0; i < 40; i++) out.push(` ${r.pick(['orders', 'order_items', 'audit_log', 'sessions', 'jobs', 'shipments', 'invoices']).padEnd(16)} | ${pad(r.int(0, 999999), 8)} | ${pad(r.int(0, 999999999), 12)} | ${pad(r.int(0, 99999999), 8)} | ${pad(r.int(0, 99999999), 10)} | ${pad(r.int(0, 999999), 10)} | 2026-11-${z(r.int(1, 24), 2)} ${time(r)}.${r.int(100000, 999999)}+00`);
  out.push('(40 rows)', '');
  out.push('                  List of relations', ' Schema |     Name      | Type  |  Owner   |  Size   ', '--------+---------------+-------+----------+---------');
  for (const t of ['orders', 'order_items', 'audit_log', 'sessions', 'jobs', 'shipments', 'invoices', 'schema_migrations']) out.push(` public | ${t.padEnd(13)} | table | app      | ${pad(`${r.int(8, 999)} ${r.pick(['kB', 'MB', 'GB'])}`, 7)}`);
  out.push('(8 rows)', '');
  out.push('  id   | order_no  |  amount  | currency |       created_at       | status', '-------+-----------+----------+----------+------------------------+---------');
  for (let i = 0; i < 50; i++) out.push(` ${pad(r.int(1, 99999), 5)} | SO-${r.int(100000, 999999)} | ${pad((r.next() * 9999).toFixed(2), 8)} | USD      | 2026-11-${z(r.int(1, 24), 2)} ${time(r)}+00 | ${r.pick(['paid', 'shipped', 'pending'])}`);
  out.push('(50 rows)');
  return out;
}

function net(r) {
  const out = [
    '1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000',
    '    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00',
    '    inet 127.0.0.1/8 scope host lo',
    '    inet6 ::1/128 scope host',
    '2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 9001 qdisc mq state UP group default qlen 1000',
    `    link/ether 0a:${SHA(r, 2)}:${SHA(r, 2)}:${SHA(r, 2)}:${SHA(r, 2)}:${SHA(r, 2)} brd ff:ff:ff:ff:ff:ff`,
    `    inet 10.20.3.14/24 brd 10.20.3.255 scope global dynamic eth0`,
    '       valid_lft 2847sec preferred_lft 2847sec',
    `    inet6 2a05:d018:${SHA(r, 3)}:${SHA(r, 4)}::14/64 scope global dynamic noprefixroute`,
    `    inet6 fe80::8${SHA(r, 2)}:${SHA(r, 2)}ff:fe${SHA(r, 2)}:${SHA(r, 4)}/64 scope link`,
    '3: docker0: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500 qdisc noqueue state DOWN group default',
    '    inet 172.17.0.1/16 brd 172.17.255.255 scope global docker0',
    '',
    'default via 10.20.3.1 dev eth0 proto dhcp src 10.20.3.14 metric 100',
    '10.20.3.0/24 dev eth0 proto kernel scope link src 10.20.3.14 metric 100',
    '172.17.0.0/16 dev docker0 proto kernel scope link src 172.17.0.1 linkdown',
    '',
    'State   Recv-Q  Send-Q   Local Address:Port     Peer Address:Port  Process',
  ];
  for (let i = 0; i < 80; i++) out.push(`${r.pick(['ESTAB', 'LISTEN', 'TIME-WAIT']).padEnd(7)} ${pad(r.int(0, 9), 6)}  ${pad(r.pick([0, 0, 128, 4096]), 6)}  ${`${r.pick(['0.0.0.0', '10.20.3.14', '127.0.0.1', '[::]'])}:${r.pick([22, 443, 5432, 6379, 8080])}`.padStart(20)}  ${`${r.pick([ip10(r), '0.0.0.0', '*'])}:${r.pick([r.int(1024, 65535), '*'])}`.padStart(20)}`);
  return out;
}

function cloud(r) {
  const out = ['NAME                                  READY   STATUS    RESTARTS      AGE    IP             NODE'];
  for (let i = 0; i < 60; i++) out.push(`${`${r.pick(['api', 'worker', 'hl7-bridge', 'etl', 'redis'])}-${SHA(r, 10)}-${SHA(r, 5)}`.padEnd(37)} ${r.pick(['1/1', '2/2', '0/1'])}     ${r.pick(['Running', 'Pending', 'CrashLoopBackOff']).padEnd(9)} ${`${r.int(0, 40)}${r.pick(['', ` (${r.int(1, 59)}m ago)`])}`.padEnd(13)} ${`${r.int(1, 90)}${r.pick(['d', 'h', 'm'])}`.padEnd(6)} ${ip10(r).padEnd(14)} ip-10-20-${r.int(0, 9)}-${r.int(1, 254)}.eu-west-1.compute.internal`);
  out.push('', 'CONTAINER ID   IMAGE                       COMMAND                  CREATED        STATUS                  PORTS                    NAMES');
  for (let i = 0; i < 20; i++) out.push(`${SHA(r, 12)}   ${r.pick(['postgres:15', 'redis:7-alpine', 'nginx:1.25', 'registry.example.com/app:2026.11.3']).padEnd(27)} "${r.pick(['docker-entrypoint.s…', '/docker-entrypoint.…', 'node dist/server.js'])}"`.padEnd(75) + `${r.int(1, 9)} days ago     Up ${r.int(1, 9)} days (healthy)   ${r.pick(['0.0.0.0:5432->5432/tcp', '127.0.0.1:6379->6379/tcp', '0.0.0.0:80->80/tcp, :::80->80/tcp'])}`.padEnd(24) + `  ${r.pick(['db', 'cache', 'web'])}-${i}`);
  out.push('', '{', `    "UserId": "AIDA${SHA(r, 17).toUpperCase()}",`, `    "Account": "${r.int(100000000000, 999999999999)}",`, `    "Arn": "arn:aws:iam::${r.int(100000000000, 999999999999)}:user/deploy"`, '}');
  out.push('', '              total        used        free      shared  buff/cache   available', `Mem:          ${r.int(1000, 64000)}        ${r.int(100, 30000)}        ${r.int(100, 9000)}         ${r.int(1, 999)}       ${r.int(100, 20000)}       ${r.int(100, 40000)}`, `Swap:          ${r.int(0, 4096)}           0        ${r.int(0, 4096)}`);
  out.push('', 'procs -----------memory---------- ---swap-- -----io---- -system-- ------cpu-----', ' r  b   swpd   free   buff  cache   si   so    bi    bo   in   cs us sy id wa st');
  for (let i = 0; i < 30; i++) out.push(` ${r.int(0, 9)}  ${r.int(0, 2)} ${pad(r.int(0, 99999), 6)} ${pad(r.int(0, 999999), 6)} ${pad(r.int(0, 99999), 6)} ${pad(r.int(0, 999999), 6)}    0    0 ${pad(r.int(0, 9999), 5)} ${pad(r.int(0, 9999), 5)} ${pad(r.int(0, 9999), 4)} ${pad(r.int(0, 9999), 4)} ${pad(r.int(0, 99), 2)} ${pad(r.int(0, 30), 2)} ${pad(r.int(0, 99), 2)}  ${r.int(0, 9)}  0`);
  return out;
}

/** The generated corpus: [{ name, text }], lines joined with \n. */
export function ordinaryCorpus({ seed = 1 } = {}) {
  const r = rng(seed + 1000);
  return Object.entries({ ps, df, top, journalctl: journal, dmesg, 'ls-l': lsl, 'git-log': gitlog, psql, 'ip-ss': net, 'kubectl-docker-aws-free-vmstat': cloud }).map(([name, f]) => ({ name, text: f(r).join('\n') + '\n' }));
}
