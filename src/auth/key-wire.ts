/** Minimal reader for SSH wire-format public key blobs (RFC 4251 strings and mpints). */
export function readSshStrings(blob: Buffer, max = 8): Buffer[] | null {
  const out: Buffer[] = [];
  let p = 0;
  while (p < blob.length && out.length < max) {
    if (p + 4 > blob.length) return null;
    const len = blob.readUInt32BE(p);
    p += 4;
    if (p + len > blob.length) return null;
    out.push(blob.subarray(p, p + len));
    p += len;
  }
  return p === blob.length ? out : null;
}

/** Bit length of an unsigned big-endian mpint. */
export function mpintBits(b: Buffer): number {
  let i = 0;
  while (i < b.length && b[i] === 0) i++;
  if (i === b.length) return 0;
  return (b.length - i - 1) * 8 + (32 - Math.clz32(b[i]!));
}
