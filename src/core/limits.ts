/**
 * Every bound in one place (TigerStyle: limits are named, units last).
 * Configurable ones are defaults for the convict schema; the rest are fixed.
 */
export const limits = {
  /** UTF-8 bytes of a key. Cassandra allows 64 KiB; subjects want far less. */
  keyBytesMax: 1024,
  /**
   * UTF-8 bytes of the longest key the SDK and the CLI send in a subject;
   * longer ones travel in a header. nats-server closes the connection of a
   * client whose protocol line (subject, reply subject, sizes) is over its
   * max_control_line (4 KiB by default, and an operator may lower it).
   */
  subjectKeyBytesMax: 256,
  /** UTF-8 bytes of one header value a node sends (an error message quoting a key is cut to it). */
  headerValueBytesMax: 4 * 1024,
  /**
   * Keys whose ring position a process remembers (core/ring.ts keyHash): an
   * operation hashes its key once per process instead of at every step
   * (placement, storage key, anti-entropy tree). Forgotten all at once past it.
   */
  keyHashesRememberedMax: 4096,
  /**
   * Distinct members remembered per token of a ring, clockwise from it (core/placement.ts):
   * every operation asks for its key's replicas, and a ring never changes. Past the
   * replication factor most clusters use; a longer walk is computed each time.
   */
  placementWalkRememberedMax: 8,
  /** Default largest value; must stay under the NATS max_payload (1 MiB by default) less headers. */
  valueBytesMaxDefault: 1024 * 1024 - 8 * 1024,
  /** Entries a vector clock keeps before the oldest counters are pruned (Riak's small_vclock). */
  vclockEntriesMax: 32,
  /**
   * Entries a decoded clock may have: a read's context merges the clocks of
   * up to siblingsMax versions, each pruned to vclockEntriesMax.
   */
  clockEntriesDecodeMax: 32 * 16,
  /** Characters of a KV-Context header (base64url of the CBOR clock). */
  contextCharsMax: 64 * 1024,
  /** Default largest difference between two nodes' clocks (or a client context and a node) before a timestamp is refused. */
  clockSkewMsMaxDefault: 60_000,
  /** Seconds of the longest time to live a put may ask for (KV-TTL, defaultTtlSeconds): ten years. */
  ttlSecondsMax: 10 * 365 * 24 * 3600,
  /** Attempts a coordinator makes to write a version that supersedes what replicas hold (each after a stale refusal). */
  staleWriteAttemptsMax: 4,
  /** Concurrent versions a replica keeps for one key before collapsing them by last-writer-wins. */
  siblingsMax: 16,
  /** Replication factor bounds. */
  replicationMax: 16,
  virtualNodesMax: 1024,
  /** Requests a coordinator has in flight before it refuses new ones with 503. */
  inflightRequestsMax: 10_000,
  /** Read repairs running in the background on one coordinator; past it, repair is skipped. */
  readRepairsInflightMax: 1_000,
  /** Bytes of values being written through one coordinator (a 1 MiB value counts 1 MiB). */
  inflightBytesMax: 256 * 1024 * 1024,
  /** Replica requests outstanding on one node's shared inbox. */
  pendingRepliesMax: 100_000,
  /** Items in one replica batch message (coordinator to one replica, one event-loop turn). */
  replicaBatchItemsMax: 256,
  /** Payload bytes of one replica batch; a larger item travels alone. Well under max_payload. */
  replicaBatchBytesMax: 256 * 1024,
  /** Heartbeat gaps the failure detector remembers per member. */
  heartbeatGapsMax: 100,
  /**
   * Floor on the deviation of heartbeat gaps: at a 1 s interval and phi 8, a
   * silent member is convicted about 1.84 s after its last heartbeat.
   */
  heartbeatGapStdDevMinMs: 150,
  /** Members a node keeps track of. */
  membersMax: 1024,
  /**
   * Tokens of a ring published to clients (`kv.ring`, 8 bytes each): 64
   * members of 256 virtual nodes take 16,384 (130 KiB); this bound keeps an
   * answer within 1 MiB, NATS's default max_payload. A larger ring answers
   * 503 and the SDK routes through any node instead.
   */
  ringMapTokensMax: 65_536,
  /** Characters of a member's incarnation (a UUID has 36). */
  incarnationCharsMax: 64,
  /** Probes of unverified members in flight at once; the other claims wait their turn (at most membersMax of them). */
  probesInflightMax: 64,
  /** Keys being written concurrently on one replica (each holds a per-key lock). */
  keyLocksMax: 100_000,
  /** Default rate of an ownership handoff (issue 9: 50 MB/s). */
  handoffBytesPerSecondDefault: 50 * 1024 * 1024,
  /** Keys in one handoff batch to one target (one replica put message, limits.replicaBatchItemsMax at most). */
  handoffBatchItemsMax: 128,
  /** Bytes of one handoff batch to one target; a larger record travels alone. */
  handoffBatchBytesMax: 128 * 1024,
  /** Handoff batches awaiting their acknowledgement at once, over all targets (bounds memory). */
  handoffBatchesInflightMax: 4,
  /** Entries a handoff reads from storage per scan batch. */
  handoffScanBatchSize: 256,
  /** Wait before a fold that left keys unsent (a target down, storage failing) runs again. */
  handoffRetryMs: 5_000,
  /** Finished and superseded transfers a node remembers for status output. */
  handoffTransfersKeptMax: 64,
  /** Items in one page of a range move (a RangeReply). */
  rangeItemsMax: 512,
  /** Payload bytes a range page asks for: a tenth of a second at the configured rate, at most this. */
  rangePageBytesMax: 256 * 1024,
  /** Replica requests to one member that time out in a row (with no answer from it for a request timeout) before a coordinator routes around it for two request timeouts (gray failures). */
  replicaTimeoutsToShun: 2,
  /** Spans a node pulls at once during a move (each one page at a time). */
  movePullsInflightMax: 4,
  /** Wait before a move that could not finish (a source down or refusing) tries again. */
  moveRetryMs: 1_000,
  /** A node asks this many random members for newer member records each gossip round, by default (the seed's -peers as a number). */
  gossipFanoutDefault: 3,
  /** Default wait between hearing a ring change and streaming for it, so every coordinator writes to the pending owners first (Cassandra's ring_delay). */
  ringDelayMsDefault: 3_000,
  /** A node asks its engine how many keys it holds at most this often; status and /metrics read the cached count. */
  keyCountRefreshMs: 1_000,
  // Hinted handoff (issue 10: node/hints). The window is Cassandra's max_hint_window (3 h); it must
  // stay far below the tombstone grace period (10 days), so a hint never outlives a purged tombstone.
  /** Default age past which a hint is dropped, and past which a down owner gets no new hints. */
  hintWindowMsDefault: 3 * 3600 * 1000,
  /** Default bytes of hints one node keeps in all; new hints are refused past it. */
  hintsBytesMaxDefault: 256 * 1024 * 1024,
  /** How often a node tries to deliver its hints to owners that are up again. */
  hintReplayIntervalMs: 1_000,
  /** Hints read from the hint store per scan batch while replaying. */
  hintScanBatchSize: 128,
  /** Distinct owners whose hint counts a node tracks (members bound them too). */
  hintOwnersMax: 1024,
  // Anti-entropy (issue 10: node/aae, core/tictac.ts). The defaults compare every arc every 5 s
  // and repair 10,000 keys a second, so 100k keys per node converge well within the 30 s promise.
  /** Default wait between two anti-entropy rounds (each compares every arc this node replicates once). */
  aaeIntervalMsDefault: 5_000,
  /** Default keys a node repairs per second by anti-entropy (each key: versions both ways). */
  aaeKeysPerSecondDefault: 10_000,
  /** Default bytes a node repairs per second by anti-entropy. */
  aaeBytesPerSecondDefault: 16 * 1024 * 1024,
  /** (key, digest) pairs in one page of an anti-entropy key list (an AaeKeysReply). */
  aaeKeysPageItemsMax: 1024,
  /** Stored entries one key-list page scans at most (the segments asked may be sparse in the arc). */
  aaeScanEntriesPerPageMax: 8192,
  /** Default keys compared in one exchange of one arc (each side's list); the next exchange of the arc goes on from there. */
  aaeKeysPerExchangeMax: 16_384,
  /**
   * Longest pause between an anti-entropy round's two looks at the trees
   * (a quarter of the interval when that is shorter): writes in flight at
   * the first look have landed by the second, so their segments agree again.
   */
  aaeConfirmDelayMsMax: 500,
  /** Differing keys repaired at once (one replica get and put batch each way). */
  aaeRepairBatchKeys: 128,
  // Conditional writes (node/paxos, issue 12).
  /** Longest random pause between two rounds of a contended conditional write (it grows 5 ms per attempt up to this). */
  paxosBackoffMsMax: 100,
  /** Keys a node reads per second while building its trees (local scans only). */
  aaeBuildKeysPerSecond: 200_000,
  /** A tree build waits this long to read a raced key again when every key lock is taken (replica busy). */
  aaeSettleRetryMs: 10,
  // The change feed (node/changes, client/watch.ts; issue 12).
  /** Bytes a node's NATS connection may hold unsent before change events are dropped (counted) rather than queued. */
  changesOutboundBytesMax: 8 * 1024 * 1024,
  /** Events a watcher holds for a consumer that reads slower than they arrive; past it new ones are dropped (counted). */
  watchQueuedEventsMax: 10_000,
  /** Keys whose newest event a watcher remembers (to drop duplicates and older events); the least recently changed is forgotten past it. */
  watchKeysMax: 100_000,
  // Key listing (node/keys, issue 12: `kv.keys`).
  /** Keys in one page a client gets (KV-Keys-Limit may ask for fewer), and entries in one replica's KeysReply. */
  keysPageItemsMax: 1000,
  /** Stored entries a replica scans for one KeysRequest (a prefix that matches few keys still answers promptly). */
  keysScanEntriesPerPageMax: 8192,
  /** Spans (parts of ring arcs) one client page visits at most before it answers, possibly with fewer keys. */
  keysSpansPerPageMax: 64,
  /** Payload bytes of one client page at most (less when the server's max_payload is smaller). */
  keysPageBytesMax: 256 * 1024,
} as const;

export interface QuorumSettings {
  replication: number;
  readQuorum: number;
  writeQuorum: number;
}

/** Asserts the relationships between quorum settings; returns a message or undefined. */
export function quorumProblem(q: QuorumSettings): string | undefined {
  const { replication: n, readQuorum: r, writeQuorum: w } = q;
  if (!Number.isInteger(n) || n < 1 || n > limits.replicationMax) {
    return `replication must be an integer from 1 to ${limits.replicationMax}, got ${n}`;
  }
  if (!Number.isInteger(r) || r < 1 || r > n) return `read quorum must be an integer from 1 to N=${n}, got ${r}`;
  if (!Number.isInteger(w) || w < 1 || w > n) return `write quorum must be an integer from 1 to N=${n}, got ${w}`;
  return undefined;
}
