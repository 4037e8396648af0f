/**
 * A simulated GoD-DB cluster: real node code on a seeded SimBus with a fake
 * clock and memory engines that can fail. Each node has its own wall clock
 * (NodeClock: shared time plus a skew the test sets) and its own durable
 * state (a MemoryEngine and a MemoryMetaStore), which a restart keeps or
 * wipes. The seed comes from GODDB_SEED when set (to replay a failure) and
 * is always printed.
 */
import pino from 'pino';
import type { NodeConfig } from '../../src/config/types.js';
import { limits } from '../../src/core/limits.js';
import type { PlantedBug } from '../../src/core/paxos.js';
import type { DigestVersion } from '../../src/core/tictac.js';
import { union, visibleValue, type Version } from '../../src/core/version.js';
import { MemoryEngine } from '../../src/storage/memory.js';
import { MemoryMetaStore } from '../../src/storage/meta.js';
import { startNode, type GodDbNode } from '../../src/node/node.js';
import { clientRequest, Header, type ClientOp } from '../../src/protocol/subjects.js';
import { seededRandom, SimBus, type SimOptions, type SimTransport } from '../../src/transport/sim.js';
import { replyError, type InboundMessage, type Reply } from '../../src/transport/transport.js';
import { GodDbError } from '../../src/core/errors.js';
import { FakeClock } from './fake_clock.js';
import { NodeClock } from './node_clock.js';

export function simSeed(): number {
  const fromEnv = process.env['GODDB_SEED'];
  const seed = fromEnv ? Number(fromEnv) : Math.floor(Math.random() * 2 ** 31);
  console.log(`# simulation seed ${seed} (replay with GODDB_SEED=${seed})`);
  return seed;
}

export function simConfig(nodeId: string, peers: string[], overrides: Partial<NodeConfig> = {}): NodeConfig {
  return {
    nodeId,
    cluster: 'sim',
    dataDir: '',
    http: { host: '127.0.0.1', port: 0 },
    nats: { servers: [], user: '', pass: '', token: '', nkeySeedFile: '', credsFile: '', tls: { caFile: '', certFile: '', keyFile: '', enabled: false }, connectWaitMs: 0 },
    storage: { engine: 'memory', redis: { host: '127.0.0.1', port: 0, db: 0, password: '' }, lmdb: { mapSizeBytes: 1 << 20 }, sync: 'always', syncIntervalMs: 1000 },
    ring: { virtualNodes: 10 },
    quorum: { replication: 3, readQuorum: 2, writeQuorum: 2 },
    gossip: { enabled: true, intervalMs: 1000, failureTimeoutMs: 3000, phiConvictThreshold: 8, peers, fanout: 3, startupWaitMs: 5000 },
    handoff: { bytesPerSecond: 50 * 1024 * 1024, ringDelayMs: 1000 },
    hints: { sloppyQuorum: false, windowMs: 3 * 3600 * 1000, bytesMax: 256 * 1024 * 1024 },
    gc: { graceSeconds: 864_000, intervalMs: 60_000, keysPerSecond: 1000 },
    // Off unless a test turns it on: other simulations look at replicas before repair (read repair, handoff).
    antiEntropy: { enabled: false, intervalMs: 5_000, keysPerSecond: 10_000, bytesPerSecond: 16 * 1024 * 1024, keysPerExchange: limits.aaeKeysPerExchangeMax },
    requestTimeoutMs: 2000,
    readSpeculativeMs: 50,
    maxClockSkewMs: 60_000,
    defaultTtlSeconds: 0,
    conflictPolicy: 'lww',
    siblingsMax: limits.siblingsMax,
    limits: { keyBytesMax: 1024, valueBytesMax: 1024 * 1024 - 8192 },
    log: { level: 'silent' },
    ...overrides,
  };
}

export interface SimNode {
  id: string;
  node: GodDbNode;
  engine: MemoryEngine;
  /** The hint store's engine (node/hints), kept across restarts like `engine`. */
  hintEngine: MemoryEngine;
  /** Conditional writes' Paxos state (kept across a restart, lost with a wipe). */
  paxosEngine: MemoryEngine;
  meta: MemoryMetaStore;
  clock: NodeClock;
  transport: SimTransport;
  /** False between a crash and the restart. */
  up: boolean;
}

export interface ClientReply {
  code: number;
  value: string;
  message: string;
  header(name: string): string | undefined;
}

export interface SimClusterOptions {
  /** Bus settings beyond the seed and the clock. */
  bus?: Omit<SimOptions, 'seed' | 'clock'>;
  /** Each node's initial clock offset (ms, negative is behind); 0 when not given. */
  clockOffsetsMs?: Readonly<Record<string, number>>;
  /** A bug planted in every node's Paxos (test/sim/conditional.test.ts shows the checker finds it). */
  paxosBug?: PlantedBug;
}

export interface RestartOptions {
  /** A new disk: the node comes back with an empty engine and no metadata. */
  wipe: boolean;
  /** The restarted process's clock offset; unchanged when not given. */
  clockOffsetMs?: number;
}

const silent = pino({ level: 'silent' });

/** One simulated client process: its own connection, requests that do not move the clock. */
export class SimClient {
  constructor(
    readonly transport: SimTransport,
    private readonly timeoutMs: number,
  ) {}

  /** Resolves with the reply, or with the error's code (504 for a timeout, 503 for no responders). */
  async request(op: ClientOp, key: string, value: string | Uint8Array = '', headers: Record<string, string> = {}): Promise<ClientReply> {
    const { subject, keyHeader } = clientRequest(op, key);
    const h = keyHeader === undefined ? headers : { ...headers, [Header.Key]: keyHeader };
    const data = typeof value === 'string' ? new TextEncoder().encode(value) : value;
    let reply: Reply;
    try {
      reply = await this.transport.request(subject, data, { timeoutMs: this.timeoutMs, headers: h });
    } catch (err) {
      if (err instanceof GodDbError) return { code: err.code, value: '', message: err.message, header: () => undefined };
      throw err;
    }
    const err = replyError(reply);
    return {
      code: err ? err.code : 200,
      value: Buffer.from(reply.data).toString('utf8'),
      message: err?.message ?? '',
      header: (n) => reply.header(n),
    };
  }
}

export class SimCluster {
  readonly clock = new FakeClock();
  readonly bus: SimBus;
  readonly nodes = new Map<string, SimNode>();
  private readonly client: SimClient;
  private readonly offsets = new Map<string, number>();
  /** Node processes started so far (each gets its own seeded random). */
  private starts = 0;
  /** The newest protocol version a node speaks when it next starts (absent: the newest); 1 simulates a node not yet upgraded. */
  readonly protocols = new Map<string, number>();
  /** Per node: the digest format of its anti-entropy trees (NodeDeps.aaeDigest; default the newest). */
  readonly aaeDigests = new Map<string, DigestVersion>();
  private readonly paxosBug: PlantedBug | undefined;

  constructor(
    readonly seed: number,
    readonly ids: string[],
    private readonly overrides: Partial<NodeConfig> = {},
    opts: SimClusterOptions = {},
  ) {
    this.bus = new SimBus({ ...opts.bus, seed, clock: this.clock });
    this.paxosBug = opts.paxosBug;
    this.client = this.connectClient('client');
    for (const [id, offset] of Object.entries(opts.clockOffsetsMs ?? {})) this.offsets.set(id, offset);
  }

  async start(): Promise<void> {
    await this.clock.run(Promise.all(this.ids.map((id) => this.startOne(id))));
  }

  /** Like SIGKILL: the node's connection, subscriptions and timers vanish; its storage stays. */
  async crash(id: string): Promise<void> {
    const n = this.node(id);
    this.bus.kill(id);
    n.clock.halt();
    n.up = false;
  }

  /** Restarts a crashed node on the storage it had. */
  async revive(id: string): Promise<SimNode> {
    return this.clock.run(this.startOne(id, this.node(id).engine, this.node(id).meta, this.node(id).hintEngine, this.node(id).paxosEngine));
  }

  /**
   * Crashes the node (when up) and starts a new process for it, on the
   * storage it had or on a wiped one, with its clock where `clockOffsetMs`
   * says. Does not move the clock: the caller runs it (startup waits for peers).
   */
  restart(id: string, opts: RestartOptions): Promise<SimNode> {
    const n = this.node(id);
    if (n.up) void this.crash(id);
    if (opts.clockOffsetMs !== undefined) this.offsets.set(id, opts.clockOffsetMs);
    return opts.wipe ? this.startOne(id) : this.startOne(id, n.engine, n.meta, n.hintEngine, n.paxosEngine);
  }

  /** Sets a node's clock offset now: a skew, or a jump when it changes. */
  skew(id: string, offsetMs: number): void {
    this.offsets.set(id, offsetMs);
    const n = this.nodes.get(id);
    if (n) n.clock.offsetMs = offsetMs;
  }

  offsetOf(id: string): number {
    return this.offsets.get(id) ?? 0;
  }

  async startOne(id: string, engine = new MemoryEngine(), meta = new MemoryMetaStore(), hintEngine = new MemoryEngine(), paxosEngine = new MemoryEngine()): Promise<SimNode> {
    const clock = new NodeClock(this.clock, this.offsetOf(id));
    const transport = this.bus.connect(id, clock);
    // Seeded per node and per start, so a seed replays the gossip exchanges too.
    const random = seededRandom((this.seed ^ hashId(id)) + this.starts++);
    const node = await startNode(simConfig(id, this.ids, this.overrides), { logger: silent, transport, engine, hintEngine, paxosEngine, clock, http: false, meta, protocolVersion: this.protocols.get(id), ...(this.aaeDigests.has(id) ? { aaeDigest: this.aaeDigests.get(id)! } : {}), random, ...(this.paxosBug ? { paxosBug: this.paxosBug } : {}) });
    const sim: SimNode = { id, node, engine, hintEngine, paxosEngine, meta, clock, transport, up: true };
    // A process that crashed while starting stays dead.
    if (transport.alive) this.nodes.set(id, sim);
    return sim;
  }

  node(id: string): SimNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** A client process with its own connection. */
  connectClient(name: string, timeoutMs = 10_000): SimClient {
    return new SimClient(this.bus.connect(name), timeoutMs);
  }

  /** A client request through the queue group, as any NATS client would send it; runs the clock until it is answered. */
  async request(op: ClientOp, key: string, value = '', headers: Record<string, string> = {}): Promise<ClientReply> {
    return this.clock.run(this.client.request(op, key, value, headers));
  }

  /**
   * A client request answered by node `id`'s API (as if the queue group had
   * picked it), with the header block already parsed; runs the clock until answered.
   */
  async requestVia(id: string, op: ClientOp, key: string, value = '', headers: Record<string, string> = {}): Promise<ClientReply> {
    const { subject, keyHeader } = clientRequest(op, key);
    const h = new Map(Object.entries(keyHeader === undefined ? headers : { ...headers, [Header.Key]: keyHeader }).map(([k, v]) => [k.toLowerCase(), v]));
    let reply: ClientReply = { code: 0, value: '', message: 'no reply', header: () => undefined };
    const msg: InboundMessage = {
      subject,
      data: new TextEncoder().encode(value),
      header: (name) => h.get(name.toLowerCase()),
      headerPadded: () => false,
      expectsReply: true,
      respond: (data, out) => {
        reply = { code: 200, value: Buffer.from(data).toString('utf8'), message: '', header: (n) => out?.[n] };
      },
      respondError: (code, message, out) => {
        reply = { code, value: '', message, header: (n) => out?.[n] };
      },
    };
    await this.clock.run(this.node(id).node.api.handle(msg));
    return reply;
  }

  /** Every version any node stores for `key`, reconciled: what the cluster holds once it converges. */
  async converged(key: string): Promise<Version[]> {
    const held = await Promise.all([...this.nodes.values()].map((n) => n.node.replica.get(key)));
    return union(held, Number.MAX_SAFE_INTEGER);
  }

  /** The value a fully repaired cluster would answer for `key` (undefined when absent or deleted). */
  async convergedValue(key: string): Promise<string | undefined> {
    const v = visibleValue(await this.converged(key), 0);
    return v ? Buffer.from(v.value).toString('utf8') : undefined;
  }

  async stop(): Promise<void> {
    const running = [...this.nodes.values()].filter((n) => n.up);
    await this.clock.run(Promise.all(running.map((n) => n.node.stop())));
  }
}

/** A small number from a node id, to seed each node's random apart. */
function hashId(id: string): number {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619);
  return h >>> 0;
}
