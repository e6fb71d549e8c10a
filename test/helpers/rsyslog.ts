import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { waitUntil } from './poll.js';
import type { CertFiles } from './tls-certs.js';

/** Whether something accepts TCP connections on the loopback port (the probe closes at once). */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** What rsyslog parsed out of one message (its own RFC 5424 parser), one JSON line each. */
export interface ParsedLine {
  pri: string;
  msgid: string;
  sd: string;
  host: string;
  app: string;
  procid: string;
  time: string;
  msg: string;
}

export interface RsyslogOptions {
  /** A private directory for the config, the output files and rsyslog's work files. */
  dir: string;
  /** The CA rsyslog trusts for client certificates. */
  caFile: string;
  server: CertFiles;
  /** anon: any client; x509/certvalid: the client must present a certificate signed by caFile. */
  authMode: 'anon' | 'x509/certvalid';
}

/**
 * Debian's rsyslogd with the gnutls driver on a loopback port, as a child of the test: `-n`
 * (foreground), its own config, pid file and work directory, no imuxsock (so /dev/log and
 * /var/log are never touched). The TLS input writes each message twice: raw (%rawmsg%, with
 * control-character escaping off, so a newline a sender lets through shows as an extra line) and
 * as rsyslog parsed it (JSON). stop()/start() keep the port, so a client can reconnect.
 */
export class TestRsyslog {
  port = 0;
  private child: ChildProcess | null = null;
  private stderr = '';
  readonly rawFile: string;
  readonly parsedFile: string;
  private readonly portFile: string;

  constructor(private readonly o: RsyslogOptions) {
    this.rawFile = path.join(o.dir, 'raw.log');
    this.parsedFile = path.join(o.dir, 'parsed.log');
    this.portFile = path.join(o.dir, 'port');
    mkdirSync(path.join(o.dir, 'work'), { recursive: true, mode: 0o700 });
  }

  private config(): string {
    const d = this.o.dir;
    const parsed = ['pri', 'msgid', 'structured-data', 'hostname', 'app-name', 'procid'].map((p) => {
      const key = { 'structured-data': 'sd', hostname: 'host', 'app-name': 'app' }[p] ?? p;
      return `\\"${key}\\":\\"%${p}:::json%\\"`;
    });
    parsed.push('\\"time\\":\\"%timereported:::date-rfc3339,json%\\"', '\\"msg\\":\\"%msg:::json%\\"');
    return [
      `global(workDirectory="${d}/work"`,
      `  defaultNetstreamDriver="gtls"`,
      `  defaultNetstreamDriverCAFile="${this.o.caFile}"`,
      `  defaultNetstreamDriverCertFile="${this.o.server.cert}"`,
      `  defaultNetstreamDriverKeyFile="${this.o.server.key}"`,
      `  parser.escapeControlCharactersOnReceive="off")`,
      `module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="${this.o.authMode}")`,
      `template(name="tgRaw" type="string" string="%rawmsg%\\n")`,
      `template(name="tgParsed" type="string" string="{${parsed.join(',')}}\\n")`,
      `ruleset(name="tgIn") {`,
      `  action(type="omfile" file="${this.rawFile}" template="tgRaw")`,
      `  action(type="omfile" file="${this.parsedFile}" template="tgParsed")`,
      `}`,
      `input(type="imtcp" port="${this.port}" listenPortFileName="${this.portFile}" ruleset="tgIn")`,
      // rsyslog's own messages (start, TLS errors) go to the default ruleset: a separate file.
      `action(type="omfile" file="${d}/internal.log")`,
      '',
    ].join('\n');
  }

  /** Starts rsyslogd (on the same port as before, after a stop) and waits until it listens. */
  async start(): Promise<void> {
    const conf = path.join(this.o.dir, 'rsyslog.conf');
    writeFileSync(conf, this.config());
    rmSync(this.portFile, { force: true });
    // After a SIGKILL the pid file stays behind, and rsyslogd refuses to start while it exists.
    const pidFile = path.join(this.o.dir, 'rsyslogd.pid');
    rmSync(pidFile, { force: true });
    this.stderr = '';
    const child = spawn('rsyslogd', ['-n', '-f', conf, '-i', pidFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    // rsyslogd writes the port file only for port 0; on a restart, wait until the port answers.
    const restart = this.port !== 0;
    await waitUntil(
      async () => {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`rsyslogd exited: ${this.stderr.slice(-800)}`);
        if (restart) return (await accepts(this.port)) ? String(this.port) : null;
        const text = existsSync(this.portFile) ? readFileSync(this.portFile, 'utf8').trim() : '';
        return /^[1-9][0-9]*$/.test(text) ? text : null;
      },
      'rsyslogd to listen',
      20_000,
    )
      .then((p) => (this.port = Number(p)))
      .catch((e: Error) => {
        throw new Error(`${e.message}\n${this.diagnostics()}`);
      });
  }

  /** Stops rsyslogd (SIGTERM: orderly; SIGKILL: a crash) and waits until it has exited. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    await gone;
  }

  /** Freezes rsyslogd (SIGSTOP): connections stay open, nothing is read. */
  freeze(): void {
    this.child?.kill('SIGSTOP');
  }

  /** The raw lines written so far (each message one line unless a sender let a newline through). */
  rawLines(): string[] {
    if (!existsSync(this.rawFile)) return [];
    const text = readFileSync(this.rawFile, 'utf8');
    return text === '' ? [] : text.replace(/\n$/, '').split('\n');
  }

  parsedLines(): ParsedLine[] {
    if (!existsSync(this.parsedFile)) return [];
    return readFileSync(this.parsedFile, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as ParsedLine);
  }

  /** rsyslog's own log and stderr, for failure messages. */
  diagnostics(): string {
    const internal = path.join(this.o.dir, 'internal.log');
    return `${existsSync(internal) ? readFileSync(internal, 'utf8').slice(-1500) : ''}\n${this.stderr.slice(-1500)}`;
  }
}
