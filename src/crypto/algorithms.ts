import type ssh2 from 'ssh2';

/**
 * The algorithm allow-list. The config may only narrow these lists, never widen them: anything
 * a client offers outside them is refused at negotiation (ssh2 finds no common algorithm).
 *
 * Host keys are ed25519 only. ssh2 1.17 lets a client negotiate `ssh-rsa` (SHA-1) host-key
 * signatures whenever an RSA host key is loaded, whatever the configured list says, so no RSA
 * host key is ever loaded.
 */
export const ALLOWED = {
  kex: ['curve25519-sha256', 'curve25519-sha256@libssh.org', 'diffie-hellman-group16-sha512', 'diffie-hellman-group18-sha512'],
  cipher: ['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com', 'aes128-gcm@openssh.com', 'aes256-ctr'],
  mac: ['hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256-etm@openssh.com'],
  serverHostKey: ['ssh-ed25519'],
  compress: ['none'],
} as const;

export type AlgorithmKind = 'kex' | 'cipher' | 'mac';

export interface AlgorithmPolicy {
  kex: string[];
  cipher: string[];
  mac: string[];
  serverHostKey: string[];
  compress: string[];
}

/** The allow-list narrowed by the config's choices, in the built-in preference order. */
export function effectiveAlgorithms(narrow: Partial<Record<AlgorithmKind, string[]>>): AlgorithmPolicy {
  const pick = (kind: AlgorithmKind): string[] => {
    const want = narrow[kind];
    const all: readonly string[] = ALLOWED[kind];
    return want ? all.filter((a) => want.includes(a)) : [...all];
  };
  return {
    kex: pick('kex'),
    cipher: pick('cipher'),
    mac: pick('mac'),
    serverHostKey: [...ALLOWED.serverHostKey],
    compress: [...ALLOWED.compress],
  };
}

/** A policy in ssh2's terms (its MAC list is `hmac`): the front door's and the node link's. */
export function ssh2Algorithms(p: AlgorithmPolicy): ssh2.Algorithms {
  return { kex: p.kex, cipher: p.cipher, hmac: p.mac, serverHostKey: p.serverHostKey, compress: p.compress } as ssh2.Algorithms;
}
