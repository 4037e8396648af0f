/**
 * A simulated GoD-DB cluster: real node code on a seeded SimBus with a fake
 * clock and memory engines that can fail. The seed comes from GODDB_SEED
 * when set (to replay a failure) and is always printed.
 */
import pino from 'pino';
import type { NodeConfig } from '../../src/config/types.js';
import { MemoryEngine } from '../../src/storage/memory.js';
import { startNode, type GodDbNode } from '../../src/node/node.js';
import { clientRequest, Header, type ClientOp } from '../../src/protocol/subjects.js';
import { SimBus, type SimTransport } from '../../src/transport/sim.js';
import { replyError, RequestTimeoutError, type Reply } from '../../src/transport/transport.js';
import { FakeClock } from './fake_clock.js';

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
    nats: { servers: [], user: '', pass: '', token: '', nkeySeedFile: '', credsFile: '', tls: { caFile: '', certFile: '', keyFile: '', enabled: false } },
    storage: { engine: 'memory', redis: { host: '127.0.0.1', port: 0, db: 0, password: '' }, lmdb: { mapSizeBytes: 1 << 20 } },
    ring: { virtualNodes: 10 },
    quorum: { replication: 3, readQuorum: 2, writeQuorum: 2 },
    gossip: { enabled: true, intervalMs: 1000, failureTimeoutMs: 3000, peers, startupWaitMs: 5000 },
    requestTimeoutMs: 2000,
    readSpeculativeMs: 50,
    conflictPolicy: 'lww',
    limits: { keyBytesMax: 1024, valueBytesMax: 1024 * 1024 - 8192 },
    log: { level: 'silent' },
    ...overrides,
  };
}

export interface SimNode {
  id: string;
  node: GodDbNode;
  engine: MemoryEngine;
  transport: SimTransport;
}

export interface ClientReply {
  code: number;
  value: string;
  message: string;
  header(name: string): string | undefined;
}

export class SimCluster {
  readonly clock = new FakeClock();
  readonly bus: SimBus;
  readonly nodes = new Map<string, SimNode>();
  private readonly client: SimTransport;

  constructor(readonly seed: number, readonly ids: string[], private readonly overrides: Partial<NodeConfig> = {}) {
    this.bus = new SimBus({ seed, clock: this.clock });
    this.client = this.bus.connect('client');
  }

  async start(): Promise<void> {
    await this.clock.run(Promise.all(this.ids.map((id) => this.startOne(id))));
  }

  /** Like SIGKILL: the node's connection and subscriptions vanish; its storage stays. */
  async crash(id: string): Promise<void> {
    this.bus.kill(id);
    this.node(id).node.membership.stop(); // a dead process sends no more heartbeats
  }

  /** Restarts a crashed node on the storage it had. */
  async revive(id: string): Promise<SimNode> {
    return this.clock.run(this.startOne(id, this.node(id).engine));
  }

  async startOne(id: string, engine = new MemoryEngine()): Promise<SimNode> {
    const transport = this.bus.connect(id);
    const logger = pino({ level: 'silent' });
    const node = await startNode(simConfig(id, this.ids, this.overrides), { logger, transport, engine, clock: this.clock, http: false });
    const sim = { id, node, engine, transport };
    this.nodes.set(id, sim);
    return sim;
  }

  node(id: string): SimNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** A client request through the queue group, as any NATS client would send it. */
  async request(op: ClientOp, key: string, value = '', headers: Record<string, string> = {}): Promise<ClientReply> {
    const { subject, keyHeader } = clientRequest(op, key);
    const h = keyHeader === undefined ? headers : { ...headers, [Header.Key]: keyHeader };
    let reply: Reply;
    try {
      reply = await this.clock.run(this.client.request(subject, new TextEncoder().encode(value), { timeoutMs: 10_000, headers: h }));
    } catch (err) {
      if (err instanceof RequestTimeoutError) return { code: err.code, value: '', message: err.message, header: () => undefined };
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

  async stop(): Promise<void> {
    await this.clock.run(Promise.all([...this.nodes.values()].map((n) => n.node.stop())));
  }
}
