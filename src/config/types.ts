/**
 * The typed, validated, frozen configuration a node receives (built by
 * `loadConfig` in schema.ts from config files, environment and flags).
 * Nothing below src/config reads process.env or convict. Optional strings
 * are '' when unset (convict has no undefined).
 *
 * Config depends on the modules it configures, never the other way: the
 * engine names and the NATS options are defined by storage and transport,
 * and the node passes the values in.
 */
import type { EngineKind, SyncMode } from '../storage/engine.js';
import type { NatsOptions } from '../transport/nats.js';

export interface NodeConfig {
  /** '' when neither given nor generated: the node reads it from its data directory (src/node/membership/identity.ts). */
  nodeId: string;
  cluster: string;
  dataDir: string;
  http: { host: string; port: number };
  /** How to reach NATS, and how long a starting worker tries (connectWaitMs; 0: forever). */
  nats: NatsOptions & { connectWaitMs: number };
  storage: {
    engine: EngineKind;
    redis: { host: string; port: number; db: number; password: string };
    lmdb: { mapSizeBytes: number };
    /** lmdb only: when a write is acknowledged, and how often periodic mode fsyncs. */
    sync: SyncMode;
    syncIntervalMs: number;
  };
  ring: { virtualNodes: number };
  quorum: { replication: number; readQuorum: number; writeQuorum: number };
  gossip: {
    enabled: boolean;
    intervalMs: number;
    failureTimeoutMs: number;
    phiConvictThreshold: number;
    /** Node ids of the initial cluster; the node waits (up to startupWaitMs) to hear them before serving. */
    peers: string[];
    /** Members asked for newer member records each round. */
    fanout: number;
    startupWaitMs: number;
  };
  /** Range moves after a ring change (src/node/handoff/moves.ts): pulled at most at bytesPerSecond, ringDelayMs after the change. */
  handoff: { bytesPerSecond: number; ringDelayMs: number };
  /** Sloppy quorum and hinted handoff (src/node/hints): strict quorum when sloppyQuorum is false; hints kept windowMs, bytesMax in all. */
  hints: { sloppyQuorum: boolean; windowMs: number; bytesMax: number };
  /** Tombstone and TTL purge (src/node/gc): dead versions kept graceSeconds; a sweep every intervalMs scans keysPerSecond x interval keys. */
  gc: { graceSeconds: number; intervalMs: number; keysPerSecond: number };
  /** Active anti-entropy (src/node/aae): every intervalMs each arc's tictac tree is compared with a replica's; repairs paced to keysPerSecond and bytesPerSecond. */
  antiEntropy: { enabled: boolean; intervalMs: number; keysPerSecond: number; bytesPerSecond: number; keysPerExchange: number };
  requestTimeoutMs: number;
  /** A read asks R replicas, and one more if no quorum after this long. */
  readSpeculativeMs: number;
  /** Timestamps and context counters further ahead of this node's clock are refused (core/hlc.ts). */
  maxClockSkewMs: number;
  /** Time to live of a put without KV-TTL, in seconds; 0: none. */
  defaultTtlSeconds: number;
  conflictPolicy: 'lww' | 'siblings';
  /** Under `siblings`: the most siblings a key keeps (1 to limits.siblingsMax); past it the oldest collapse by LWW. */
  siblingsMax: number;
  limits: { keyBytesMax: number; valueBytesMax: number };
  log: { level: string };
}
