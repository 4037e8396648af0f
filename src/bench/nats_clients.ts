/**
 * GoD-DB through the raw `kv.*` subjects and through the SDK, and the echo
 * reference. Raw and echo send with the product's own NATS transport (one
 * shared inbox, a map of pending requests), so the two differ only in what
 * answers: three GoD-DB nodes or a responder that echoes.
 */
import { connect } from '../client/index.js';
import { ClientOp, clientRequest } from '../protocol/subjects.js';
import { connectNats } from '../transport/nats.js';
import { replyError, type Transport } from '../transport/transport.js';
import type { BenchClient } from './client.js';
import { echoSubjectPrefix } from './types.js';

const empty = new Uint8Array(0);

function natsConfig(url: string) {
  return {
    servers: [url],
    user: '',
    pass: '',
    token: '',
    credsFile: '',
    nkeySeedFile: '',
    tls: { enabled: false, caFile: '', certFile: '', keyFile: '' },
  };
}

function openTransport(url: string, name: string, requestTimeoutMs: number): Promise<Transport> {
  return connectNats(natsConfig(url), name, { waitOnFirstConnect: false, connectTimeoutMs: requestTimeoutMs });
}

export async function openGoddbRaw(url: string, requestTimeoutMs: number): Promise<BenchClient> {
  const transport = await openTransport(url, 'goddb-bench-raw', requestTimeoutMs);
  const opts = { timeoutMs: requestTimeoutMs };
  return {
    async put(key, value) {
      const reply = await transport.request(clientRequest(ClientOp.Put, key).subject, value, opts);
      const err = replyError(reply);
      if (err !== undefined) throw err;
    },
    async get(key) {
      const reply = await transport.request(clientRequest(ClientOp.Get, key).subject, empty, opts);
      const err = replyError(reply);
      if (err !== undefined) throw err;
    },
    close: () => transport.close(),
  };
}

/** The SDK with the routing named (the same client options otherwise: `goddb-sdk` is 'any', `goddb-sdk-direct` 'direct'). */
export async function openGoddbSdk(url: string, requestTimeoutMs: number, routing: 'any' | 'direct'): Promise<BenchClient> {
  const db = await connect({ servers: url, timeoutMs: requestTimeoutMs, name: 'goddb-bench-sdk', routing });
  return {
    async put(key, value) {
      await db.put(key, value);
    },
    async get(key) {
      if ((await db.get(key)) === null) throw new Error(`${key} not found`);
    },
    close: () => db.close(),
  };
}

/**
 * The echo responder returns what it is sent, so the value (`valueBytes`)
 * travels both ways on both ops: put and get are the same exchange, and
 * their two rows show the noise.
 */
export async function openEcho(url: string, requestTimeoutMs: number, valueBytes: number): Promise<BenchClient> {
  const transport = await openTransport(url, 'goddb-bench-echo', requestTimeoutMs);
  const opts = { timeoutMs: requestTimeoutMs };
  const payload = new Uint8Array(valueBytes).fill(0x61);
  const exchange = async (op: string, key: string): Promise<void> => {
    const reply = await transport.request(`${echoSubjectPrefix}.${op}.${key}`, payload, opts);
    if (reply.data.length !== payload.length) throw new Error(`echo returned ${reply.data.length} bytes, sent ${payload.length}`);
  };
  return {
    put: (key) => exchange(ClientOp.Put, key),
    get: (key) => exchange(ClientOp.Get, key),
    close: () => transport.close(),
  };
}

/** The fan-out responders (fanout.ts): a put answers empty, a get the value (empty: no replica held it). */
export async function openFanout(url: string, prefix: string, requestTimeoutMs: number): Promise<BenchClient> {
  const transport = await openTransport(url, 'goddb-bench-fanout', requestTimeoutMs);
  const opts = { timeoutMs: requestTimeoutMs };
  return {
    async put(key, value) {
      await transport.request(`${prefix}.${ClientOp.Put}.${key}`, value, opts);
    },
    async get(key) {
      const reply = await transport.request(`${prefix}.${ClientOp.Get}.${key}`, new Uint8Array(0), opts);
      if (reply.data.length === 0) throw new Error(`${key} not found`);
    },
    close: () => transport.close(),
  };
}
