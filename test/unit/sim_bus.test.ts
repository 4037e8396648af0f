import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SimBus, subjectMatches } from '../../src/transport/sim.js';
import { NoRespondersError } from '../../src/transport/transport.js';
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
