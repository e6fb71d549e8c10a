/**
 * The registry of coded errors. Every error a person can see carries a stable code and a
 * message they can act on; the CLI maps the code's class to an exit status (see README).
 */

/** Exit statuses, documented in the README. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  conflict: 4,
  integrity: 5,
  denied: 6,
  internal: 10,
} as const;

export type ExitStatus = (typeof EXIT)[keyof typeof EXIT];

const CODES = {
  TG_ERR_CONFIG_INVALID: EXIT.usage,
  TG_ERR_CONFIG_UNREADABLE: EXIT.usage,
  TG_ERR_USAGE: EXIT.usage,
  TG_ERR_INVALID_NAME: EXIT.usage,
  TG_ERR_INVALID_KEY: EXIT.usage,
  TG_ERR_WEAK_KEY: EXIT.usage,
  TG_ERR_INVALID_CODE: EXIT.usage,
  TG_ERR_INVALID_ARGUMENT: EXIT.usage,
  TG_ERR_USER_NOT_FOUND: EXIT.notFound,
  TG_ERR_ROLE_NOT_FOUND: EXIT.notFound,
  TG_ERR_KEY_NOT_FOUND: EXIT.notFound,
  TG_ERR_SESSION_NOT_FOUND: EXIT.notFound,
  TG_ERR_TOTP_NOT_ENROLLED: EXIT.notFound,
  TG_ERR_USER_EXISTS: EXIT.conflict,
  TG_ERR_ROLE_EXISTS: EXIT.conflict,
  TG_ERR_KEY_EXISTS: EXIT.conflict,
  TG_ERR_GRANT_EXISTS: EXIT.conflict,
  TG_ERR_ROLE_IN_USE: EXIT.conflict,
  TG_ERR_TOTP_CODE_REJECTED: EXIT.denied,
  TG_ERR_KEY_PERMISSIONS: EXIT.failure,
  TG_ERR_KEY_UNREADABLE: EXIT.failure,
  TG_ERR_DB_TOO_NEW: EXIT.failure,
  TG_ERR_DB_MIGRATION: EXIT.failure,
  TG_ERR_STORE_UNREACHABLE: EXIT.failure,
  TG_ERR_OFFSITE_UNREACHABLE: EXIT.failure,
  TG_ERR_LISTEN: EXIT.failure,
  TG_ERR_AUDIT_CHAIN_BROKEN: EXIT.integrity,
  TG_ERR_MASTER_KEY_MISMATCH: EXIT.integrity,
  TG_ERR_RECORDING_MISSING: EXIT.integrity,
  TG_ERR_RECORDING_TAMPERED: EXIT.integrity,
  TG_ERR_RECORDING_PURGED: EXIT.notFound,
  TG_ERR_RECORDING_HELD: EXIT.conflict,
  TG_ERR_RECORDING_NOT_EXPIRED: EXIT.conflict,
  TG_ERR_HOLD_NOT_FOUND: EXIT.notFound,
  TG_ERR_NOT_A_TTY: EXIT.usage,
  TG_ERR_UNSAFE_PATH: EXIT.failure,
  TG_ERR_SANDBOX: EXIT.failure,
  TG_ERR_PATH_NOT_TRAVERSABLE: EXIT.failure,
  TG_ERR_PAIR_DIR_FOREIGN: EXIT.failure,
  TG_ERR_ACCOUNT_NOT_OURS: EXIT.conflict,
  TG_ERR_ACCOUNT: EXIT.failure,
  TG_ERR_NODE_ID_IN_USE: EXIT.conflict,
  TG_ERR_CLUSTER_KEYS: EXIT.integrity,
  TG_ERR_LINK_PORTS: EXIT.failure,
  TG_ERR_RECORDING_ON_OTHER_NODE: EXIT.notFound,
  TG_ERR_OUTPUT_EXISTS: EXIT.conflict,
  TG_ERR_OUTPUT_PATH: EXIT.usage,
  TG_ERR_UNMASK_REQUEST_NOT_FOUND: EXIT.notFound,
  TG_ERR_UNMASK_GRANT_NOT_FOUND: EXIT.notFound,
  TG_ERR_UNMASK_NOT_PENDING: EXIT.conflict,
  TG_ERR_UNMASK_NOT_IN_FORCE: EXIT.conflict,
  TG_ERR_UNMASK_SELF_APPROVAL: EXIT.denied,
  TG_ERR_UNMASK_ANONYMOUS: EXIT.denied,
  TG_ERR_INTERNAL: EXIT.internal,
} as const;

export type ErrorCode = keyof typeof CODES;

/** An error with a stable code, safe to show to an operator. */
export class TgError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TgError';
    this.code = code;
  }
  /** The exit status the CLI uses for this error. */
  get exitStatus(): ExitStatus {
    return CODES[this.code];
  }
}
