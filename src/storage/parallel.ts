/**
 * Run `work` on every item with at most `limit` at once: transfers of whole trees must not open
 * thousands of sockets or files together, and one at a time would leave the network idle.
 * After the first failure no new item starts, and that failure is what rejects.
 */
export async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const lane = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const item = items[next++] as T;
      try {
        await work(item);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/** How many transfers a tree upload or download runs at once. */
export const TREE_TRANSFERS = 8;
