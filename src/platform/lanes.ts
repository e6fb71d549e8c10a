/**
 * Runs `fn` over `items`, at most `lanes` at a time, in order, and resolves when all have ended.
 * A rejection never stops the items after it: the first is rethrown once all have run. For
 * per-pair work where a pair controls how long its own item takes (its socket answers slowly or
 * never): that pair then holds one lane, not every pair queued behind it.
 */
export async function inLanes<T>(items: readonly T[], lanes: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const lane = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        errors.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(lanes, items.length)) }, lane));
  if (errors.length) throw errors[0];
}
