/**
 * Issue 8, defect 4: client-supplied contexts are untrusted input. A context
 * with a huge counter used to be accepted, which pushed the key's history
 * (and the coordinator's own counter) beyond anything later writes could
 * supersede. Every field is now checked against a named limit, with a 400
 * that says which.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromWallMs } from '../../src/core/hlc.js';
import { limits } from '../../src/core/limits.js';
import { encodeContext } from '../../src/protocol/codec.js';
import { ClientOp } from '../../src/protocol/subjects.js';
import { SimCluster, simSeed } from '../helpers/sim_cluster.js';

const ids = ['n1', 'n2', 'n3'];

describe('untrusted client contexts', () => {
  it('sim context - a counter of 2^53-1 is refused with 400, and later writes still supersede earlier ones', async () => {
    const c = new SimCluster(simSeed(), ids);
    await c.start();
    assert.equal((await c.request(ClientOp.Put, 'k', 'one')).code, 200);
    const read = await c.request(ClientOp.Get, 'k');
    const poisoned = encodeContext({ n1: Number.MAX_SAFE_INTEGER, n2: Number.MAX_SAFE_INTEGER, n3: Number.MAX_SAFE_INTEGER });
    const bad = await c.request(ClientOp.Put, 'k', 'poison', { 'KV-Context': poisoned });
    assert.equal(bad.code, 400);
    assert.match(bad.message, /ahead of this node's clock, more than the maximum clock skew of 60000 ms/);
    for (let i = 0; i < 6; i++) {
      const ctx = (await c.request(ClientOp.Get, 'k')).header('KV-Context')!;
      assert.equal((await c.request(ClientOp.Put, 'k', `v${i}`, { 'KV-Context': ctx })).code, 200);
      assert.equal((await c.request(ClientOp.Get, 'k', '', { 'KV-R': '3' })).value, `v${i}`, 'each write supersedes the one before');
    }
    assert.ok(read.header('KV-Context'));
    for (const id of ids) assert.ok(c.node(id).node.hlc.peek() < fromWallMs(c.clock.nowMs() + 60_001), `${id}'s clock was not dragged ahead`);
    await c.stop();
  });

  it('sim context - contexts with too many entries, bad node ids, zero or fractional counters, or too long are refused with 400', async () => {
    const c = new SimCluster(simSeed(), ids);
    await c.start();
    const many: Record<string, number> = {};
    for (let i = 0; i <= limits.clockEntriesDecodeMax; i++) many[`x${i}`] = 1;
    const cases: [string, RegExp][] = [
      [encodeContext(many), /entries, more than clockEntriesDecodeMax/],
      [encodeContext({ 'a.b': 5 }), /not a node id/],
      [encodeContext({ n1: 0 }), /not a counter/],
      [encodeContext({ n1: 1.5 }), /not a counter/],
      ['A'.repeat(limits.contextCharsMax + 1), /over contextCharsMax/],
      ['not base64!', /not base64url/],
    ];
    for (const [ctx, why] of cases) {
      const r = await c.request(ClientOp.Put, 'k', 'x', { 'KV-Context': ctx });
      assert.equal(r.code, 400, `${ctx.slice(0, 40)}: ${r.message}`);
      const detail = (r.message + ' ' + (r.header('Nats-Service-Error') ?? ''));
      assert.match(detail, /KV-Context/);
      assert.match(detail, why);
    }
    await c.stop();
  });
});
