/**
 * Run `fn` over `items` with at most `limit` running at once. The first failure stops the
 * scan: no further item is started (a reconcile that lost the primary must not open hundreds
 * more sessions to find out again), the ones already running finish, and then the first error
 * is thrown. Items are started in order.
 */
export async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (e) {
        failure ??= { error: e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure !== undefined) throw failure.error;
}
