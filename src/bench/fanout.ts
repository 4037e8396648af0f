/**
 * The fan-out responder, a reference system of three processes: GoD-DB's
 * message pattern with nothing else (issue 11: how much of a put's and a
 * get's server CPU the architecture itself costs, before any of GoD-DB's
 * code). A client request on `<prefix>.<op>.<key>` goes, through one
 * queue group, to one of the three; that one stores the value and sends it
 * on to the two others, batched per peer per microtask checkpoint as GoD-DB
 * batches its replica messages, and answers once two of the three copies are
 * stored (N=3, W=2). A get reads its own copy and asks one peer (R=2),
 * alternating between the two. Four NATS hops per operation through one
 * nats-server, as GoD-DB's: client -> coordinator -> replicas ->
 * coordinator -> client. No versions, no validation, no anti-entropy.
 *
 * The store is a Map (`fanout`), or LMDB (`fanout-lmdb`) the way GoD-DB's
 * periodic mode writes it: each write reads the key first (GoD-DB's
 * read-merge-write), the writes of one event-loop turn are committed by one
 * synchronous transaction without fsync (MDB_NOSYNC), and a copy counts as
 * stored once its transaction committed.
 *
 * Like echo.ts it imports the NATS client directly (product code must not):
 * it is not GoD-DB, and the least code between the hops is what it is for.
 * A batch's acknowledgement is matched by a sequence number in its reply
 * subject, on one wildcard subscription per process. Nothing times out: a
 * bench run on one machine loses no message, and a lost one would show as
 * the load generator's own timeout.
 *
 *   node dist/src/bench/fanout.js <nats-url> <subject-prefix> <id> <peer-id>,<peer-id> [<lmdb-dir>]
 *
 * It prints `{"event":"ready"}` when subscribed and exits on SIGTERM or
 * SIGINT, and when its parent goes away (stdin closes).
 */
import { connect, type Msg } from '@nats-io/transport-node';
import { open } from 'lmdb';
import { decodeBatch, decodeValues, encodeBatch, encodeValues, PeerOp, type Item } from './fanout_batch.js';
import { readyUntilStopped, runResponder } from './responder.js';

const empty = new Uint8Array(0);

/** One peer's batch of one op: the items, and who waits for each item's answer. */
interface Batch {
  items: Item[];
  waiters: ((value: Uint8Array | undefined) => void)[];
}

/** A copy of each key; `set` calls `stored` once the copy is stored (at once for the Map, after its commit for LMDB). */
interface Store {
  get(key: string): Uint8Array | undefined;
  set(key: string, value: Uint8Array, stored: () => void): void;
}

function memoryStore(): Store {
  const map = new Map<string, Uint8Array>();
  return {
    get: (key) => map.get(key),
    set(key, value, stored) {
      map.set(key, value);
      stored();
    },
  };
}

function lmdbStore(path: string): Store {
  const db = open<Buffer, string>({ path, noSync: true, overlappingSync: false, encoding: 'binary' });
  let queued: { key: string; value: Uint8Array; stored: () => void }[] = [];
  const commit = (): void => {
    const batch = queued;
    queued = [];
    db.transactionSync(() => {
      for (const w of batch) void db.putSync(w.key, Buffer.from(w.value.buffer, w.value.byteOffset, w.value.byteLength));
    });
    for (const w of batch) w.stored();
  };
  return {
    get: (key) => db.getBinary(key)?.slice(),
    set(key, value, stored) {
      db.getBinary(key); // GoD-DB reads what a key holds before it writes
      if (queued.length === 0) setImmediate(commit);
      queued.push({ key, value, stored });
    },
  };
}

async function main(): Promise<void> {
  const [url, prefix, id, peerList, lmdbDir] = process.argv.slice(2);
  if (url === undefined || prefix === undefined || id === undefined || peerList === undefined) {
    throw new Error('usage: fanout.js <nats-url> <subject-prefix> <id> <peer-id>,<peer-id> [<lmdb-dir>]');
  }
  const peers = peerList.split(',');
  const nc = await connect({ servers: url, name: `goddb-bench-fanout-${id}`, noAsyncTraces: true });
  const store = lmdbDir === undefined ? memoryStore() : lmdbStore(lmdbDir);
  const pending = new Map<number, Batch & { op: PeerOp }>();
  const batches = new Map<string, Batch>();
  const ackPrefix = `${prefix}.ack.${id}`;
  let sequence = 0;
  let nextReader = 0;

  const send = (peer: string, op: PeerOp, batch: Batch): void => {
    const n = ++sequence;
    pending.set(n, { ...batch, op });
    nc.publish(`${prefix}.peer.${peer}.${op}`, encodeBatch(op, batch.items), { reply: `${ackPrefix}.${n}` });
  };
  /** Queues `item` for `peer`; the batch goes at the next microtask checkpoint. */
  const ask = (peer: string, op: PeerOp, item: Item): Promise<Uint8Array | undefined> => {
    const name = `${peer}.${op}`;
    let batch = batches.get(name);
    if (batch === undefined) {
      const fresh: Batch = { items: [], waiters: [] };
      batches.set(name, fresh);
      queueMicrotask(() => {
        batches.delete(name);
        send(peer, op, fresh);
      });
      batch = fresh;
    }
    batch.items.push(item);
    return new Promise((resolve) => batch.waiters.push(resolve));
  };

  nc.subscribe(`${ackPrefix}.*`, {
    callback: (err, msg) => {
      if (err !== null) return;
      const n = Number(msg.subject.slice(ackPrefix.length + 1));
      const batch = pending.get(n);
      if (batch === undefined) return;
      pending.delete(n);
      const values = batch.op === PeerOp.Get ? decodeValues(msg.data, batch.items.length) : undefined;
      batch.waiters.forEach((resolve, i) => resolve(values?.[i]));
    },
  });
  nc.subscribe(`${prefix}.peer.${id}.*`, {
    callback: (err, msg) => {
      if (err !== null) return;
      const op = msg.subject.endsWith(`.${PeerOp.Put}`) ? PeerOp.Put : PeerOp.Get;
      const items = decodeBatch(op, msg.data);
      if (op === PeerOp.Put) {
        let left = items.length;
        for (const item of items) store.set(item.key, item.value!, () => void (--left === 0 && msg.respond(empty)));
      } else {
        msg.respond(encodeValues(items.map((item) => store.get(item.key))));
      }
    },
  });
  const clientPrefix = `${prefix}.`;
  nc.subscribe(`${prefix}.*.*`, {
    queue: `${prefix}-clients`,
    callback: (err, msg) => {
      if (err !== null) return;
      const rest = msg.subject.slice(clientPrefix.length);
      const dot = rest.indexOf('.');
      const op = rest.slice(0, dot);
      const key = rest.slice(dot + 1);
      if (op === PeerOp.Put) put(msg, key);
      else if (op === PeerOp.Get) void get(msg, key);
    },
  });

  /** W=2: answered once two of the three copies (its own and the peers') are stored. */
  function put(msg: Msg, key: string): void {
    const value = msg.data.slice();
    let stored = 0;
    const one = (): void => void (++stored === 2 && msg.respond(empty));
    store.set(key, value, one);
    for (const peer of peers) void ask(peer, PeerOp.Put, { key, value }).then(one);
  }

  /** R=2: its own copy and one peer's, answering the one it holds (the peer's when it holds none). */
  async function get(msg: Msg, key: string): Promise<void> {
    const peer = peers[nextReader++ % peers.length]!;
    const theirs = await ask(peer, PeerOp.Get, { key });
    msg.respond(store.get(key) ?? theirs ?? empty);
  }

  await readyUntilStopped(nc);
}

runResponder('fanout', main);
