/**
 * Whether this node's store holds what the ring gives it, kept in the
 * node's metadata beside its tokens and state: `whole` once it serves,
 * `filling` while it pulls its ranges back from the other replicas.
 *
 * A store is marked whole when the node starts on a store that holds keys,
 * or by its first write (before that write is acknowledged), so a store
 * that never held a key is never refilled for coming back empty.
 *
 * A node back on a wiped data directory is recognised by its peers
 * (membership/recall.ts). This catches what they cannot see: a store lost
 * while the metadata stayed (a Redis restarted without persistence, the
 * lmdb directory removed but not meta/), found empty at start though it was
 * whole, and a refill cut short by a crash (the store is no longer empty,
 * but is not whole). Either way the node refills before it counts toward
 * any quorum, or it would answer reads with nothing for keys it
 * acknowledged. A store that held keys and is legitimately empty (all of
 * them purged or moved away) only costs a refill that finds nothing.
 */
import type { MetaStore } from '../../storage/meta.js';

export const storeFillMetaName = 'store';

export const StoreFill = { Whole: 'whole', Filling: 'filling' } as const;
export type StoreFill = (typeof StoreFill)[keyof typeof StoreFill];

/** The store's state as the metadata keeps it: read once, written only when it changes. */
export class StoreFillRecord {
  private state: string | undefined;

  constructor(private readonly meta: MetaStore) {
    this.state = meta.readText(storeFillMetaName)?.trim();
  }

  /** True when the store must be refilled before it counts toward quorums (see above). */
  mustRefill(emptyAtStart: boolean): boolean {
    return this.state === StoreFill.Filling || (this.state === StoreFill.Whole && emptyAtStart);
  }

  set(state: StoreFill): void {
    if (this.state === state) return;
    this.meta.writeText(storeFillMetaName, state);
    this.state = state;
  }
}
