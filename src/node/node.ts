/**
 * One GoD-DB node: wires storage, the replica, membership, the coordinator,
 * the client API and the HTTP port together. Everything it needs comes in
 * through `config` (validated, frozen) and `deps` (so simulations can pass a
 * simulated bus, a fake clock and a failing engine).
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { limits } from '../core/limits.js';
import type { NodeConfig } from '../config/types.js';
import { EngineKind, type StorageEngine } from '../storage/engine.js';
import { isGone, MemberState } from '../core/membership.js';
import { ConfigError } from '../config/load.js';
import { createEngine } from '../storage/index.js';
import { holdsNoRecord } from '../storage/hash_order.js';
import { MemoryEngine } from '../storage/memory.js';
import { FileMetaStore, MemoryMetaStore, type MetaStore } from '../storage/meta.js';
import { protocolVersion } from '../protocol/codec.js';
import { generateNodeId } from '../protocol/node_id.js';
import { isNodeOnlySubject, nodeAddressedFilter, nodeInboxPrefix } from '../protocol/subjects.js';
import { connectNats, ConnectEventType, redactUrl, type ConnectBehaviour } from '../transport/nats.js';
import type { Subscription, Transport } from '../transport/transport.js';
import { goddbVersion } from '../version.js';
import { ClientApi } from './api/client_api.js';
import { RingPublisher } from './api/ring_api.js';
import { Coordinator } from './coordinator/coordinator.js';
import { Moves } from './handoff/moves.js';
import { MemberAdmin } from './membership/admin.js';
import { loadState, saveState } from './membership/state_store.js';
import { loadOrCreateIdentity, lockDataDir } from './membership/identity.js';
import { Membership } from './membership/membership.js';
import { HybridClock } from './clock/hybrid_clock.js';
import { joinTokens, planTokens, tokensMetaName, writeTokens } from './membership/placement_tokens.js';
import { StoreFill, StoreFillRecord } from './handoff/store_fill.js';
import { recallSelf } from './membership/recall.js';
import { LogLimiter } from './log_limiter.js';
import { startHttp } from './api/http.js';
import { KeyCount } from './api/key_count.js';
import { Metrics } from './api/metrics.js';
import { ReplicaTiming, timeReplicaTraffic } from './api/replica_timing.js';
import { storeBytes } from './backup/backup.js';
import { ChangeFeed } from './changes/change_feed.js';
import { realClock } from './clock/real_clock.js';
import { Replica } from './replica/replica.js';
import { HintStore } from './hints/hint_store.js';
import { HintedHandoff } from './hints/hinted_handoff.js';
import { createNamespaceEngine, Namespace } from './namespace_engine.js';
import { PaxosAcceptor } from './paxos/acceptor.js';
import { PaxosProposer } from './paxos/proposer.js';
import type { PlantedBug } from '../core/paxos.js';
import { Gc } from './gc/sweeper.js';
import { ReplicaClient } from './coordinator/replica_client.js';
import { AntiEntropy } from './aae/anti_entropy.js';
import type { DigestVersion } from '../core/tictac.js';
import { KeyListing } from './keys/key_listing.js';

export interface NodeDeps {
  logger: Logger;
  transport?: Transport;
  engine?: StorageEngine;
  /** The hint store's engine (default: its own namespace of the configured engine; memory when `engine` is given). */
  hintEngine?: StorageEngine;
  /** The Paxos state's engine (conditional writes; default as for hints). */
  paxosEngine?: StorageEngine;
  /** Tests only: a bug planted in this node's Paxos (core/paxos.ts PlantedBug). */
  paxosBug?: PlantedBug;
  clock?: Clock;
  /** Where the clock's high-water mark survives restarts (default: `<dataDir>/meta` for durable engines). */
  meta?: MetaStore;
  /** The newest protocol version this node speaks (default the newest; simulations of a rolling upgrade use 1). */
  protocolVersion?: number;
  /** The digest format of its anti-entropy trees (default core/tictac.ts digestVersionDefault; tests of a rolling upgrade use Full). */
  aaeDigest?: DigestVersion;
  /** Random choices (gossip peers); default Math.random, simulations pass a seeded one. */
  random?: () => number;
  /** Serve /health and /metrics (default true). */
  http?: boolean;
}

export interface GodDbNode {
  readonly id: string;
  readonly httpPort: number;
  readonly membership: Membership;
  readonly coordinator: Coordinator;
  readonly replica: Replica;
  readonly hlc: HybridClock;
  readonly moves: Moves;
  /** Hints kept for members that are down, and their delivery (node/hints). */
  readonly hints: HintStore;
  /** Tombstone and TTL purge (node/gc). */
  readonly gc: Gc;
  /** Active anti-entropy: tictac trees per arc, compared with the other replicas (node/aae). */
  readonly aae: AntiEntropy;
  /** This node's side of conditional writes (node/paxos). */
  readonly paxos: PaxosAcceptor;
  /** Resolves once this node has left the cluster (`goddb leave`): the worker then exits 0. */
  readonly left: Promise<void>;
  /** The client API this node serves (tests drive one node's API directly). */
  readonly api: ClientApi;
  stop(): Promise<void>;
}

/** Without peers to wait for, a starting node listens this long for answers to its hello. */
const helloWaitMs = 250;

export async function startNode(given: Readonly<NodeConfig>, deps: NodeDeps): Promise<GodDbNode> {
  // Durable engines keep the node's identity (and, for lmdb, its data) in the data directory.
  const durable = deps.engine === undefined && given.storage.engine !== EngineKind.Memory;
  const lock = durable ? lockDataDir(given.dataDir, process.pid) : undefined;
  try {
    const node = await startServing(given, deps, durable);
    return { ...node, stop: () => node.stop().finally(() => lock?.release()) };
  } catch (err) {
    lock?.release();
    throw err;
  }
}

async function startServing(given: Readonly<NodeConfig>, deps: NodeDeps, durable: boolean): Promise<GodDbNode> {
  const clock = deps.clock ?? realClock;
  const { config, servedBefore } = resolveIdentity(given, durable, deps.logger, clock);
  const id = config.nodeId;
  const logger = deps.logger.child({ nodeId: id });
  const engine = deps.engine ?? createEngine({
    engine: config.storage.engine,
    redis: config.storage.redis,
    lmdbPath: join(config.dataDir, 'lmdb'),
    lmdbMapSizeBytes: config.storage.lmdb.mapSizeBytes,
    lmdbSync: config.storage.sync,
    lmdbSyncIntervalMs: config.storage.syncIntervalMs,
  });
  await engine.open();
  // Before the replica listens: writes that arrive once it does must not make a wiped disk look used.
  const emptyAtStart = await holdsNoRecord(engine);
  if (!deps.transport) logger.info({ servers: config.nats.servers.map(redactUrl), giveUpAfterMs: config.nats.connectWaitMs }, 'connecting to NATS');
  const untimed = deps.transport ?? (await connectNats(config.nats, `goddb-${config.cluster}-${id}`, transportBehaviour(logger, config.nats.connectWaitMs, clock, id)).catch(async (err) => {
    await engine.close();
    throw err;
  }));
  // Node-to-node requests timed, sent and served, for /metrics (api/replica_timing.ts).
  const replicaTiming = new ReplicaTiming();
  const transport = timeReplicaTraffic(untimed, config.cluster, replicaTiming);
  const maxPayload = transport.maxPayloadBytes();
  const valueBytesMax = effectiveValueBytesMax(config.limits.valueBytesMax, maxPayload, logger);
  const sizes = messageBounds(maxPayload);
  const meta = deps.meta ?? (durable ? new FileMetaStore(config.dataDir) : new MemoryMetaStore());
  const hlc = new HybridClock(clock, meta, config.maxClockSkewMs);
  const protocolMax = deps.protocolVersion ?? protocolVersion;
  const gossipLogs = new LogLimiter(logger, () => clock.monotonicMs());
  const replica = new Replica(engine, hlc, { conflictPolicy: config.conflictPolicy, siblingsMax: config.siblingsMax, recordBytesMax: sizes.recordBytesMax, replyBytesMax: sizes.messageBytesMax, protocolMax }, logger);
  // Hints are a namespace of their own, open before the replica listens (it keeps hinted writes in it).
  const hintStore = new HintStore(deps.hintEngine ?? (deps.engine ? new MemoryEngine() : createNamespaceEngine(config, Namespace.Hints)), { windowMs: config.hints.windowMs, bytesMax: config.hints.bytesMax, recordBytesMax: sizes.recordBytesMax, conflictPolicy: config.conflictPolicy }, clock, logger.child({ part: 'hints' }));
  await hintStore.open().catch(async (err) => {
    await engine.close();
    if (!deps.transport) await transport.close();
    throw err;
  });
  replica.hints = hintStore;
  // Paxos state (conditional writes) too: a promise answered must survive a restart.
  const acceptor = new PaxosAcceptor(deps.paxosEngine ?? (deps.engine ? new MemoryEngine() : createNamespaceEngine(config, Namespace.Paxos)), replica, hlc, { replyBytesMax: sizes.messageBytesMax, meta, ...(deps.paxosBug ? { plantedBug: deps.paxosBug } : {}) }, logger.child({ part: 'paxos' }));
  await acceptor.open().catch(async (err) => {
    await hintStore.close();
    await engine.close();
    if (!deps.transport) await transport.close();
    throw err;
  });
  // An empty disk with nothing kept may be a wiped one (recall.ts below finds out): until then the
  // replica counts toward no quorum, or it could answer reads with nothing in the meantime.
  const canRefill = config.gossip.enabled && protocolMax >= 2;
  const stateAtStart = loadState(meta);
  const mayBeWiped = emptyAtStart && stateAtStart === undefined && meta.readText(tokensMetaName) === undefined && canRefill;
  // A store lost while the metadata was kept (a Redis restarted without persistence, a data
  // directory wiped but for meta/), or a refill that did not finish: refilled the same way (a
  // joining node pulls its ranges anyway, and is no replica yet).
  const storeFill = new StoreFillRecord(meta);
  const refill = canRefill && stateAtStart?.state !== MemberState.Joining && storeFill.mustRefill(emptyAtStart);
  replica.bootstrapping = mayBeWiped || refill;
  // A store that never held anything is marked whole by its first write outside a refill, before
  // that write is acknowledged (listeners run before the replica answers): found empty at a later
  // start, it was lost. A store that never held a key loses nothing by coming back empty.
  replica.onStored(() => {
    if (!replica.bootstrapping) storeFill.set(StoreFill.Whole);
  });
  const replicaSubs = replica.listen(transport, config.cluster, id);
  replicaSubs.push(acceptor.listen(transport, config.cluster, id));
  // A node with nothing kept asks its peers first whether they know it (a wiped disk): it then
  // comes back with the tokens and the state it had, not as a new member (node/membership/recall.ts).
  const recalled = mayBeWiped ? await recallSelf(transport, config.cluster, id, config.gossip.peers, clock) : undefined;
  if (recalled) {
    writeTokens(meta, recalled.tokens);
    saveState(meta, recalled.stamp);
    logger.warn({ state: recalled.stamp.state, tokens: recalled.tokens.length }, 'the cluster knows this node but its disk is empty: back with the tokens it had');
  }
  const kept = loadState(meta);
  if (kept && isGone(kept.state)) {
    await engine.close();
    if (!deps.transport) await transport.close();
    throw new ConfigError(`node ${id} has ${kept.state} the cluster (its data directory ${config.dataDir} says so): a node that left or was removed does not come back; wipe the data directory (or use another) to join as a new node`);
  }
  const tokenPlan = planTokens(
    { id, virtualNodes: config.ring.virtualNodes, replication: config.quorum.replication, peers: config.gossip.peers, gossip: config.gossip.enabled, protocolMax, servedBefore },
    meta,
  );
  // A node that has no tokens yet joins; one that had some comes back in the state it kept (kept
  // at once: a joiner restarted after choosing its tokens is still joining).
  const ownState = kept ?? { state: tokenPlan.own === undefined ? MemberState.Joining : MemberState.Up, stateVersion: 0 };
  if (kept === undefined) saveState(meta, ownState);
  const membership = new Membership(
    {
      self: id,
      cluster: config.cluster,
      virtualNodes: config.ring.virtualNodes,
      replication: config.quorum.replication,
      state: ownState,
      persistState: (stamp) => saveState(meta, stamp),
      fanout: config.gossip.fanout,
      random: deps.random,
      enabled: config.gossip.enabled,
      intervalMs: config.gossip.intervalMs,
      failureTimeoutMs: config.gossip.failureTimeoutMs,
      phiConvictThreshold: config.gossip.phiConvictThreshold,
      peers: config.gossip.peers,
      timeNow: () => hlc.now(),
      observeTime: (t, from) => {
        if (!hlc.advanceTo(t)) gossipLogs.warn('heartbeat-skew', { member: from, hlc: t }, 'ignored the clock of a member more than the maximum clock skew ahead');
      },
      protocolMax,
      maxSkewMs: config.maxClockSkewMs,
      tokens: tokenPlan.own,
      peerTokens: tokenPlan.peers,
    },
    transport,
    clock,
    logger,
  );
  const moves = new Moves(
    {
      self: id,
      cluster: config.cluster,
      replication: config.quorum.replication,
      bytesPerSecond: config.handoff.bytesPerSecond,
      ringDelayMs: config.handoff.ringDelayMs,
      requestTimeoutMs: config.requestTimeoutMs,
      replyBytesMax: sizes.messageBytesMax,
    },
    engine,
    replica,
    transport,
    membership,
    meta,
    clock,
    logger.child({ part: 'moves' }),
  );
  let onLeft: () => void = () => {};
  const left = new Promise<void>((r) => (onLeft = r));
  const coordinator = new Coordinator(
    {
      self: id,
      cluster: config.cluster,
      replication: config.quorum.replication,
      requestTimeoutMs: config.requestTimeoutMs,
      readSpeculativeMs: config.readSpeculativeMs,
      conflictPolicy: config.conflictPolicy,
      siblingsMax: config.siblingsMax,
      recordBytesMax: sizes.recordBytesMax,
      requestBytesMax: sizes.messageBytesMax,
      protocolOf: (node) => membership.protocolOf(node),
      settled: () => moves.settled,
      transfers: () => moves.transfers(),
      sloppyQuorum: config.hints.sloppyQuorum,
      hintWindowMs: config.hints.windowMs,
      hintsPending: () => hintStore.pending(),
      aae: () => {
        const { enabled, treesReady, treesTotal, treesCompared, keysRepaired, segmentsDiffering } = aae.progress();
        return { enabled, treesReady, treesTotal, treesCompared, keysRepaired, segmentsDiffering };
      },
    },
    transport,
    membership,
    replica,
    clock,
    hlc,
    logger,
  );
  coordinator.paxos = new PaxosProposer(
    { self: id, cluster: config.cluster, requestTimeoutMs: config.requestTimeoutMs, conflictPolicy: config.conflictPolicy, protocolOf: (node) => membership.protocolOf(node), random: deps.random, ...(deps.paxosBug ? { plantedBug: deps.paxosBug } : {}) },
    transport,
    acceptor,
    (key) => coordinator.placementOf(key),
    clock,
    hlc,
  );
  const admin = new MemberAdmin({ self: id, cluster: config.cluster, replication: config.quorum.replication, requestTimeoutMs: config.requestTimeoutMs }, membership, transport, logger);
  const gc = new Gc(
    {
      self: id,
      cluster: config.cluster,
      replication: config.quorum.replication,
      graceSeconds: config.gc.graceSeconds,
      intervalMs: config.gc.intervalMs,
      keysPerSecond: config.gc.keysPerSecond,
      requestTimeoutMs: config.requestTimeoutMs,
      protocolMax,
    },
    engine,
    replica,
    new ReplicaClient(transport, config.cluster, config.requestTimeoutMs, { requestBytesMax: sizes.messageBytesMax, protocolOf: (node) => membership.protocolOf(node) }),
    transport,
    membership,
    () => moves.settled,
    clock,
    hlc,
    logger.child({ part: 'gc' }),
  );
  const hintedHandoff = new HintedHandoff(
    { self: id, bytesPerSecond: config.handoff.bytesPerSecond, windowMs: config.hints.windowMs },
    hintStore,
    new ReplicaClient(transport, config.cluster, config.requestTimeoutMs, { requestBytesMax: sizes.messageBytesMax, protocolOf: (node) => membership.protocolOf(node) }),
    membership,
    clock,
    logger.child({ part: 'hinted-handoff' }),
  );
  const aae = new AntiEntropy(
    {
      self: id,
      cluster: config.cluster,
      replication: config.quorum.replication,
      ...config.antiEntropy,
      requestTimeoutMs: config.requestTimeoutMs,
      replyBytesMax: sizes.messageBytesMax,
      ...(deps.aaeDigest === undefined ? {} : { digest: deps.aaeDigest }),
    },
    engine,
    replica,
    new ReplicaClient(transport, config.cluster, config.requestTimeoutMs, { requestBytesMax: sizes.messageBytesMax, protocolOf: (node) => membership.protocolOf(node) }),
    transport,
    membership,
    clock,
    logger.child({ part: 'aae' }),
  );
  const keyListing = new KeyListing(
    { self: id, cluster: config.cluster, replication: config.quorum.replication, requestTimeoutMs: config.requestTimeoutMs, replyBytesMax: sizes.messageBytesMax, conflictPolicy: config.conflictPolicy },
    engine,
    transport,
    { ring: () => membership.ring(), reachable: (node) => coordinator.reachable(node), whole: () => !replica.bootstrapping },
    hlc,
    () => clock.monotonicMs(),
    logger.child({ part: 'keys' }),
  );
  const keyCount = new KeyCount(engine, clock, limits.keyCountRefreshMs, logger);
  const changeFeed = new ChangeFeed(transport, { payloadBytesMax: maxPayload ?? 1024 * 1024, outboundBytesMax: limits.changesOutboundBytesMax }, logger.child({ part: 'changes' }), () => clock.monotonicMs());
  const metrics = new Metrics(id, {
    inflight: () => coordinator.inflightRequests,
    membersUp: () => membership.members().filter((m) => m.status === 'up').length,
    readRepairs: () => coordinator.readRepairs,
    staleRetries: () => coordinator.staleRetries,
    staleRefusals: () => replica.staleRefusals,
    skewRefusals: () => replica.skewRefusals,
    siblingsCollapsed: () => replica.siblingsCollapsed + coordinator.siblingsCollapsed,
    malformedReplicaRequests: () => replica.malformed,
    unconfirmedMembers: () => membership.unconfirmed,
    hlc: () => hlc.peek(),
    handoffKeysSent: () => moves.keysPulled,
    handoffBytesSent: () => moves.bytesPulled,
    handoffActive: () => moves.active,
    keys: () => keyCount.read(),
    ringMembers: () => membership.members().length,
    ringOwnedRatio: () => coordinator.ownedRatio(),
    memberStates: () => membership.members(),
    settled: () => moves.settled,
    keysDeleted: () => moves.keysDeleted,
    hintsPending: () => hintStore.pending(),
    hintsStored: () => hintStore.storedTotal,
    hintsDelivered: () => hintStore.deliveredTotal,
    hintsDropped: () => hintStore.dropped,
    routedAround: () => coordinator.responsiveness.shunned().length,
    routedAroundTotal: () => coordinator.responsiveness.shuns,
    gcPurged: () => gc.purged,
    gcSkipped: () => gc.skipped,
    aae: () => aae.progress(),
    changes: () => changeFeed,
    replicaTiming,
    ...(durable && engine.kind === 'lmdb' ? { storageBytes: () => storeBytes(config.dataDir) } : {}),
  });
  const api = new ClientApi(
    {
      nodeId: id,
      cluster: config.cluster,
      version: goddbVersion,
      replication: config.quorum.replication,
      readQuorum: config.quorum.readQuorum,
      writeQuorum: config.quorum.writeQuorum,
      virtualNodes: config.ring.virtualNodes,
      keyBytesMax: config.limits.keyBytesMax,
      valueBytesMax,
      defaultTtlSeconds: config.defaultTtlSeconds,
      admin,
      changes: changeFeed,
      listKeys: (req) => keyListing.page(req),
      ring: new RingPublisher({ ring: () => membership.ring(), isUp: (peer) => coordinator.reachable(peer), replication: config.quorum.replication }),
    },
    coordinator,
    metrics,
    logger,
    () => keyCount.read(),
  );

  membership.start();
  await waitForPeers(membership, config.gossip.enabled ? config.gossip.peers : [], config.gossip.startupWaitMs, clock, logger);
  if (tokenPlan.own === undefined) {
    // A join does not overlap a leave or a removal (node/membership/admin.ts): wait for it to end.
    const leaving = () => membership.members().filter((m) => m.state === MemberState.Leaving || m.state === MemberState.Removing).map((m) => m.id);
    while (leaving().length > 0) {
      gossipLogs.warn('join-waits', { leaving: leaving() }, 'waiting for a leave or a removal to end before joining');
      await new Promise<void>((r) => clock.setTimer(config.gossip.intervalMs, r));
    }
    // The seeds are not every member: hear the ring whole (no claim waiting for its probe, no new
    // member for a gossip interval) before choosing tokens against it and pulling from it.
    await waitForWholeView(membership, config.gossip.intervalMs, config.gossip.startupWaitMs, clock);
    // Joining: balance against the tokens the members announced (core/tokens.ts).
    const capacities = new Map(membership.members().map((m) => [m.id, m.virtualNodes]));
    const own = joinTokens(id, config.ring.virtualNodes, config.quorum.replication, membership.placedTokens(), capacities, meta);
    membership.setOwnTokens(own);
    logger.info({ tokens: own.length, members: capacities.size }, 'chose tokens to join the ring');
  }
  // Back on an empty disk (no move record, no data) while the cluster knows this id: pull every
  // range back before counting toward quorums (issue 10; Cassandra bootstraps a replaced node).
  const wiped = (recalled !== undefined && emptyAtStart) || refill;
  replica.bootstrapping = wiped;
  // Paxos promises lost with the store, or with their own directory: no ballot lower may get in.
  await acceptor.lostPromises(wiped);
  if (wiped) storeFill.set(StoreFill.Filling);
  else if (!emptyAtStart) storeFill.set(StoreFill.Whole);
  if (wiped) {
    moves.onBootstrapped = () => {
      replica.bootstrapping = false;
      storeFill.set(StoreFill.Whole);
    };
    logger.warn({ metadataKept: refill }, 'this node is back on an empty or partly refilled store: it pulls its ranges from the other replicas and counts toward no quorum until they arrive');
  }
  moves.start({ wiped });
  gc.start();
  hintedHandoff.start();
  aae.start();
  replicaSubs.push(admin.listen());
  replicaSubs.push(keyListing.start());
  moves.onLeft = () => {
    // A few more heartbeats carry `left` to every member before the node goes.
    clock.setTimer(2 * config.gossip.intervalMs, onLeft);
  };
  await transport.flush();
  let service: Subscription | undefined = await transport.serve(api.service());
  // The same requests addressed to this node alone (the SDK routes around paused nodes this way).
  let addressed: Subscription | undefined = transport.subscribe(nodeAddressedFilter(id), (m) => api.handle(m));
  let ready = true;

  const http = deps.http === false ? undefined : await startHttp(config.http.host, config.http.port, {
    ready: () => ready,
    health: () => ({ nodeId: id, cluster: config.cluster, ready, engine: engine.kind, duplicateId: membership.duplicateOf !== undefined, members: membership.members() }),
  }, metrics.registry);
  logger.info({ httpPort: http?.port ?? 0, engine: engine.kind, members: membership.members().map((m) => m.id) }, 'node ready');

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      // The order is the point (issue 8). Client requests stop first, but every one already
      // delivered here is answered (the drain waits for the replies); other coordinators still
      // count on this replica until then, so its subjects are drained last; closing the
      // connection flushes what is left (the last replies) before it closes.
      ready = false;
      await Promise.all([service?.drain(), addressed?.drain()]);
      addressed = undefined;
      service = undefined;
      await coordinator.drain();
      await moves.stop();
      await hintedHandoff.stop();
      await gc.stop();
      await aae.stop();
      membership.stop();
      await Promise.all(replicaSubs.map((s) => s.drain()));
      if (!deps.transport) await transport.close();
      await engine.close();
      await hintStore.close();
      await acceptor.close();
      await http?.close();
      logger.info('node stopped');
    })();
    return stopping;
  };

  return { id, httpPort: http?.port ?? 0, membership, coordinator, replica, hlc, moves, hints: hintStore, gc, aae, paxos: acceptor, api, left, stop };
}

/**
 * A durable node reads its identity from its data directory, so a restart
 * comes back with the same id and tokens; the memory engine has nothing to
 * come back to.
 */
function resolveIdentity(config: Readonly<NodeConfig>, durable: boolean, logger: Logger, clock: Clock): { config: Readonly<NodeConfig>; servedBefore: boolean } {
  if (!durable) return { config: config.nodeId === '' ? { ...config, nodeId: generateNodeId() } : config, servedBefore: false };
  const outcome = loadOrCreateIdentity(
    config.dataDir,
    { nodeId: config.nodeId, virtualNodes: config.ring.virtualNodes, cluster: config.cluster, generateId: generateNodeId },
    new Date(clock.nowMs()).toISOString(),
  );
  const { identity } = outcome;
  if (outcome.virtualNodesIgnored !== undefined) {
    logger.warn({ configured: outcome.virtualNodesIgnored, stored: identity.virtualNodes }, 'virtual nodes differ from the stored identity; keeping the stored count so the ring does not move');
  }
  return { config: { ...config, nodeId: identity.nodeId, ring: { ...config.ring, virtualNodes: identity.virtualNodes } }, servedBefore: !outcome.created };
}

/**
 * A worker waits for NATS up to `connectWaitMs`, saying why each attempt failed (at most one
 * line per 10 s); what the transport catches (a handler or reply that failed) goes to the log;
 * and it never replies on a node subject or the change feed (see isNodeOnlySubject); its
 * replies come on its private inbox prefix.
 */
function transportBehaviour(logger: Logger, connectWaitMs: number, clock: Clock, nodeId: string): ConnectBehaviour {
  const logs = new LogLimiter(logger, () => clock.monotonicMs());
  return {
    waitOnFirstConnect: true,
    giveUpAfterMs: connectWaitMs,
    onConnectEvent: (event) => {
      if (event.type === ConnectEventType.AttemptFailed) {
        const { type: _type, ...fields } = event;
        logs.warn('nats-connect', fields, `cannot reach NATS: ${event.error}; retrying`);
      } else if (event.type === ConnectEventType.Disconnected) {
        logger.warn({ server: event.server }, 'disconnected from NATS; reconnecting');
      } else {
        logger.info({ server: event.server }, 'reconnected to NATS');
      }
    },
    // One line per kind of failure per 10 s: a flood of bad requests must not fill the disk with logs.
    onError: (err, { subject, what }) => logs.error(`transport-${what}`, { err, subject }, `transport: ${what}`),
    replyAllowed: (subject) => !isNodeOnlySubject(subject),
    inboxPrefix: nodeInboxPrefix(nodeId),
  };
}

/** Room kept in every message for headers and the replica envelope (clock, key, CBOR framing). */
const envelopeBytesMax = 8 * 1024;
/** Room for NATS headers on a message between nodes (replies carry none unless they are errors). */
const headerRoomBytes = 1024;
/** CBOR framing of a one-item batch request or reply around the key and its record. */
const batchEnvelopeBytes = 512;

/**
 * What a node may send in one message, and how large one key's record may
 * grow: a record alone, with a key and a batch envelope, always fits.
 */
export function messageBounds(maxPayload: number | undefined): { messageBytesMax: number; recordBytesMax: number } {
  const messageBytesMax = (maxPayload ?? 1024 * 1024) - headerRoomBytes;
  return { messageBytesMax, recordBytesMax: messageBytesMax - limits.keyBytesMax - batchEnvelopeBytes };
}

/** The configured value maximum, lowered to fit the NATS server's max_payload (values never exceed one message). */
function effectiveValueBytesMax(configured: number, maxPayload: number | undefined, logger: Logger): number {
  if (maxPayload === undefined || configured + envelopeBytesMax <= maxPayload) return configured;
  const fitted = Math.max(0, maxPayload - envelopeBytesMax);
  logger.warn({ configured, maxPayload, valueBytesMax: fitted }, 'valueBytesMax lowered to fit the NATS server max_payload');
  return fitted;
}

async function waitForPeers(membership: Membership, peers: readonly string[], waitMs: number, clock: Clock, logger: Logger): Promise<void> {
  if (peers.length === 0) {
    await new Promise<void>((r) => clock.setTimer(Math.min(helloWaitMs, waitMs), r));
    return;
  }
  const heard = await waitUntil(() => peers.every((p) => membership.heard(p)), waitMs, clock);
  if (!heard) logger.warn({ missing: peers.filter((p) => !membership.heard(p)) }, `peers not heard within ${waitMs}ms; serving anyway`);
}

/** Waits until no claim waits for its probe and no member was added for `quietMs` (at most `waitMs`). */
async function waitForWholeView(membership: Membership, quietMs: number, waitMs: number, clock: Clock): Promise<void> {
  let count = membership.members().length;
  let changedAt = clock.monotonicMs();
  await waitUntil(() => {
    const now = membership.members().length;
    if (now !== count || membership.pendingIds().length > 0) {
      count = now;
      changedAt = clock.monotonicMs();
    }
    return clock.monotonicMs() - changedAt >= quietMs;
  }, waitMs, clock);
}

/** Polls `done` on the clock until it holds or `waitMs` passes; says which. */
async function waitUntil(done: () => boolean, waitMs: number, clock: Clock): Promise<boolean> {
  const deadline = clock.monotonicMs() + waitMs;
  while (!done()) {
    if (clock.monotonicMs() >= deadline) return false;
    await new Promise<void>((r) => clock.setTimer(10, r));
  }
  return true;
}
