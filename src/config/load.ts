import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigSchema, type Config, type ConfigInput } from './schema.js';
import { TgError } from '../errors.js';
import type { RecordingsOffsiteConfig } from './evidence.js';

/** Formats zod issues as "path: reason" lines. */
function describeIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  return issues.map((i) => `${i.path.length ? i.path.map(String).join('.') : '(top level)'}: ${i.message}`).join('; ');
}

/** Stable JSON: keys sorted at every level, so equal configs hash equally. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/**
 * Where tmux sockets and the gateway's tmux.conf files live when the config names no place. Under
 * root they must be reachable by every pair account whatever the checkout's parents allow (a
 * checkout under /root is 0700), so they go to /run/tmuxgate, one directory per data directory;
 * tmux servers do not outlive a reboot, so a tmpfs is the right home. Otherwise under dataDir.
 */
export function defaultSocketDir(dataDir: string, root = process.getuid?.() === 0): string {
  if (!root) return path.join(dataDir, 'tmux');
  return path.join('/run/tmuxgate', createHash('sha256').update(dataDir).digest('hex').slice(0, 12));
}

/** evidence.recordings with its file paths (URL file, S3 credentials) made absolute. */
function resolveSinkFiles(r: RecordingsOffsiteConfig, resolve: (f: string) => string): RecordingsOffsiteConfig {
  const { postgres: pg, s3 } = r;
  return {
    ...r,
    ...(pg ? { postgres: { ...pg, ...(pg.urlFile !== undefined ? { urlFile: resolve(pg.urlFile) } : {}) } } : {}),
    ...(s3
      ? {
          s3: {
            ...s3,
            ...(s3.accessKeyIdFile !== undefined ? { accessKeyIdFile: resolve(s3.accessKeyIdFile) } : {}),
            ...(s3.secretAccessKeyFile !== undefined ? { secretAccessKeyFile: resolve(s3.secretAccessKeyFile) } : {}),
          },
        }
      : {}),
  };
}

/** Validates an already-parsed object; relative paths resolve against `baseDir`. */
export function buildConfig(input: unknown, source: { file: string | null; baseDir: string }): Config {
  const r = ConfigSchema.safeParse(input ?? {});
  if (!r.success) {
    throw new TgError('TG_ERR_CONFIG_INVALID', `config ${source.file ?? '(defaults)'}: ${describeIssues(r.error.issues)}`);
  }
  const c = r.data;
  const dataDir = path.resolve(source.baseDir, c.dataDir);
  const keysDir = path.resolve(source.baseDir, c.keysDir);
  const socketDir = c.sessions.socketDir ? path.resolve(source.baseDir, c.sessions.socketDir) : defaultSocketDir(dataDir);
  const hash = createHash('sha256').update(canonicalJson(c)).digest('hex');
  const syslog = c.evidence.syslog;
  const resolve = (f: string) => path.resolve(source.baseDir, f);
  const recordings = c.evidence.recordings;
  return {
    ...c,
    evidence: {
      ...c.evidence,
      ...(syslog
        ? {
            syslog: {
              ...syslog,
              caFile: resolve(syslog.caFile),
              ...(syslog.certFile !== undefined ? { certFile: resolve(syslog.certFile) } : {}),
              ...(syslog.keyFile !== undefined ? { keyFile: resolve(syslog.keyFile) } : {}),
            },
          }
        : {}),
      ...(recordings ? { recordings: resolveSinkFiles(recordings, resolve) } : {}),
    },
    paths: { dataDir, keysDir, socketDir, dbFile: path.join(dataDir, 'tmuxgate.db'), configFile: source.file },
    hash,
  };
}

/**
 * Loads the config: `--config FILE`, else $TMUXGATE_CONFIG, else the embedded default.
 * Relative paths in a file are relative to that file's directory; with no file, to the cwd.
 */
export function loadConfig(file?: string | null, overrides?: ConfigInput): Config {
  const chosen = file ?? process.env.TMUXGATE_CONFIG ?? null;
  if (!chosen) return buildConfig(overrides ?? {}, { file: null, baseDir: process.cwd() });
  const abs = path.resolve(chosen);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (e) {
    throw new TgError('TG_ERR_CONFIG_UNREADABLE', `config ${abs}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text, { maxAliasCount: 50 });
  } catch (e) {
    throw new TgError('TG_ERR_CONFIG_INVALID', `config ${abs}: not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (parsed !== null && parsed !== undefined && (typeof parsed !== 'object' || Array.isArray(parsed))) {
    throw new TgError('TG_ERR_CONFIG_INVALID', `config ${abs}: (top level): expected a mapping of settings`);
  }
  return buildConfig({ ...(parsed as object | null), ...overrides }, { file: abs, baseDir: path.dirname(abs) });
}
