import os from 'node:os';
import type { Clock } from '../platform/clock.js';
import type { AnchorTarget } from './anchors.js';
import type { Anchor } from './offsite-store.js';
import { APP_NAME, SEVERITY, frame, printUsAscii, rfc3339, sdParamValue, type SyslogFormatOptions } from './syslog-format.js';
import { FACILITIES } from '../config/evidence.js';
import { connectTls, type TlsTarget } from './tls-connect.js';

/** The SD-ID of an anchor message: distinct from the audit rows' (syslog-format.ts SD_ID). */
export const ANCHOR_SD_ID = 'tmuxgate-anchor@32473';
/** MSGID of an anchor message. */
export const ANCHOR_MSGID = 'audit.anchor';

/** The RFC 5424 message for one audit anchor (the signed checkpoint): every field in the SD element, no MSG. */
export function formatAnchor(a: Anchor, opts: SyslogFormatOptions = {}): string {
  const pri = (opts.facility ?? FACILITIES.authpriv) * 8 + SEVERITY.notice;
  const params = [
    `kind="${sdParamValue(a.kind)}"`,
    `subject="${sdParamValue(a.subject)}"`,
    `position="${a.position}"`,
    `head="${sdParamValue(a.head)}"`,
    `ts="${a.ts}"`,
    `sig="${a.signature.toString('base64')}"`,
    `node="${sdParamValue(a.node)}"`,
  ];
  const host = printUsAscii(opts.hostname ?? os.hostname(), 255);
  const procId = printUsAscii(String(opts.procId ?? process.pid), 128);
  return `<${pri}>1 ${rfc3339(a.ts)} ${host} ${APP_NAME} ${procId} ${ANCHOR_MSGID} [${ANCHOR_SD_ID} ${params.join(' ')}]`;
}

/** An anchor message back (the verifier and the tests), or null if `message` is not one. */
export function parseAnchorMessage(message: string): Anchor | null {
  if (!message.includes(` ${ANCHOR_MSGID} [${ANCHOR_SD_ID} `)) return null;
  const p = new Map<string, string>();
  for (const m of message.matchAll(/ ([a-z]+)="((?:[^"\\]|\\.)*)"/g)) p.set(m[1]!, decodeURIComponent(m[2]!.replace(/\\(["\\\]])/g, '$1')));
  const kind = p.get('kind');
  const position = Number(p.get('position'));
  const ts = Number(p.get('ts'));
  if ((kind !== 'audit' && kind !== 'recording') || !Number.isSafeInteger(position) || !Number.isSafeInteger(ts)) return null;
  const signature = Buffer.from(p.get('sig') ?? '', 'base64');
  return { kind, subject: p.get('subject') ?? '', position, head: p.get('head') ?? '', ts, signature, node: p.get('node') ?? '' };
}

/**
 * The syslog collector as an anchor target: each round's audit anchor on a connection of its own
 * (TLS as the audit shipper's, checked against the same CA), delivered once the collector answers
 * our orderly close, so the shipper's connection and cursor are never involved.
 */
export function syslogAnchorTarget(t: TlsTarget, format: SyslogFormatOptions, clock: Clock, timeoutMs = 10_000): AnchorTarget {
  return {
    name: 'syslog',
    auditOnly: true,
    async putAnchors(anchors) {
      const s = await connectTls(t, clock, timeoutMs);
      try {
        await new Promise<void>((resolve, reject) => {
          const cancel = clock.setTimeout(() => done(new Error(`the collector did not answer our close within ${timeoutMs} ms`)), timeoutMs);
          const done = (e?: Error): void => {
            cancel();
            if (e) reject(e);
            else resolve();
          };
          s.on('data', () => {});
          s.once('error', done);
          s.once('end', () => done()); // the collector read everything before our close
          s.once('close', () => done(new Error('connection closed before the collector answered')));
          s.end(Buffer.concat(anchors.filter((a) => a.kind === 'audit').map((a) => frame(formatAnchor(a, format)))));
        });
      } finally {
        s.destroy();
      }
    },
  };
}
