/**
 * This node's tictac trees (core/tictac.ts): one per arc of the serving ring
 * it replicates. Within an arc every key has the same N replicas
 * (core/moves.ts arcsOf), so each replica of the arc keeps a tree over the
 * same key set, and two replicas compare their trees of one arc.
 *
 * A tree is built by scanning its arc in key-hash order, paced, and kept up
 * to date from every change of the store (Replica.onStored: the old digest
 * XORed out, the new one in), so no write ever rescans anything. A change
 * during the build is applied only to keys the scan has passed; one ahead of
 * it the scan reads itself. (A change racing the scan's own read can leave a
 * segment off: an exchange recomputes the segments it lists from storage and
 * corrects them, see `correct`.) When the serving ring changes, every tree
 * is dropped and rebuilt as the rounds reach its arc. Memory: arcs x 1024
 * segments x 8 bytes, whatever the number of keys.
 */
import { compareHashOrder } from '../../storage/hash_order.js';
import type { Clock } from '../../core/clock.js';
import { limits } from '../../core/limits.js';
import { arcName, arcsOf, hashMax, spansOf, type Arc } from '../../core/moves.js';
import { keyHash, preferenceList, type Ring } from '../../core/ring.js';
import { newTree, segmentOf, setSegment, updateTree, versionsDigest, type TictacTree } from '../../core/tictac.js';
import type { Version } from '../../core/version.js';
import { decodeRecord } from '../../protocol/codec.js';
import type { HashCursor, StorageEngine } from '../../storage/engine.js';

export const TreeState = { Building: 'building', Ready: 'ready' } as const;
export type TreeState = (typeof TreeState)[keyof typeof TreeState];

export interface ArcTree {
  arc: Arc;
  /** The arc's replicas in the serving ring (this node among them). */
  replicas: string[];
  tree: TictacTree;
  state: TreeState;
  /** While building: the last entry the scan has passed (changes at or before it are applied). */
  scanned: HashCursor | undefined;
  /** Changes applied so far (an exchange that recomputes segments checks none came meanwhile). */
  changes: number;
}

export class ArcTrees {
  /** Serving-ring arcs this node replicates, by end, sorted; with their trees. */
  private arcs: ArcTree[] = [];
  /** Ends of every arc of the ring (whether replicated here or not), sorted: to find a key's arc. */
  private ends: bigint[] = [];
  private ringKey = '';
  private nextBuildAtMs = 0;
  /** Bumped when the trees are dropped: a build under way for the old ones stops. */
  private generation = 0;

  constructor(
    private readonly self: string,
    private readonly replication: number,
    private readonly engine: StorageEngine,
    private readonly clock: Clock,
  ) {}

  /** Keeps the trees for `ring` (fingerprint `key`): drops them all when the ring changed. */
  follow(ring: Ring, key: string): void {
    if (key === this.ringKey) return;
    this.ringKey = key;
    this.generation++;
    const all = arcsOf([ring]);
    this.ends = all.map((a) => a.end);
    this.arcs = all.map((arc) => ({ arc, replicas: preferenceList(ring, arc.end, this.replication) }))
      .filter((a) => a.replicas.includes(this.self))
      .map((a) => ({ ...a, tree: newTree(), state: TreeState.Building, scanned: undefined, changes: 0 }));
    this.building = new Set(this.arcs);
    this.byEnd = new Map(this.arcs.map((a) => [a.arc.end, a]));
  }

  /** Arcs whose tree has not been scanned yet since the last ring change. */
  private building = new Set<ArcTree>();
  private byEnd = new Map<bigint, ArcTree>();

  list(): readonly ArcTree[] {
    return this.arcs;
  }

  find(arc: Arc): ArcTree | undefined {
    return this.arcs.find((a) => a.arc.start === arc.start && a.arc.end === arc.end);
  }

  get readyCount(): number {
    return this.arcs.filter((a) => a.state === TreeState.Ready).length;
  }

  /** A change of the store (Replica.onStored). */
  stored(key: string, before: readonly Version[], after: readonly Version[]): void {
    if (this.arcs.length === 0) return;
    const hash = keyHash(key);
    const t = this.arcOf(hash);
    if (!t) return;
    if (t.state === TreeState.Building && (t.scanned === undefined || compareInArc(t.arc, { hash, key }, t.scanned) > 0)) return;
    updateTree(t.tree, hash, versionsDigest(key, before), versionsDigest(key, after));
    t.changes++;
  }

  /** Builds the tree of `t` by a paced scan of its arc; false when the ring changed meanwhile (dropped). */
  async build(t: ArcTree, stopped: () => boolean): Promise<boolean> {
    if (!this.building.has(t)) return t.state === TreeState.Ready;
    const generation = this.generation;
    let n = 0;
    for (const span of spansOf(t.arc)) {
      for await (const entry of this.engine.scanRange(span, { batchSize: limits.rangeItemsMax })) {
        if (stopped() || generation !== this.generation) return false;
        t.scanned = { hash: entry.hash, key: entry.key };
        updateTree(t.tree, entry.hash, 0n, versionsDigest(entry.key, decodeOrEmpty(entry.record)));
        if (++n % limits.rangeItemsMax === 0) await this.pace(limits.rangeItemsMax);
      }
    }
    if (generation !== this.generation) return false;
    t.state = TreeState.Ready;
    t.scanned = undefined;
    this.building.delete(t);
    return true;
  }

  /**
   * Sets the given segments of `t` to what storage holds (`leaves`: XOR of
   * the digests a full scan of those segments found), when no change came
   * during that scan (`changesBefore`): a tree a build race left off heals.
   */
  correct(t: ArcTree, leaves: ReadonlyMap<number, bigint>, segments: readonly number[], changesBefore: number): number {
    if (t.changes !== changesBefore || t.state !== TreeState.Ready) return 0;
    let fixed = 0;
    for (const s of segments) {
      const want = leaves.get(s) ?? 0n;
      if (t.tree.segments[s] !== want) {
        setSegment(t.tree, s, want);
        fixed++;
      }
    }
    return fixed;
  }

  private async pace(keys: number): Promise<void> {
    this.nextBuildAtMs = Math.max(this.nextBuildAtMs, this.clock.monotonicMs()) + (keys * 1000) / limits.aaeBuildKeysPerSecond;
    const wait = this.nextBuildAtMs - this.clock.monotonicMs();
    if (wait > 0) await new Promise<void>((r) => this.clock.setTimer(wait, r));
  }

  /** The replicated arc holding `hash`: the first arc whose end is at or after it, else the wrapping one. */
  private arcOf(hash: bigint): ArcTree | undefined {
    if (this.ends.length === 0) return undefined;
    let lo = 0;
    let hi = this.ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ends[mid]! < hash) lo = mid + 1;
      else hi = mid;
    }
    const end = this.ends[lo === this.ends.length ? 0 : lo];
    return end === undefined ? undefined : this.byEnd.get(end);
  }
}

/** Scan order within an arc: from just after its start, wrapping past zero, then key bytes. */
export function compareInArc(arc: Arc, a: HashCursor, b: HashCursor): number {
  const offset = (h: bigint) => (h - arc.start - 1n) & hashMax;
  return compareHashOrder({ hash: offset(a.hash), key: a.key }, { hash: offset(b.hash), key: b.key });
}

/** Hash order, then key bytes (UTF-8), as storage orders them. */

export function decodeOrEmpty(record: Uint8Array): Version[] {
  try {
    return decodeRecord(record);
  } catch {
    return []; // undecodable: counts as absent (the exchange then asks the peers for it)
  }
}

export function treeName(t: ArcTree): string {
  return arcName(t.arc);
}

export { segmentOf };
