/**
 * The convict schema for NodeConfig: every key with a doc, a format, a
 * default, its GODDB_* variable and, where one exists, its flag (`arg`).
 * Loading and validation are in load.ts; the flags derived from it in flags.ts.
 */
import type convict from 'convict';
import { limits } from '../core/limits.js';
import { EngineKind, SyncMode } from '../storage/engine.js';
import type { NodeConfig } from './types.js';
import { durationFormat, gib, intFormat, logLevels, mib, port, quorumNumber, sizeFormat } from './formats.js';

export const configSchema: convict.Schema<NodeConfig> = {
  nodeId: {
    doc: 'This node\'s id, unique in the cluster; a subject token. Empty: read from the data directory (node.json), else generated as n-<8 hex>.',
    format: 'goddb-token-or-empty',
    default: '',
    env: 'GODDB_NODE_ID',
    arg: 'node-id',
  },
  cluster: {
    doc: 'Cluster name; nodes only talk to nodes of the same cluster (god.<cluster>.* subjects).',
    format: 'goddb-token',
    default: 'goddb',
    env: 'GODDB_CLUSTER',
    arg: 'cluster',
  },
  dataDir: {
    doc: 'Directory for durable data. Holds node.json (the node\'s durable id and vnode count) and, for lmdb, the data. Empty: ./data/<nodeId>.',
    format: 'goddb-string',
    default: '',
    env: 'GODDB_DATA_DIR',
    arg: 'data-dir',
  },
  http: {
    host: {
      doc: 'Address the HTTP port (health, metrics) listens on.',
      format: 'goddb-host',
      default: '127.0.0.1',
      env: 'GODDB_HTTP_HOST',
      arg: 'http-host',
    },
    port: {
      doc: 'HTTP port (health, metrics); 0 picks any free port. The seed\'s -port.',
      format: port,
      default: 0,
      env: 'GODDB_HTTP_PORT',
      arg: 'port',
    },
  },
  nats: {
    servers: {
      doc: 'NATS server URLs, comma-separated in env and flags. The seed\'s -discovery.',
      format: 'goddb-server-list',
      default: ['nats://127.0.0.1:4222'],
      env: 'GODDB_NATS_SERVERS',
      arg: 'discovery',
    },
    user: { doc: 'NATS user name.', format: 'goddb-string', default: '', env: 'GODDB_NATS_USER', arg: 'nats-user' },
    pass: { doc: 'NATS password.', format: 'goddb-string', default: '', env: 'GODDB_NATS_PASS', arg: 'nats-pass', sensitive: true },
    token: { doc: 'NATS token.', format: 'goddb-string', default: '', env: 'GODDB_NATS_TOKEN', arg: 'nats-token', sensitive: true },
    nkeySeedFile: {
      doc: 'File holding an nkey seed for NATS authentication.',
      format: 'goddb-string',
      default: '',
      env: 'GODDB_NATS_NKEY_SEED_FILE',
      arg: 'nats-nkey',
    },
    credsFile: {
      doc: 'NATS .creds file (JWT and nkey seed).',
      format: 'goddb-string',
      default: '',
      env: 'GODDB_NATS_CREDS_FILE',
      arg: 'nats-creds',
    },
    tls: {
      caFile: { doc: 'CA certificate file for NATS TLS.', format: 'goddb-string', default: '', env: 'GODDB_NATS_TLS_CA_FILE', arg: 'nats-tls-ca' },
      certFile: { doc: 'Client certificate file for NATS TLS.', format: 'goddb-string', default: '', env: 'GODDB_NATS_TLS_CERT_FILE', arg: 'nats-tls-cert' },
      keyFile: { doc: 'Client key file for NATS TLS.', format: 'goddb-string', default: '', env: 'GODDB_NATS_TLS_KEY_FILE', arg: 'nats-tls-key' },
      enabled: { doc: 'Require TLS to NATS (implied by a CA or certificate file).', format: 'goddb-boolean', default: false, env: 'GODDB_NATS_TLS', arg: 'nats-tls' },
    },
    connectWaitMs: {
      doc: 'How long a starting worker keeps trying to reach NATS (logging each failed attempt, at most one line per 10 s) before it exits with an error; 0 tries forever. Once connected, a worker reconnects for as long as it takes.',
      format: durationFormat(0, 7 * 24 * 3600_000),
      default: 60_000,
      env: 'GODDB_NATS_CONNECT_WAIT_MS',
      arg: 'nats-connect-wait',
    },
  },
  storage: {
    engine: {
      doc: 'Storage engine: lmdb (embedded, durable), redis (the seed\'s backend) or memory (tests).',
      format: Object.values(EngineKind),
      default: EngineKind.Lmdb,
      env: 'GODDB_STORAGE_ENGINE',
      arg: 'engine',
    },
    redis: {
      host: { doc: 'Redis host (engine redis).', format: 'goddb-host', default: '127.0.0.1', env: 'GODDB_REDIS_HOST', arg: 'redis-host' },
      port: {
        doc: 'Redis port (engine redis). The seed\'s -redisport, which also selects engine redis.',
        format: port,
        default: 6379,
        env: 'GODDB_REDIS_PORT',
        arg: 'redisport',
      },
      db: { doc: 'Redis database number.', format: intFormat(0, 1_000_000), default: 0, env: 'GODDB_REDIS_DB' },
      password: { doc: 'Redis password.', format: 'goddb-string', default: '', env: 'GODDB_REDIS_PASSWORD', sensitive: true },
    },
    lmdb: {
      mapSizeBytes: {
        doc: 'LMDB map size: the most data the node can hold (engine lmdb); bytes or like 1GiB.',
        format: sizeFormat(mib, Number.MAX_SAFE_INTEGER),
        default: gib,
        env: 'GODDB_LMDB_MAP_SIZE_BYTES',
        arg: 'lmdb-map-size',
      },
    },
    sync: {
      doc: 'When an lmdb write is acknowledged: always (after its commit is fsynced; writes that arrive during a commit share the next one and its fsync) or periodic (once the commit is in the OS; fsynced every storage.syncIntervalMs and on close: a process crash loses nothing, a power loss what came after the last sync). Does not apply to redis (its appendfsync decides) or memory.',
      format: Object.values(SyncMode),
      default: SyncMode.Always,
      env: 'GODDB_STORAGE_SYNC',
      arg: 'sync',
    },
    syncIntervalMs: {
      doc: 'With storage.sync periodic: time between two fsyncs of the lmdb environment (the most a power loss can lose); ms or like 1s. 10 ms to 10 min.',
      format: durationFormat(10, 600_000),
      default: 1000,
      env: 'GODDB_STORAGE_SYNC_INTERVAL_MS',
      arg: 'sync-interval',
    },
  },
  ring: {
    virtualNodes: {
      doc: 'Virtual nodes (tokens) per node on the hash ring. The seed\'s -virtualnodes.',
      format: intFormat(1, limits.virtualNodesMax),
      default: 10,
      env: 'GODDB_VIRTUAL_NODES',
      arg: 'virtualnodes',
    },
  },
  quorum: {
    replication: {
      doc: `Replicas per key (N), 1 to ${limits.replicationMax}. The seed's -replication.`,
      format: quorumNumber,
      default: 3,
      env: 'GODDB_REPLICATION',
      arg: 'replication',
    },
    readQuorum: { doc: 'Replicas that must answer a read (R), 1 to N. The seed\'s -readquorum.', format: quorumNumber, default: 2, env: 'GODDB_READ_QUORUM', arg: 'readquorum' },
    writeQuorum: { doc: 'Replicas that must acknowledge a write (W), 1 to N. The seed\'s -writequorum.', format: quorumNumber, default: 2, env: 'GODDB_WRITE_QUORUM', arg: 'writequorum' },
  },
  gossip: {
    enabled: { doc: 'Run gossip membership. The seed\'s -enablegossip.', format: 'goddb-boolean', default: true, env: 'GODDB_GOSSIP_ENABLED', arg: 'enablegossip' },
    intervalMs: {
      doc: 'Gossip interval; ms or like 1s. The seed\'s -gossip.',
      format: durationFormat(1, 3_600_000),
      default: 1000,
      env: 'GODDB_GOSSIP_INTERVAL_MS',
      arg: 'gossip',
    },
    failureTimeoutMs: {
      doc: 'Silence after which a peer is marked down; must exceed the gossip interval.',
      format: durationFormat(1, 3_600_000),
      default: 3000,
      env: 'GODDB_FAILURE_TIMEOUT_MS',
      arg: 'failure-timeout',
    },
    phiConvictThreshold: {
      doc: 'A peer whose phi (suspicion from its heartbeat gaps; phi accrual) passes this is marked down: Cassandra\'s phi_convict_threshold. At the default 1 s interval, 8 marks a silent peer down within 2 s.',
      format: intFormat(1, 32),
      default: 8,
      env: 'GODDB_PHI_CONVICT_THRESHOLD',
      arg: 'phi-convict-threshold',
    },
    peers: {
      doc: 'Node ids of the initial cluster, comma-separated in env and flags. The seed\'s -peers.',
      format: 'goddb-token-list',
      default: [],
      env: 'GODDB_PEERS',
      arg: 'peers',
    },
    fanout: {
      doc: 'Members a node exchanges member records with each gossip round (the seed\'s -peers when given a number).',
      format: intFormat(1, 64),
      default: limits.gossipFanoutDefault,
      env: 'GODDB_GOSSIP_FANOUT',
      arg: 'gossip-fanout',
    },
    startupWaitMs: {
      doc: 'How long a starting node waits to hear its peers before serving anyway.',
      format: durationFormat(0, 3_600_000),
      default: 5000,
      env: 'GODDB_STARTUP_WAIT_MS',
      arg: 'startup-wait',
    },
  },
  handoff: {
    bytesPerSecond: {
      doc: 'Most bytes per second a node pulls when it takes ranges from their old owners after the ring changes (ownership handoff); bytes or like 50MiB.',
      format: sizeFormat(1, Number.MAX_SAFE_INTEGER),
      default: limits.handoffBytesPerSecondDefault,
      env: 'GODDB_HANDOFF_BYTES_PER_SECOND',
      arg: 'handoff-bytes-per-second',
    },
    ringDelayMs: {
      doc: 'Wait between hearing of a ring change and streaming ranges for it, so every coordinator already writes to the new owners (Cassandra\'s ring_delay); ms or like 3s.',
      format: durationFormat(0, 3_600_000),
      default: limits.ringDelayMsDefault,
      env: 'GODDB_RING_DELAY_MS',
      arg: 'ring-delay',
    },
  },
  hints: {
    sloppyQuorum: {
      doc: 'Sloppy quorum: the hint a write leaves on the next healthy member for a replica that is down counts toward W (Dynamo 4.6). Off by default (strict quorum: hints are written but not counted, 503 when too few replicas are up), because a write acknowledged through hints can lose to an older one stamped by a faster clock. A request may override it with KV-Sloppy.',
      format: 'goddb-boolean',
      default: false,
      env: 'GODDB_SLOPPY_QUORUM',
      arg: 'sloppy-quorum',
    },
    windowMs: {
      doc: 'Hints whose newest version is older than this are dropped, and a member down longer gets no new ones (Cassandra\'s max_hint_window); twice it must stay below the tombstone grace period; ms or like 3h.',
      format: durationFormat(1, 7 * 24 * 3_600_000),
      default: limits.hintWindowMsDefault,
      env: 'GODDB_HINT_WINDOW_MS',
      arg: 'hint-window',
    },
    bytesMax: {
      doc: 'Most bytes of hints a node keeps for members that are down; new hints are refused past it (507); bytes or like 256MiB.',
      format: sizeFormat(1, Number.MAX_SAFE_INTEGER),
      default: limits.hintsBytesMaxDefault,
      env: 'GODDB_HINTS_BYTES_MAX',
      arg: 'hints-bytes-max',
    },
  },
  gc: {
    graceSeconds: {
      doc: 'Tombstone grace period in seconds (Cassandra\'s gc_grace_seconds): a delete, or a TTL value past its expiry, is purged only this long after it and once every replica holds it alike; repair must reach every replica within it. Must exceed twice hints.windowMs. Default 10 days; as low as 1 for tests.',
      format: intFormat(1, limits.ttlSecondsMax),
      default: 864_000,
      env: 'GODDB_GC_GRACE_SECONDS',
      arg: 'gc-grace-seconds',
    },
    intervalMs: {
      doc: 'Time between purge sweeps of a node\'s store (each resumes where the last stopped); ms or like 1m.',
      format: durationFormat(1, 24 * 3_600_000),
      default: 60_000,
      env: 'GODDB_GC_INTERVAL_MS',
      arg: 'gc-interval',
    },
    keysPerSecond: {
      doc: 'Purge sweep budget: keys scanned per second of interval (a sweep scans at most keysPerSecond x intervalMs / 1000 keys).',
      format: intFormat(1, 1_000_000),
      default: 1000,
      env: 'GODDB_GC_KEYS_PER_SECOND',
      arg: 'gc-keys-per-second',
    },
  },
  antiEntropy: {
    enabled: {
      doc: 'Active anti-entropy: each node keeps a tictac hash tree per range it replicates and compares it with the other replicas on a schedule, repairing the keys that differ (false: only read repair and hinted handoff).',
      format: 'goddb-boolean',
      default: true,
      env: 'GODDB_ANTI_ENTROPY_ENABLED',
      arg: 'anti-entropy-enabled',
    },
    intervalMs: {
      doc: 'Wait between two anti-entropy rounds; each round compares every range the node replicates with one other replica (rotating); ms or like 5s.',
      format: durationFormat(10, 3_600_000),
      default: limits.aaeIntervalMsDefault,
      env: 'GODDB_ANTI_ENTROPY_INTERVAL_MS',
      arg: 'anti-entropy-interval',
    },
    keysPerSecond: {
      doc: 'Most keys per second a node repairs by anti-entropy (each key: versions exchanged both ways with one replica).',
      format: intFormat(1, 10_000_000),
      default: limits.aaeKeysPerSecondDefault,
      env: 'GODDB_ANTI_ENTROPY_KEYS_PER_SECOND',
      arg: 'anti-entropy-keys-per-second',
    },
    bytesPerSecond: {
      doc: 'Most bytes per second a node repairs by anti-entropy; bytes or like 16MiB.',
      format: sizeFormat(1, Number.MAX_SAFE_INTEGER),
      default: limits.aaeBytesPerSecondDefault,
      env: 'GODDB_ANTI_ENTROPY_BYTES_PER_SECOND',
      arg: 'anti-entropy-bytes-per-second',
    },
    keysPerExchange: {
      doc: 'Most keys of one range each side lists in one anti-entropy exchange (bounds the memory of an exchange); a range with more differing keys goes on where the last exchange stopped.',
      format: intFormat(16, 10_000_000),
      default: limits.aaeKeysPerExchangeMax,
      env: 'GODDB_ANTI_ENTROPY_KEYS_PER_EXCHANGE',
      arg: 'anti-entropy-keys-per-exchange',
    },
  },
  requestTimeoutMs: {
    doc: 'How long a coordinator waits for replicas before answering 504.',
    format: durationFormat(1, 600_000),
    default: 2000,
    env: 'GODDB_REQUEST_TIMEOUT_MS',
    arg: 'request-timeout',
  },
  readSpeculativeMs: {
    doc: 'A read asks R replicas first and one more when they have not answered within this (or at once when one fails); Cassandra\'s speculative retry.',
    format: durationFormat(1, 600_000),
    default: 50,
    env: 'GODDB_READ_SPECULATIVE_MS',
    arg: 'read-speculative',
  },
  maxClockSkewMs: {
    doc: 'Largest clock difference tolerated between nodes, and between a client context and a node: a timestamp or counter further ahead of the receiver\'s clock is refused (400 from clients, a logged refusal from peers).',
    format: durationFormat(1, 24 * 3600_000),
    default: limits.clockSkewMsMaxDefault,
    env: 'GODDB_MAX_CLOCK_SKEW_MS',
    arg: 'max-clock-skew',
  },
  defaultTtlSeconds: {
    doc: 'Time to live, in seconds, of a put that sends no KV-TTL header (0: keys live until deleted). Expiry is decided by the reading coordinator\'s HLC.',
    format: intFormat(0, limits.ttlSecondsMax),
    default: 0,
    env: 'GODDB_DEFAULT_TTL_SECONDS',
    arg: 'default-ttl-seconds',
  },
  conflictPolicy: {
    doc: 'How concurrent versions resolve: lww (latest timestamp, ties by node id) or siblings (a get returns every concurrent value; a put with its context resolves them). The same on every node.',
    format: ['lww', 'siblings'],
    default: 'lww',
    env: 'GODDB_CONFLICT_POLICY',
    arg: 'conflict-policy',
  },
  siblingsMax: {
    doc: 'Under conflictPolicy siblings: the most siblings a key keeps; past it the oldest collapse by LWW (goddb_siblings_collapsed_total).',
    format: intFormat(1, limits.siblingsMax),
    default: limits.siblingsMax,
    env: 'GODDB_SIBLINGS_MAX',
    arg: 'siblings-max',
  },
  limits: {
    keyBytesMax: {
      doc: 'Largest key in UTF-8 bytes.',
      format: intFormat(1, limits.keyBytesMax),
      default: limits.keyBytesMax,
      env: 'GODDB_KEY_BYTES_MAX',
    },
    valueBytesMax: {
      doc: 'Largest value in bytes; at most 1 MiB - 8 KiB so a value and its headers fit the NATS max_payload.',
      format: sizeFormat(1, Number.MAX_SAFE_INTEGER),
      default: limits.valueBytesMaxDefault,
      env: 'GODDB_VALUE_BYTES_MAX',
    },
  },
  log: {
    level: { doc: 'Log level.', format: [...logLevels], default: 'info', env: 'GODDB_LOG_LEVEL', arg: 'log-level' },
  },
};

