/**
 * Issue 11: what one process sends in one turn of the event loop leaves in
 * one socket write (transport/nats.ts holdWrites). nats.js flushes its
 * buffer on a microtask; a turn whose sends come out over several microtask
 * waves (a coordinator answering a batch of replica replies, one await per
 * wave) wrote to the socket once per wave, and on this machine a loopback
 * write cost tens of microseconds of the sender's CPU.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startNatsServer, type NatsServerHandle } from '../../src/devtools/servers.js';
import { connectNats, type NatsTransport } from '../../src/transport/nats.js';
import type { InboundMessage, Transport } from '../../src/transport/transport.js';

const natsConfig = (url: string) => ({ servers: [url], user: '', pass: '', token: '', credsFile: '', nkeySeedFile: '', tls: { enabled: false, caFile: '', certFile: '', keyFile: '' } });
const waves = 10;

interface WritableInternals {
  _write: (...args: unknown[]) => unknown;
  _writev?: (...args: unknown[]) => unknown;
}

/** Counts the writes the connection's socket hands to the kernel (the socket is a nats.js internal, as the transport reads it). */
function countSocketWrites(t: Transport): { count: () => number } {
  const socket = (t as NatsTransport).nc as unknown as { protocol: { transport: { socket: WritableInternals } } };
  const s = socket.protocol.transport.socket;
  let writes = 0;
  const write = s._write.bind(s);
  s._write = (...args) => (writes++, write(...args));
  if (s._writev) {
    const writev = s._writev.bind(s);
    s._writev = (...args) => (writes++, writev(...args));
  }
  return { count: () => writes };
}

/** The next turn of the event loop, after this one's check phase. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));

describe('NATS transport - one socket write per turn', () => {
  let nats: NatsServerHandle;
  let sender: Transport;
  let receiver: Transport;

  before(async () => {
    nats = await startNatsServer();
    sender = await connectNats(natsConfig(nats.url), 'writes-sender', { waitOnFirstConnect: false, onError: () => undefined });
    receiver = await connectNats(natsConfig(nats.url), 'writes-receiver', { waitOnFirstConnect: false, onError: () => undefined });
  });

  after(async () => {
    await sender?.close();
    await receiver?.close();
    await nats?.stop();
  });

  it('transport - publishes made over several microtask waves of one turn leave in one write, in order', async () => {
    const got: number[] = [];
    let allArrived!: () => void;
    const arrived = new Promise<void>((resolve) => (allArrived = resolve));
    receiver.subscribe('writes.publish', (m: InboundMessage) => {
      got.push(m.data[0]!);
      if (got.length === waves) allArrived();
    });
    await receiver.flush();
    await sender.flush();
    await nextTurn();
    const writes = countSocketWrites(sender);
    for (let i = 0; i < waves; i++) {
      sender.publish('writes.publish', new Uint8Array([i]));
      await Promise.resolve(); // the next wave: nats.js's flush microtask runs in between
    }
    await nextTurn();
    assert.equal(writes.count(), 1, `${waves} waves of one turn took ${writes.count()} socket writes`);
    await arrived;
    assert.deepEqual(got, [...Array(waves).keys()]);
  });

  it('transport - replies sent over several waves of one turn leave in one write, each to its request', async () => {
    const asked: InboundMessage[] = [];
    let allAsked!: () => void;
    const allIn = new Promise<void>((resolve) => (allAsked = resolve));
    sender.subscribe('writes.ask', (m: InboundMessage) => {
      asked.push(m);
      if (asked.length === waves) allAsked();
    });
    await sender.flush();
    const replies = Array.from({ length: waves }, (_, i) => receiver.request('writes.ask', new Uint8Array([i]), { timeoutMs: 5_000 }));
    await allIn;
    await nextTurn();
    const writes = countSocketWrites(sender);
    for (const m of asked) {
      m.respond(new Uint8Array([m.data[0]! + 100]));
      await Promise.resolve();
    }
    await nextTurn();
    assert.equal(writes.count(), 1, `${waves} replies over ${waves} waves took ${writes.count()} socket writes`);
    assert.deepEqual((await Promise.all(replies)).map((r) => r.data[0]), Array.from({ length: waves }, (_, i) => i + 100));
  });
});
