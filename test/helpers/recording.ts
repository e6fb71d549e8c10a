import type { Role } from '../../src/store/roles.js';
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

/** A session row for tests that need one without a login: dora+ops (user 1, role 1), 80x24 xterm. */
export function sessionRow(id: string, startedAt: number) {
  return { id, userId: 1, roleId: 1, userName: 'dora', roleName: 'ops', remoteAddr: '192.0.2.1', term: 'xterm', cols: 80, rows: 24, startedAt };
}

/** A shell role row for tests of the pure auth and authz steps: nothing set beyond its id and name. */
export function roleRow(id: number, name: string): Role {
  return {
    id,
    name,
    kind: 'shell',
    runAs: null,
    allowRoot: false,
    shell: null,
    idleTimeoutMs: null,
    idleWarningMs: null,
    maxSessionMs: null,
    recordInput: false,
    tmuxOptions: {},
    createdAt: 0,
    sandbox: null,
    viewOf: null,
  };
}
