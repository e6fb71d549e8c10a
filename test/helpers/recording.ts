import type { RecordingHeader } from '../../src/recording/format.js';

/** A recording header for tests: alice+ops, 80x24 xterm, AES-256-GCM over deflate-raw; override what a test needs. */
export function recordingHeader(sessionId: string, over: Partial<RecordingHeader> = {}): RecordingHeader {
  return {
    v: 1,
    sessionId,
    user: 'alice',
    role: 'ops',
    startedAt: 0,
    cols: 80,
    rows: 24,
    term: 'xterm',
    cipher: 'aes-256-gcm',
    compression: 'deflate-raw',
    recordInput: false,
    ...over,
  };
}
