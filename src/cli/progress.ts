/**
 * A progress bar on stderr for long work, only on a TTY and only when `enabled`
 * (never with --json). Returns an update function taking the count done.
 */
export function progress(total: number, label: string, enabled: boolean): (done: number) => void {
  if (!enabled || !process.stderr.isTTY || total < 2) return () => {};
  return (done) => {
    const w = 30;
    const filled = Math.round((done / total) * w);
    process.stderr.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(w - filled)}] ${done}/${total}`);
    if (done >= total) process.stderr.write('\n');
  };
}
