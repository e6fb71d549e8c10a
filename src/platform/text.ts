/**
 * Text from users shown on an operator's line-oriented display (CLI tables, audit lines, menus),
 * made unable to act on the terminal. The full terminal stream filter is recording/safe-terminal.ts.
 */

// eslint-disable-next-line no-control-regex
const CONTROLS = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
// eslint-disable-next-line no-control-regex
const CONTROLS_AND_BACKSLASH = /[\\\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

const escapeOne = (ch: string): string => {
  if (ch === '\\') return '\\\\';
  const cp = ch.codePointAt(0)!;
  return cp <= 0xff ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u{${cp.toString(16)}}`;
};

/**
 * Escapes control characters in one field of user-controlled text for a line-oriented display
 * (CLI tables, audit lines, menus): C0, DEL, C1 and the bidirectional overrides become visible
 * escapes (`\x1b`, `\u{202e}`), and a backslash becomes `\\` so the escaped form is unambiguous
 * (`backslash: false` for formats that escape backslashes themselves).
 */
export function escapeControls(s: string, o: { backslash?: boolean } = {}): string {
  return s.replace(o.backslash === false ? CONTROLS : CONTROLS_AND_BACKSLASH, escapeOne);
}

/** JSON text with DEL, C1 and bidi controls escaped too (JSON.stringify leaves them raw); still valid JSON. */
export function safeJson(v: unknown, space?: number): string {
  const unicodeEscape = (ch: string) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
  return JSON.stringify(v, null, space).replace(/[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, unicodeEscape);
}
