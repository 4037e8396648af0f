import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { headerBytes, SimBus, subjectMatches } from '../../src/transport/sim.js';
import { NoRespondersError, replyError, RequestTimeoutError } from '../../src/transport/transport.js';
import { FakeClock } from '../helpers/fake_clock.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe('simulated bus', () => {
  it('sim bus - subjects match like NATS: * is one token, > is one or more', () => {
    const m = (p: string, s: string) => subjectMatches(p.split('.'), s.split('.'));
    assert.equal(m('kv.get.>', 'kv.get.a.b'), true);
    assert.equal(m('kv.get.>', 'kv.get'), false);
    assert.equal(m('kv.*.a', 'kv.put.a'), true);
    assert.equal(m('kv.*.a', 'kv.put.a.b'), false);
    assert.equal(m('kv.get', 'kv.get'), true);
  });

  it('sim bus - gather collects every reply within the wait; a queue group answers once', async () => {
    const clock = new FakeClock();
    const bus = new SimBus({ seed: 1, clock });
    for (const id of ['a', 'b', 'c']) bus.connect(id).subscribe('ping', (m) => m.respond(bytes(id)));
    bus.connect('q1').subscribe('ping', (m) => m.respond(bytes('q')), { queue: 'g' });
    bus.connect('q2').subscribe('ping', (m) => m.respond(bytes('q')), { queue: 'g' });
    const replies = await clock.run(bus.connect('client').gather('ping', new Uint8Array(0), { waitMs: 100 }));
    assert.deepEqual(replies.map((r) => text(r.data)).sort(), ['a', 'b', 'c', 'q']);
    const first = await clock.run(bus.connect('client2').gather('ping', new Uint8Array(0), { waitMs: 100, max: 1 }));
    assert.equal(first.length, 1);
  });

  it('sim bus - a killed connection stops answering: no responders at once', async () => {
    const clock = new FakeClock();
    const bus = new SimBus({ seed: 2, clock });
    bus.connect('srv').subscribe('svc', (m) => m.respond(bytes('ok')));
    const client = bus.connect('client');
    assert.equal(text((await clock.run(client.request('svc', new Uint8Array(0), { timeoutMs: 100 }))).data), 'ok');
    bus.kill('srv');
    await assert.rejects(clock.run(client.request('svc', new Uint8Array(0), { timeoutMs: 100 })), NoRespondersError);
  });
});

describe('simulated bus faults', () => {
  it('sim bus - a duplicated request runs its handler twice and the requester takes the first reply only', async () => {
    const clock = new FakeClock();
    const bus = new SimBus({ seed: 3, clock, duplicateRate: 1 });
    let calls = 0;
    bus.connect('srv').subscribe('svc', (m) => m.respond(bytes(`reply ${++calls}`)));
    const client = bus.connect('client');
    const reply = await clock.run(client.request('svc', new Uint8Array(0), { timeoutMs: 100 }));
    await clock.advance(100);
    assert.equal(calls, 2, 'the handler ran for each copy');
    assert.match(text(reply.data), /^reply [12]$/);
    assert.equal(client.duplicatesSent, 1);
  });

  it('sim bus - deliveries with their own delays overtake one another', async () => {
    const clock = new FakeClock();
    const bus = new SimBus({ seed: 4, clock, minDelayMs: 1, maxDelayMs: 50 });
    const got: number[] = [];
    bus.connect('sub').subscribe('s', (m) => void got.push(Number(text(m.data))));
    const pub = bus.connect('pub');
    for (let i = 0; i < 20; i++) pub.publish('s', bytes(String(i)));
    await clock.advance(100);
    assert.equal(got.length, 20);
    assert.notDeepEqual(got, [...got].sort((a, b) => a - b), 'some arrived out of order');
  });

  it('sim bus - max_payload counts payload and encoded headers, and refusals are those of nats.js', async () => {
    const clock = new FakeClock();
    assert.equal(new SimBus({ seed: 5, clock }).connect('x').maxPayloadBytes(), 1024 * 1024, 'nats-server default');
    const bus = new SimBus({ seed: 5, clock, maxPayloadBytes: 100 });
    const c = bus.connect('c');
    assert.equal(c.maxPayloadBytes(), 100);
    c.publish('s', new Uint8Array(100));
    assert.throws(() => c.publish('s', new Uint8Array(101)), (e: Error) => e.name === 'InvalidArgumentError' && e.message === "'payload' max_payload size exceeded");
    // NATS/1.0\r\n + "KV-R: 2\r\n" + \r\n = 8 + 2 + 4 + 1 + 1 + 4 (nats.js: "NATS/1.0" then "\r\nK: v" per header then "\r\n\r\n").
    assert.equal(headerBytes({ 'KV-R': '2' }), 8 + (4 + 4 + 1) + 4);
    assert.equal(headerBytes({}), 0);
    c.publish('s', new Uint8Array(100 - headerBytes({ 'KV-R': '2' })), { 'KV-R': '2' });
    assert.throws(() => c.publish('s', new Uint8Array(101 - headerBytes({ 'KV-R': '2' })), { 'KV-R': '2' }), /max_payload size exceeded/);
    assert.throws(() => c.publish('s', new Uint8Array(0), { 'KV-Key': 'a\nb' }), (e: Error) => e.message === "'header' values cannot contain \\r or \\n");
    await assert.rejects(c.request('s', new Uint8Array(200), { timeoutMs: 10 }), /max_payload size exceeded/, 'a request rejects, as the NATS adapter does');
  });

  it('sim bus - a reply that cannot be sent becomes a 500 and is reported; reply header values are sanitized', async () => {
    const clock = new FakeClock();
    const bus = new SimBus({ seed: 6, clock, maxPayloadBytes: 1000 });
    const reported: string[] = [];
    bus.onError = (e) => reported.push(`${e.conn} ${e.what}: ${(e.err as Error).message}`);
    const srv = bus.connect('srv');
    srv.subscribe('big', (m) => m.respond(new Uint8Array(2000)));
    srv.subscribe('odd', (m) => m.respondError(400, 'bad key "a\r\nb"'));
    const client = bus.connect('client');
    const big = await clock.run(client.request('big', new Uint8Array(0), { timeoutMs: 100 }));
    assert.equal(replyError(big)?.code, 500);
    assert.match(replyError(big)!.message, /the reply could not be sent: 'payload' max_payload size exceeded/);
    assert.deepEqual(reported, ["srv reply failed: 'payload' max_payload size exceeded"]);
    const odd = await clock.run(client.request('odd', new Uint8Array(0), { timeoutMs: 100 }));
    assert.equal(replyError(odd)?.message, 'bad key "a\\r\\nb"');
  });

  it('sim bus - a handler that throws or rejects is answered with 500 and reported, and the bus keeps going', async () => {
    const clock = new FakeClock();
    const bus = new SimBus({ seed: 7, clock });
    const reported: string[] = [];
    bus.onError = (e) => reported.push(`${e.what} on ${e.subject}`);
    const srv = bus.connect('srv');
    srv.subscribe('throws', () => {
      throw new Error('boom');
    });
    srv.subscribe('rejects', async () => {
      throw new Error('later');
    });
    const client = bus.connect('client');
    for (const subject of ['throws', 'rejects']) {
      const r = await clock.run(client.request(subject, new Uint8Array(0), { timeoutMs: 100 }));
      assert.equal(replyError(r)?.code, 500);
    }
    assert.deepEqual(reported, ['handler failed on throws', 'handler failed on rejects']);
  });

  it('sim bus - a killed process hears nothing more, not even replies that reach its name after a restart', async () => {
    const clock = new FakeClock();
    const bus = new SimBus({ seed: 8, clock, minDelayMs: 10, maxDelayMs: 10 });
    let served = 0;
    bus.connect('srv').subscribe('svc', (m) => m.respond(bytes(`ok ${++served}`)));
    const old = bus.connect('node');
    const pending = old.request('svc', new Uint8Array(0), { timeoutMs: 100 });
    await clock.advance(5);
    bus.kill('node');
    const restarted = bus.connect('node');
    await assert.rejects(clock.run(pending), RequestTimeoutError, 'the reply to the dead process is lost');
    assert.equal(served, 1, 'the request it sent before dying was served');
    assert.equal(text((await clock.run(restarted.request('svc', new Uint8Array(0), { timeoutMs: 100 }))).data), 'ok 2');
  });
});
