/**
 * This node's tictac trees (core/tictac.ts): one per arc of the serving ring
 * it replicates. Within an arc every key has the same N replicas
 * (core/moves.ts arcsOf), so each replica of the arc keeps a tree over the
 * same key set, and two replicas compare their trees of one arc.
 *
 * A tree is built by scanning its arc in key-hash order, a batch at a time,
 * paced, and kept up to date from every change of the store
 * (Replica.onStored, called under the key's lock: the old digest XORed out,
 * the new one in), so no write ever rescans anything. A change during the
 * build is applied only to keys the scan has passed; one ahead of it the
 * scan reads itself. Where the two could disagree the key is read again
 * under its lock (`settle`): a key written while its batch was being read
 * (the batch may hold the record before or after that write), and a key
 * whose write is under way when the batch is applied (its new record may be
 * committed, and read, before the write tells the tree). Every other entry
 * of a batch is exactly what the store held when the batch was applied, as
 * the tree then holds nothing of it and every later change arrives with it
 * as `before`. When the serving ring changes, the trees of arcs it keeps
 * whole stay, and those of new arcs are built as the rounds reach them.
 * Memory: arcs x 1024 segments x 8 bytes, whatever the number of keys.
 */
import { compareHashOrder } from '../../storage/hash_order.js';
import type { Clock } from '../../core/clock.js';
import { limits } from '../../core/limits.js';
import { arcName, arcsOf, hashMax, inArc, spansOf, type Arc } from '../../core/moves.js';
import { keyHash, preferenceList, type Ring } from '../../core/ring.js';
import { digestVersionDefault, newTree, segmentOf, setSegment, updateTree, versionsDigest, type DigestVersion, type TictacTree } from '../../core/tictac.js';
import { ErrorCode, GodDbError } from '../../core/errors.js';
import type { Version } from '../../core/version.js';
import { decodeRecord } from '../../protocol/codec.js';
import type { HashCursor, HashedEntry, StorageEngine } from '../../storage/engine.js';
import { Pacer } from '../pacer.js';

export const TreeState = { Building: 'building', Ready: 'ready' } as const;
export type TreeState = (typeof TreeState)[keyof typeof TreeState];

/**
 * The store's per-key locks, as the replica holds them for every
 * read-merge-write (node/replica/replica.ts): a build reads a key again
 * holding its lock when a write may have raced the batch it came in.
 */
export interface KeyLocks {
  /** The keys whose writes hold or wait for their lock now. */
  writing(): Iterable<string>;
  /** Runs `fn` holding the key's lock (refused, GodDbError, when too many keys are locked). */
  holding<T>(key: string, fn: () => Promise<T>): Promise<T>;
}

/** How far a build has scanned: every key at or before it in the arc's order (with `key` undefined, every key of `hash` too). */
export interface ScanMark {
  hash: bigint;
  key: string | undefined;
}

export interface ArcTree {
  arc: Arc;
  /** The arc's replicas in the serving ring (this node among them). */
  replicas: string[];
  tree: TictacTree;
  state: TreeState;
  /** While building: how far the scan has gone (changes at or before it are applied, others left to the scan). */
  scanned: ScanMark | undefined;
  /** While a batch is read: keys ahead of the scan changed meanwhile (the batch may hold them either way). */
  touched: Set<string> | undefined;
  /** Keys the scan has passed whose digest is not in the tree yet: `settle` reads them again under their lock. */
  deferred: Set<string>;
  /** Changes applied so far (an exchange that recomputes segments checks none came meanwhile). */
  changes: number;
}

export class ArcTrees {
  /** Serving-ring arcs this node replicates, by end, sorted; with their trees. */
  private arcs: ArcTree[] = [];
  /** Ends of every arc of the ring (whether replicated here or not), sorted: to find a key's arc. */
  private ends: bigint[] = [];
  private ringKey = '';
  private readonly pacer: Pacer;
  /** Bumped when the trees are dropped: a build under way for the old ones stops. */
  private generation = 0;

  constructor(
    private readonly self: string,
    private readonly replication: number,
    private readonly engine: StorageEngine,
    private readonly clock: Clock,
    private readonly locks: KeyLocks,
    /** The digest format of every tree here (core/tictac.ts): a peer's tree compares only in the same. */
    readonly digest: DigestVersion = digestVersionDefault,
  ) {
    this.pacer = new Pacer(clock);
  }

  /** Keeps the trees for `ring` (fingerprint `key`): drops them all when the ring changed. */
  follow(ring: Ring, key: string): void {
    if (key === this.ringKey) return;
    this.ringKey = key;
    this.generation++;
    // A built tree whose arc the new ring keeps, start and end, covers the same keys: it stays (the
    // same object, kept up to date all along); only new arcs are built. A join splits a few arcs.
    const built = new Map(this.arcs.filter((t) => t.state === TreeState.Ready).map((t) => [arcName(t.arc), t]));
    const all = arcsOf([ring]);
    this.ends = all.map((a) => a.end);
    this.arcs = all.map((arc) => ({ arc, replicas: preferenceList(ring, arc.end, this.replication) }))
      .filter((a) => a.replicas.includes(this.self))
      .map((a) => {
        const kept = built.get(arcName(a.arc));
        if (kept === undefined) return { ...a, tree: newTree(), state: TreeState.Building, scanned: undefined, touched: undefined, deferred: new Set<string>(), changes: 0 };
        kept.replicas = a.replicas;
        return kept;
      });
    this.building = new Set(this.arcs.filter((t) => t.state === TreeState.Building));
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

  /** A change of the store (Replica.onStored, under the key's lock). */
  stored(key: string, before: readonly Version[], after: readonly Version[]): void {
    if (this.arcs.length === 0) return;
    const hash = keyHash(key);
    const t = this.arcOf(hash);
    if (!t) return;
    if (t.state === TreeState.Building) {
      if (t.deferred.has(key)) return; // its settle reads it after this change
      if (t.scanned === undefined || !passedBy(t.arc, { hash, key }, t.scanned)) {
        t.touched?.add(key);
        return; // the scan reads it (again, when touched while its batch was read)
      }
    }
    updateTree(t.tree, hash, versionsDigest(key, before, this.digest), versionsDigest(key, after, this.digest));
    t.changes++;
  }

  /** Builds the tree of `t` by a paced scan of its arc; false when the ring changed meanwhile (dropped) or `stopped`. */
  async build(t: ArcTree, stopped: () => boolean): Promise<boolean> {
    if (!this.building.has(t)) return t.state === TreeState.Ready;
    // A build cut short (the node stopping) starts over from nothing.
    Object.assign(t, { tree: newTree(), scanned: undefined, touched: undefined, changes: 0 });
    t.deferred.clear();
    const generation = this.generation;
    const gone = () => stopped() || generation !== this.generation;
    const batchSize = limits.rangeItemsMax;
    for (const span of spansOf(t.arc)) {
      let after: HashCursor | undefined;
      for (;;) {
        t.touched = new Set();
        const batch = await readBatch(this.engine, span, after, batchSize);
        if (gone()) return false;
        const last = batch.at(-1);
        // A short batch is the rest of the span: the scan has passed all of it.
        const mark: ScanMark = last && batch.length === batchSize ? { hash: last.hash, key: last.key } : { hash: span.toHash, key: undefined };
        this.apply(t, batch, mark);
        for (const key of [...t.deferred]) if (!(await this.settle(t, key, gone))) return false;
        if (batch.length < batchSize) break;
        after = mark as HashCursor;
        this.pacer.spent((batch.length * 1000) / limits.aaeBuildKeysPerSecond);
        await this.pacer.ready();
        if (gone()) return false;
      }
    }
    t.state = TreeState.Ready;
    t.scanned = undefined;
    this.building.delete(t);
    return true;
  }

  /**
   * One batch into the tree, at once (no await): each entry as read, except
   * the keys of the batch's range changed while it was read, or whose write
   * is under way (its record may be committed, read or not, before the tree
   * hears of it), whether the batch holds them or not: those are deferred.
   * Then the scan has passed up to `mark`.
   */
  private apply(t: ArcTree, batch: readonly HashedEntry[], mark: ScanMark): void {
    const raced = t.touched ?? new Set<string>();
    t.touched = undefined;
    for (const key of this.locks.writing()) raced.add(key);
    for (const key of raced) {
      const at = { hash: keyHash(key), key };
      if (inArc(at.hash, t.arc) && passedBy(t.arc, at, mark) && (t.scanned === undefined || !passedBy(t.arc, at, t.scanned))) t.deferred.add(key);
    }
    for (const entry of batch) {
      if (!t.deferred.has(entry.key)) updateTree(t.tree, entry.hash, 0n, versionsDigest(entry.key, decodeOrEmpty(entry.record), this.digest));
    }
    t.scanned = mark;
  }

  /** The deferred `key` read again and put in the tree, holding its lock (no change of it in between); false when gone. */
  private async settle(t: ArcTree, key: string, gone: () => boolean): Promise<boolean> {
    for (;;) {
      if (gone()) return false;
      try {
        await this.locks.holding(key, async () => {
          const record = await this.engine.get(key);
          if (!t.deferred.delete(key)) return;
          updateTree(t.tree, keyHash(key), 0n, record === undefined ? 0n : versionsDigest(key, decodeOrEmpty(record), this.digest));
        });
        return true;
      } catch (err) {
        // Every key lock taken (KeyLock's refusal): writes first, then again. Anything else (the
        // store failing) ends the build; the next round starts it over.
        if (!(err instanceof GodDbError && err.code === ErrorCode.QuorumNotMet)) throw err;
        await new Promise<void>((r) => this.clock.setTimer(limits.aaeSettleRetryMs, r));
      }
    }
  }

  /**
   * Sets the given segments of `t` to what storage holds (`leaves`: XOR of
   * the digests a full scan of those segments found), when no change came
   * during that scan (`changesBefore`): a tree a race left off heals. A
   * segment with a write under way is left alone: the scan may have read
   * its record, and the tree then hears of it as a change again.
   */
  correct(t: ArcTree, leaves: ReadonlyMap<number, bigint>, segments: readonly number[], changesBefore: number): number {
    if (t.changes !== changesBefore || t.state !== TreeState.Ready) return 0;
    const writing = new Set<number>();
    for (const key of this.locks.writing()) {
      const hash = keyHash(key);
      if (inArc(hash, t.arc)) writing.add(segmentOf(hash));
    }
    let fixed = 0;
    for (const s of segments) {
      const want = leaves.get(s) ?? 0n;
      if (!writing.has(s) && t.tree.segments[s] !== want) {
        setSegment(t.tree, s, want);
        fixed++;
      }
    }
    return fixed;
  }

  /**
   * Segments of the ready trees that differ from trees computed afresh from
   * the store (tests check a quiet node's trees: 0). Reads every key: not
   * for a serving node.
   */
  async audit(): Promise<number> {
    let differing = 0;
    for (const t of this.arcs) {
      if (t.state !== TreeState.Ready) continue;
      const fresh = newTree();
      for (const span of spansOf(t.arc)) {
        for await (const entry of this.engine.scanRange(span, { batchSize: limits.rangeItemsMax })) {
          updateTree(fresh, entry.hash, 0n, versionsDigest(entry.key, decodeOrEmpty(entry.record), this.digest));
        }
      }
      for (let s = 0; s < fresh.segments.length; s++) if (fresh.segments[s] !== t.tree.segments[s]) differing++;
    }
    return differing;
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

/** True when the scan has passed `at` (its digest is in the tree, or deferred). */
function passedBy(arc: Arc, at: HashCursor, mark: ScanMark): boolean {
  if (mark.key !== undefined) return compareInArc(arc, at, { hash: mark.hash, key: mark.key }) <= 0;
  return compareInArc(arc, { hash: at.hash, key: '' }, { hash: mark.hash, key: '' }) <= 0;
}

/** Up to `size` entries of the span after `after`, in one read of the engine. */
async function readBatch(engine: StorageEngine, span: { fromHash: bigint; toHash: bigint }, after: HashCursor | undefined, size: number): Promise<HashedEntry[]> {
  const batch: HashedEntry[] = [];
  for await (const entry of engine.scanRange(span, { batchSize: size, ...(after ? { after } : {}) })) {
    batch.push(entry);
    if (batch.length === size) break;
  }
  return batch;
}

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
