/**
 * The multi-factor policy as a pure function: what a connection has proven so far decides what
 * it must do next. Both factors, always, in this order: publickey, then TOTP.
 */
export interface AuthProgress {
  /** The user whose key was verified (null until then). */
  keyUser: string | null;
  /** The login name the verified key was for. */
  keyLogin: string | null;
  totp: boolean;
}

export type AuthVerdict =
  { kind: 'accepted' } | { kind: 'need'; methods: ('publickey' | 'keyboard-interactive')[]; partial: boolean } | { kind: 'rejected'; reason: string };

/** The next step for a connection with `progress` that now presents `login`. */
export function nextStep(progress: AuthProgress, login: string): AuthVerdict {
  if (progress.keyLogin !== null && progress.keyLogin !== login) {
    return { kind: 'rejected', reason: 'login name changed between authentication steps' };
  }
  if (progress.keyUser === null) return { kind: 'need', methods: ['publickey'], partial: false };
  if (!progress.totp) return { kind: 'need', methods: ['keyboard-interactive'], partial: true };
  return { kind: 'accepted' };
}
