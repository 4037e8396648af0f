import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { checkHistory, formatViolation, OpKind, Outcome, Rule, type Operation } from '../helpers/history.js';

let nextId = 1;
type Spec = [client: string, op: OpKind, value: string | undefined, invokeMs: number, completeMs: number, outcome?: Outcome];
/** Operations on key `k` from compact tuples: [client, op, value, invoke, complete, outcome = ok]. */
function ops(...specs: Spec[]): Operation[] {
  return specs.map(([client, op, value, invokeMs, completeMs, outcome = Outcome.Ok]) => ({
    id: nextId++, client, key: 'k', op, invokeMs, completeMs, outcome, ...(value === undefined ? {} : { value }),
  }));
}
const put = (client: string, value: string, invokeMs: number, completeMs: number, outcome?: Outcome): Spec => [client, OpKind.Put, value, invokeMs, completeMs, outcome];
const del = (client: string, invokeMs: number, completeMs: number, outcome?: Outcome): Spec => [client, OpKind.Del, undefined, invokeMs, completeMs, outcome];
const get = (client: string, value: string | undefined, invokeMs: number, completeMs: number, outcome?: Outcome): Spec => [client, OpKind.Get, value, invokeMs, completeMs, outcome];
const final = (value: string | undefined) => new Map([['k', value]]);

describe('history checker: histories that pass', () => {
  it('history - sequential writes end in the last one, and each read sees the latest', () => {
    const h = ops(put('a', 'v1', 0, 10), get('b', 'v1', 12, 20), put('b', 'v2', 30, 40), get('a', 'v2', 41, 50));
    assert.deepEqual(checkHistory(h, final('v2')), []);
  });

  it('history - two overlapping acknowledged writes may end in either', () => {
    const h = ops(put('a', 'v1', 0, 10), put('b', 'v2', 5, 15));
    assert.deepEqual(checkHistory(h, final('v1')), []);
    assert.deepEqual(checkHistory(h, final('v2')), []);
  });

  it('history - a write with an unknown outcome may take effect after later acknowledged writes', () => {
    const h = ops(put('a', 'v1', 0, 10), put('b', 'v2', 20, 30, Outcome.Unknown), put('a', 'v3', 40, 50), get('c', 'v2', 60, 70));
    assert.deepEqual(checkHistory(h, final('v2')), []);
    assert.deepEqual(checkHistory(h, final('v3')), []);
  });

  it('history - a read overlapping a write may return the old or the new value', () => {
    const h = ops(put('a', 'v1', 0, 10), put('b', 'v2', 20, 40), get('c', 'v1', 25, 35), get('d', 'v2', 26, 36));
    assert.deepEqual(checkHistory(h, final('v2')), []);
  });

  it('history - absent is the initial state and what a delete leaves', () => {
    const h = ops(get('a', undefined, 0, 5), put('b', 'v1', 10, 20), del('a', 30, 40), get('b', undefined, 50, 60));
    assert.deepEqual(checkHistory(h, final(undefined)), []);
    assert.deepEqual(checkHistory(ops(get('a', undefined, 0, 5)), final(undefined)), [], 'a key never written is absent');
  });

  it('history - writes that failed or are unknown leave the initial absent state possible', () => {
    const h = ops(put('a', 'v1', 0, 10, Outcome.Failed), put('b', 'v2', 20, 30, Outcome.Unknown), get('c', undefined, 40, 50));
    assert.deepEqual(checkHistory(h, final(undefined)), []);
  });

  it('history - keys are judged apart', () => {
    const h = [...ops(put('a', 'v1', 0, 10)), { ...ops(put('a', 'w1', 20, 30))[0]!, key: 'other' }];
    assert.deepEqual(checkHistory(h, new Map([['k', 'v1'], ['other', 'w1']])), []);
  });

  it('history - stale reads pass where the caller allows them, but a read must still return something written', () => {
    const h = ops(put('a', 'v1', 0, 10), put('b', 'v2', 20, 30), get('c', 'v1', 40, 50));
    assert.deepEqual(checkHistory(h, final('v2'), { staleReadAllowed: (r) => r.completeMs >= 40 }), []);
    const phantom = ops(get('c', 'nobody', 40, 50));
    assert.equal(checkHistory(phantom, new Map(), { staleReadAllowed: () => true }).length, 1);
  });

  it('history - property: a sequential history that follows a register has no violations', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(OpKind.Put, OpKind.Del, OpKind.Get), { maxLength: 30 }), (kinds) => {
        let state: string | undefined;
        const specs: Spec[] = kinds.map((kind, i) => {
          const t = i * 10;
          if (kind === OpKind.Get) return get('a', state, t, t + 5);
          state = kind === OpKind.Put ? `v${i}` : undefined;
          return kind === OpKind.Put ? put('a', state!, t, t + 5) : del('a', t, t + 5);
        });
        assert.deepEqual(checkHistory(ops(...specs), final(state)), []);
      }),
    );
  });
});

describe('history checker: histories that fail', () => {
  it('history - a write acknowledged before another began cannot be the final state (a lost write)', () => {
    const h = ops(put('a', 'v1', 0, 10), put('b', 'v2', 20, 30));
    const v = checkHistory(h, final('v1'));
    assert.equal(v.length, 1);
    assert.equal(v[0]!.rule, Rule.Final);
    assert.equal(v[0]!.key, 'k');
    assert.match(v[0]!.message, /lost write: final state is "v1"/);
    assert.deepEqual(v[0]!.ops.map((o) => o.value), ['v1', 'v2'], 'names the lost write and the one it lost to');
  });

  it('history - absent is wrong once a put was acknowledged after every delete, or with no delete at all', () => {
    assert.equal(checkHistory(ops(put('a', 'v1', 0, 10), del('b', 20, 30), put('a', 'v3', 40, 50)), final(undefined))[0]?.rule, Rule.Final);
    const v = checkHistory(ops(put('a', 'v1', 0, 10)), final(undefined));
    assert.equal(v.length, 1);
    assert.match(v[0]!.message, /the initial absent state was followed by acknowledged/);
  });

  it('history - a final value nobody wrote, or only a refused write wrote, fails', () => {
    assert.match(checkHistory(ops(put('a', 'v1', 0, 10)), final('forged'))[0]!.message, /never written/);
    assert.match(checkHistory(ops(put('a', 'v1', 0, 10, Outcome.Failed)), final('v1'))[0]!.message, /never written/);
  });

  it('history - a read that returns a value superseded before it began is stale', () => {
    const h = ops(put('a', 'v1', 0, 10), put('b', 'v2', 20, 30), get('c', 'v1', 40, 50));
    const v = checkHistory(h, final('v2'));
    assert.equal(v.length, 1);
    assert.equal(v[0]!.rule, Rule.Read);
    assert.match(v[0]!.message, /stale read/);
    assert.deepEqual(v[0]!.ops.map((o) => o.op), [OpKind.Get, OpKind.Put, OpKind.Put]);
  });

  it('history - reading absent after an acknowledged put is stale', () => {
    const v = checkHistory(ops(put('a', 'v1', 0, 10), get('b', undefined, 20, 30)), final('v1'));
    assert.equal(v.length, 1);
    assert.match(v[0]!.message, /initial absent state was superseded/);
  });

  it('history - a read cannot see a write invoked after it completed, nor one that was refused', () => {
    assert.equal(checkHistory(ops(get('b', 'v1', 0, 10), put('a', 'v1', 20, 30)), final('v1'))[0]?.rule, Rule.Read);
    assert.equal(checkHistory(ops(put('a', 'v1', 0, 10, Outcome.Failed), get('b', 'v1', 20, 30)), final(undefined))[0]?.rule, Rule.Read);
  });

  it('history - reads that failed are not judged, reads that succeeded all are', () => {
    const h = ops(put('a', 'v1', 0, 10), put('b', 'v2', 20, 30), get('c', undefined, 40, 50, Outcome.Unknown), get('c', 'v1', 60, 70), get('d', 'v1', 61, 71));
    assert.equal(checkHistory(h, final('v2')).length, 2);
  });

  it('history - a report names the key, the operations and the seed to replay', () => {
    const [v] = checkHistory(ops(put('a', 'v1', 0, 10), put('b', 'v2', 20, 30)), final('v1'));
    const text = formatViolation(v!, 1234);
    assert.match(text, /^final violation on key "k" \(seed 1234\): lost write/);
    assert.match(text, /put "v1" -> ok \[0, 10\]/);
    assert.match(text, /put "v2" -> ok \[20, 30\]/);
    assert.match(text, /replay with GODDB_SEED=1234/);
  });

  it('history - property: a final state older than the last of sequential writes is always caught', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 20 }), fc.nat(), (n, pick) => {
        const specs = Array.from({ length: n }, (_, i) => put('a', `v${i}`, i * 10, i * 10 + 5));
        const stale = `v${pick % (n - 1)}`;
        const v = checkHistory(ops(...specs), final(stale));
        assert.equal(v.length, 1);
        assert.equal(v[0]!.rule, Rule.Final);
      }),
    );
  });
});
