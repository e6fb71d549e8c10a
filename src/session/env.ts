import { existsSync } from 'node:fs';

/** Env requests a client may make (OpenSSH's Debian default sends LANG and LC_*). */
const ALLOWED_ENV = /^(LANG|LC_[A-Z]+)$/;
const SAFE_LOCALE = /^[A-Za-z0-9._@-]{1,64}$/;
const TERM_RE = /^[A-Za-z0-9._+-]{1,64}$/;
const TERMINFO_DIRS = ['/etc/terminfo', '/lib/terminfo', '/usr/share/terminfo'];

/** Whether a client env request is on the allow-list (name and value). */
export function envAllowed(key: string, value: string): boolean {
  return ALLOWED_ENV.test(key) && SAFE_LOCALE.test(value);
}

/** Whether terminfo knows `term` on this host. */
export function termKnown(term: string): boolean {
  if (!TERM_RE.test(term)) return false;
  const first = term[0]!;
  return TERMINFO_DIRS.some((d) => existsSync(`${d}/${first}/${term}`) || existsSync(`${d}/${first.charCodeAt(0).toString(16)}/${term}`));
}

/** The TERM a shell gets: the client's if terminfo knows it, else the safe default. */
export function normaliseTerm(term: string | undefined, fallback: string): string {
  if (!term || term === 'dumb' || !termKnown(term)) return fallback;
  return term;
}

export interface ShellEnvInput {
  term: string;
  lang: string;
  home: string;
  user: string;
  shell: string;
  gatewayUser: string;
  role: string;
  sessionId: string;
  clientEnv: Record<string, string>;
}

/**
 * The complete environment of a user's tmux client (and so of a new tmux server and its shells).
 * Built from nothing: never a copy of the gateway's process.env.
 */
export function shellEnv(i: ShellEnvInput): Record<string, string> {
  const env: Record<string, string> = {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: i.home,
    USER: i.user,
    LOGNAME: i.user,
    SHELL: i.shell,
    TERM: i.term,
    LANG: i.lang,
    TMUXGATE_USER: i.gatewayUser,
    TMUXGATE_ROLE: i.role,
    TMUXGATE_SESSION: i.sessionId,
  };
  for (const [k, v] of Object.entries(i.clientEnv)) if (envAllowed(k, v)) env[k] = v;
  return env;
}
