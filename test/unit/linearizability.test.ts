import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { seededRandom } from '../../src/transport/sim.js';
import { OpKind, Outcome, type Operation } from '../helpers/history.js';
import {
  checkLinearizable,
  formatLinearizability,
  RegisterOp,
  RegisterOutcome,
  Verdict,
  type KeyResult,
  type RegisterOperation,
} from '../helpers/linearizability.js';

/** An operation on key `k` without its id; `h` numbers them in order. */
type Spec = Omit<RegisterOperation, 'id' | 'key'> & { key?: string };
const h = (...specs: Spec[]): RegisterOperation[] => specs.map((s, i) => ({ key: 'k', ...s, id: i + 1 }));

const ok = RegisterOutcome.Ok;
const conflict = RegisterOutcome.Conflict;
const unknown = RegisterOutcome.Unknown;
type Outcome3 = RegisterOutcome;
const get = (client: string, value: string | undefined, invokeMs: number, completeMs: number, outcome: Outcome3 = ok): Spec => ({ client, op: RegisterOp.Get, invokeMs, completeMs, outcome, ...(value === undefined ? {} : { value }) });
const put = (client: string, value: string, invokeMs: number, completeMs: number, outcome: Outcome3 = ok): Spec => ({ client, op: RegisterOp.Put, value, invokeMs, completeMs, outcome });
const del = (client: string, invokeMs: number, completeMs: number, outcome: Outcome3 = ok): Spec => ({ client, op: RegisterOp.Del, invokeMs, completeMs, outcome });
const ifAbsent = (client: string, value: string, invokeMs: number, completeMs: number, outcome: Outcome3 = ok): Spec => ({ client, op: RegisterOp.PutIfAbsent, value, invokeMs, completeMs, outcome });
const ifMatch = (client: string, expected: string, value: string, invokeMs: number, completeMs: number, outcome: Outcome3 = ok): Spec => ({ client, op: RegisterOp.PutIfMatch, expected, value, invokeMs, completeMs, outcome });

const only = (r: ReturnType<typeof checkLinearizable>): KeyResult => {
  assert.equal(r.keys.length, 1);
  return r.keys[0]!;
};
const order = (k: KeyResult) => k.linearized.map((s) => s.op.id);
const assertOk = (ops: RegisterOperation[]) => {
  const r = checkLinearizable(ops);
  assert.equal(r.verdict, Verdict.Ok, formatLinearizability(r));
  return only(r);
};
const assertViolation = (ops: RegisterOperation[]) => {
  const r = checkLinearizable(ops);
  assert.equal(r.verdict, Verdict.Violation, `expected a violation, got ${r.verdict}`);
  return only(r);
};

describe('linearizability: histories that pass', () => {
  it('linearizability - a sequential history of every kind of operation is linearizable in its own order', () => {
    const ops = h(
      get('a', undefined, 0, 5),
      ifAbsent('a', 'v1', 10, 15),
      ifAbsent('b', 'v2', 20, 25, conflict),
      ifMatch('b', 'v1', 'v3', 30, 35),
      ifMatch('a', 'v1', 'v4', 40, 45, conflict),
      get('a', 'v3', 50, 55),
      put('b', 'v5', 60, 65),
      del('a', 70, 75),
      get('b', undefined, 80, 85),
    );
    const k = assertOk(ops);
    assert.deepEqual(order(k), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(k.linearized.map((s) => s.after), [undefined, 'v1', 'v1', 'v3', 'v3', 'v3', 'v5', undefined, undefined]);
  });

  it('linearizability - concurrent writes pass in the one order the reads allow, and the witness shows it', () => {
    // Both puts span everything; the reads fix b's put first, then a's.
    const k = assertOk(h(put('a', 'va', 0, 100), put('b', 'vb', 0, 100), get('c', 'vb', 10, 20), get('c', 'va', 30, 40)));
    assert.deepEqual(order(k), [2, 3, 1, 4]);
  });

  it('linearizability - of two concurrent putIfAbsent, the one that lost must come after the winner', () => {
    const k = assertOk(h(ifAbsent('a', 'x', 0, 50, conflict), ifAbsent('b', 'y', 0, 50), get('c', 'y', 60, 70)));
    assert.deepEqual(order(k), [2, 1, 3]);
  });

  it('linearizability - a conflict that reports the current value must report the value it lost to', () => {
    const lost = (current: string | null): RegisterOperation[] => h(ifAbsent('a', 'x', 0, 10), { ...ifMatch('b', 'old', 'y', 20, 30, conflict), current });
    assertOk(lost('x'));
    assertViolation(lost('y'));
    assertViolation(lost(null));
  });

  it('linearizability - a counter made of reads and putIfMatch passes when each increment saw the last', () => {
    const k = assertOk(h(
      put('a', '0', 0, 5),
      get('a', '0', 10, 20), get('b', '0', 12, 22),
      ifMatch('a', '0', '1@a', 30, 40), ifMatch('b', '0', '1@b', 31, 41, conflict),
      get('b', '1@a', 50, 55), ifMatch('b', '1@a', '2@b', 60, 70),
    ));
    assert.equal(k.linearized.at(-1)!.after, '2@b');
  });

  it('linearizability - operations that touch in time are concurrent (ms clocks tie often)', () => {
    const k = assertOk(h(put('a', 'v1', 0, 10), get('b', undefined, 10, 20)));
    assert.deepEqual(order(k), [2, 1]);
    assertViolation(h(put('a', 'v1', 0, 10), get('b', undefined, 11, 20)));
  });

  it('linearizability - plain history.ts operations are register operations as they are', () => {
    const plain: Operation[] = [
      { id: 1, client: 'a', key: 'k', op: OpKind.Put, value: 'v1', invokeMs: 0, completeMs: 10, outcome: Outcome.Ok },
      { id: 2, client: 'b', key: 'k', op: OpKind.Get, value: 'v1', invokeMs: 20, completeMs: 30, outcome: Outcome.Ok },
      { id: 3, client: 'b', key: 'k', op: OpKind.Put, value: 'v2', invokeMs: 40, completeMs: 50, outcome: Outcome.Failed },
      { id: 4, client: 'c', key: 'k', op: OpKind.Get, invokeMs: 60, completeMs: 70, outcome: Outcome.Unknown },
    ];
    assert.equal(checkLinearizable(plain).verdict, Verdict.Ok);
  });

  it('linearizability - keys are judged apart, and the report says which one failed', () => {
    const ops = h(put('a', 'v1', 0, 10), get('b', 'v1', 20, 30), { ...put('a', 'w1', 0, 10), key: 'other' }, { ...get('b', 'nobody', 20, 30), key: 'other' });
    const r = checkLinearizable(ops);
    assert.equal(r.verdict, Verdict.Violation);
    assert.deepEqual(r.keys.map((k) => [k.key, k.verdict]), [['k', Verdict.Ok], ['other', Verdict.Violation]]);
  });
});

describe('linearizability: classic violations', () => {
  it('linearizability - two putIfAbsent that both succeed on the same key are a violation', () => {
    const k = assertViolation(h(ifAbsent('a', 'x', 0, 50), ifAbsent('b', 'y', 10, 60)));
    assert.equal(k.linearized.length, 1);
    assert.equal(k.blocked!.op, RegisterOp.PutIfAbsent);
  });

  it('linearizability - a read returning a value older than a completed write is a violation', () => {
    const k = assertViolation(h(put('a', 'v1', 0, 10), put('b', 'v2', 20, 30), get('c', 'v1', 40, 50)));
    assert.deepEqual(order(k), [1, 2]);
    assert.equal(k.blocked!.id, 3);
    assert.deepEqual(k.refused!.map((x) => [x.op.id, x.why]), [[3, 'it would read "v2"']]);
  });

  it('linearizability - a putIfMatch succeeding on a stale expected value is a violation', () => {
    assertViolation(h(put('a', 'v1', 0, 10), put('b', 'v2', 20, 30), ifMatch('c', 'v1', 'v3', 40, 50)));
  });

  it('linearizability - two increments of a counter that both succeed from the same value are a lost update', () => {
    assertViolation(h(put('a', '0', 0, 5), ifMatch('a', '0', '1@a', 10, 40), ifMatch('b', '0', '1@b', 12, 42)));
  });

  it('linearizability - a read of a value never written is a violation', () => {
    const k = assertViolation(h(put('a', 'v1', 0, 10), get('b', 'nobody', 5, 20)));
    assert.equal(k.blocked!.id, 2);
  });

  it('linearizability - a putIfAbsent refused on an absent key is a violation', () => {
    assertViolation(h(ifAbsent('a', 'x', 0, 10, conflict)));
    assertViolation(h(put('a', 'v1', 0, 10), del('a', 20, 30), ifAbsent('b', 'x', 40, 50, conflict)));
  });

  it('linearizability - an acknowledged delete must not be undone by an older value', () => {
    assertViolation(h(put('a', 'v1', 0, 10), del('b', 20, 30), get('c', 'v1', 40, 50)));
  });

  it('linearizability - the counter-example names the key, the longest prefix, the operation it could not place and why', () => {
    const r = checkLinearizable(h(put('a', 'v1', 0, 10), put('b', 'v2', 20, 30), ifMatch('c', 'v1', 'v3', 40, 50)));
    const text = formatLinearizability(r, 7);
    assert.match(text, /violation on key "k" \(seed 7\)/);
    assert.match(text, /could not place #3 c putIfMatch "v3" if "v1" -> ok \[40, 50\]/);
    assert.match(text, /#1 a put "v1" -> ok \[0, 10\]  => "v1"/);
    assert.match(text, /#2 b put "v2" -> ok \[20, 30\]  => "v2"/);
    assert.match(text, /with the key "v2", none of these could go next:\n {4}#3 .*: the key holds "v2", not "v1"/);
    assert.match(text, /replay with GODDB_SEED=7/);
    assert.equal(formatLinearizability(checkLinearizable(h(put('a', 'v1', 0, 10)))), '', 'nothing to report when every key is ok');
  });
});

describe('linearizability: unknown outcomes', () => {
  it('linearizability - an unknown put may take effect after later acknowledged writes', () => {
    assertOk(h(put('a', 'v1', 0, 10), put('b', 'v2', 20, 30, unknown), put('a', 'v3', 40, 50), get('c', 'v2', 60, 70)));
  });

  it('linearizability - an unknown put may never take effect', () => {
    const k = assertOk(h(put('b', 'v2', 0, 10, unknown), get('c', undefined, 20, 30), get('c', undefined, 40, 50)));
    assert.deepEqual(order(k), [2, 3], 'the witness leaves it out');
  });

  it('linearizability - an unknown put may take effect between two reads, but not before its invocation', () => {
    assertOk(h(get('c', undefined, 0, 10), put('b', 'v2', 20, 30, unknown), get('c', 'v2', 40, 50)));
    assertViolation(h(get('c', 'v2', 0, 10), put('b', 'v2', 20, 30, unknown)));
  });

  it('linearizability - once an unknown write is seen, reads may not go back to the value before it', () => {
    assertViolation(h(put('a', 'v1', 0, 10), put('b', 'v2', 20, 30, unknown), get('c', 'v2', 40, 50), get('c', 'v1', 60, 70)));
  });

  it('linearizability - an unknown putIfAbsent that lost its race takes no effect, and one that won blocks the others', () => {
    assertOk(h(ifAbsent('a', 'x', 0, 10), ifAbsent('b', 'y', 5, 15, unknown), get('c', 'x', 20, 30)));
    // b's unknown putIfAbsent won (the read shows it), so a's later one must conflict.
    assertOk(h(ifAbsent('b', 'y', 0, 10, unknown), get('c', 'y', 20, 30), ifAbsent('a', 'x', 40, 50, conflict)));
    assertViolation(h(ifAbsent('b', 'y', 0, 10, unknown), get('c', 'y', 20, 30), ifAbsent('a', 'x', 40, 50)));
  });

  it('linearizability - an unknown putIfMatch takes effect only where its expected value is current', () => {
    assertOk(h(put('a', 'v1', 0, 10), ifMatch('b', 'v1', 'v2', 20, 30, unknown), get('c', 'v2', 40, 50)));
    assertViolation(h(put('a', 'v1', 0, 10), put('a', 'v0', 12, 18), ifMatch('b', 'v1', 'v2', 20, 30, unknown), get('c', 'v2', 40, 50)));
  });

  it('linearizability - an unknown write whose value is read must have taken effect by that read, and the report says so', () => {
    const r = checkLinearizable(h(put('a', 'v1', 0, 10), ifAbsent('b', 'x', 20, 30, unknown), get('c', 'x', 30, 40)));
    const k = only(r);
    assert.equal(k.verdict, Verdict.Violation);
    assert.equal(k.blocked!.id, 2);
    assert.equal(k.observedBy!.id, 3);
    assert.match(formatLinearizability(r), /could not place #2 b putIfAbsent "x" if absent -> unknown \[20, never\] by the time #3 c get -> "x" \[30, 40\] observed its value/);
    assert.equal(checkLinearizable(h(put('a', 'v1', 0, 10), del('a', 12, 18), ifAbsent('b', 'x', 20, 30, unknown), get('c', 'x', 30, 40))).verdict, Verdict.Ok);
  });

  it('linearizability - an unknown write nobody observed is left out, unless a conflict that reports nothing could need it', () => {
    const unseen = only(checkLinearizable(h(put('a', 'v1', 0, 10, unknown), get('c', undefined, 20, 30))));
    assert.equal(unseen.opCount, 1);
    // Only b's put can explain the refusal of c's putIfAbsent: it took effect, though nobody read its value.
    const k = assertOk(h(put('b', 'v1', 0, 10, unknown), ifAbsent('c', 'x', 20, 30, conflict)));
    assert.deepEqual(order(k), [1, 2]);
    assertViolation(h(put('b', 'v1', 0, 10, unknown), ifAbsent('c', 'x', 20, 30, conflict), get('d', undefined, 40, 50)));
  });

  it('linearizability - an unknown write is kept when another unknown write names its value, or when its value is not unique', () => {
    // b's put is seen only through c's unknown putIfMatch, whose own value is read.
    assertOk(h(put('a', 'v1', 0, 10), put('b', 'v2', 20, 30, unknown), ifMatch('c', 'v2', 'v3', 40, 50, unknown), get('d', 'v3', 60, 70)));
    // "x" is written twice: the read may have seen the plain put, so the unknown putIfAbsent need not have succeeded.
    assertOk(h(put('a', 'v1', 0, 5), ifAbsent('b', 'x', 10, 20, unknown), put('c', 'x', 10, 20), get('d', 'x', 30, 40)));
  });

  it('linearizability - refused writes and reads of unknown outcome are left out', () => {
    const k = assertOk(h(put('a', 'v1', 0, 10, RegisterOutcome.Failed), get('b', 'zz', 20, 30, unknown), get('c', undefined, 40, 50)));
    assert.equal(k.opCount, 1);
  });
});

/** A command of the model, before it has a result. */
type Command = { kind: 'get' } | { kind: 'put' } | { kind: 'del' } | { kind: 'ifAbsent' } | { kind: 'ifMatch'; stale: boolean };
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  fc.constant({ kind: 'get' } as const),
  fc.constant({ kind: 'put' } as const),
  fc.constant({ kind: 'del' } as const),
  fc.constant({ kind: 'ifAbsent' } as const),
  fc.boolean().map((stale) => ({ kind: 'ifMatch', stale }) as const),
);

/**
 * Runs `commands` one at a time against a plain register (the test's own
 * model, apart from the checker's) at points 100 ms apart, and records each
 * with its true result in a zero-width interval around its point.
 */
function sequential(commands: readonly Command[]): Spec[] {
  let state: string | undefined;
  let previous: string | undefined;
  return commands.map((c, i): Spec => {
    const t = 100 * (i + 1);
    const v = `v${i}`;
    const client = `c${i % 3}`;
    switch (c.kind) {
      case 'get':
        return get(client, state, t, t);
      case 'put':
        [previous, state] = [state, v];
        return put(client, v, t, t);
      case 'del':
        [previous, state] = [state, undefined];
        return del(client, t, t);
      case 'ifAbsent': {
        const won = state === undefined;
        if (won) [previous, state] = [state, v];
        return ifAbsent(client, v, t, t, won ? ok : conflict);
      }
      case 'ifMatch': {
        const expected = (c.stale ? previous : state) ?? 'never-written';
        const won = expected === state;
        if (won) [previous, state] = [state, v];
        return ifMatch(client, expected, v, t, t, won ? ok : conflict);
      }
    }
  });
}

describe('linearizability: properties', () => {
  it('linearizability - property: a sequential run of the model, its intervals widened at random, is linearizable', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(commandArb, fc.nat(250), fc.nat(250), fc.boolean()), { maxLength: 40 }),
        fc.array(fc.tuple(fc.nat(4_000), fc.nat(300)), { maxLength: 4 }),
        (cmds, ghosts) => {
          const specs = sequential(cmds.map(([c]) => c)).map((s, i) => {
            const [, before, after, lost] = cmds[i]!;
            // Widened up to 2.5 points each way: each operation overlaps up to five neighbours.
            const w = { ...s, invokeMs: s.invokeMs - before, completeMs: s.completeMs + after };
            // A write whose reply was lost still took effect at its point.
            return lost && s.op !== RegisterOp.Get ? { ...w, outcome: unknown } : w;
          });
          // Writes whose outcome is unknown and that never took effect.
          const never = ghosts.map(([at, len], j) => put('ghost', `ghost${j}`, at, at + len, unknown));
          const r = checkLinearizable(h(...specs, ...never));
          assert.equal(r.verdict, Verdict.Ok, formatLinearizability(r));
        },
      ),
    );
  });

  it('linearizability - property: the reductions of unknown writes change no verdict', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(commandArb, fc.nat(250), fc.nat(250), fc.nat(9)), { maxLength: 25 }),
        fc.option(fc.tuple(fc.nat(), fc.nat(30)), { nil: undefined }),
        (cmds, mutation) => {
          const specs: Spec[] = sequential(cmds.map(([c]) => c)).map((s, i) => {
            const [, before, after, dice] = cmds[i]!;
            const w = { ...s, invokeMs: s.invokeMs - before, completeMs: s.completeMs + after };
            if (dice < 3 && s.op !== RegisterOp.Get) return { ...w, outcome: unknown };
            if (dice === 3 && s.op === RegisterOp.PutIfMatch && s.outcome === conflict) return { ...w, current: null };
            return w;
          });
          if (mutation !== undefined && specs.length > 0) {
            // Some reads changed to a value some operation wrote (or absent): the verdict may be either, but the same.
            const [i, j] = mutation;
            const s = specs[i % specs.length]!;
            if (s.op === RegisterOp.Get) specs[i % specs.length] = { ...s, value: j < specs.length ? specs[j]!.value : undefined };
          }
          const ops = h(...specs);
          const fast = checkLinearizable(ops);
          const exact = checkLinearizable(ops, { exactUnknowns: true });
          assert.equal(fast.verdict, exact.verdict, formatLinearizability(exact) || formatLinearizability(fast));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('linearizability - property: in a sequential history, changing any one result is caught at that operation', () => {
    const mutable = (s: Spec) => s.op === RegisterOp.Get || s.op === RegisterOp.PutIfAbsent || s.op === RegisterOp.PutIfMatch;
    fc.assert(
      fc.property(
        fc.array(commandArb, { minLength: 1, maxLength: 30 }).filter((cs) => sequential(cs).some(mutable)),
        fc.nat(),
        fc.boolean(),
        (cmds, pick, toOtherValue) => {
          const specs = sequential(cmds).map((s) => ({ ...s, invokeMs: s.invokeMs - 10, completeMs: s.completeMs + 10 }));
          const candidates = specs.map((s, i) => ({ s, i })).filter(({ s }) => mutable(s));
          const { s, i } = candidates[pick % candidates.length]!;
          let mutated: Spec;
          if (s.op === RegisterOp.Get) {
            // A read changed to another value written in the history, or to absent, or to one never written.
            const others = specs.filter((o) => o.value !== undefined && o.value !== s.value && o.op !== RegisterOp.Get).map((o) => o.value);
            const value = toOtherValue && others.length > 0 ? others[pick % others.length] : s.value === undefined ? 'never-written' : undefined;
            mutated = { ...s, value };
            if (value === undefined) delete mutated.value;
          } else {
            mutated = { ...s, outcome: s.outcome === ok ? conflict : ok }; // a success flipped to a conflict, or back
          }
          const ops = h(...specs.slice(0, i), mutated, ...specs.slice(i + 1));
          const k = only(checkLinearizable(ops));
          assert.equal(k.verdict, Verdict.Violation, `mutating #${i + 1} went unnoticed`);
          assert.equal(k.blocked!.id, i + 1, 'the counter-example stops at the mutated operation');
          assert.equal(k.linearized.length, i, 'everything before it is placed');
        },
      ),
    );
  });
});

/** ~`n` operations on one key, `concurrency` clients at a time, from a seeded register run with widened intervals. */
function busyHistory(n: number, concurrency: number, seed: number): RegisterOperation[] {
  const random = seededRandom(seed);
  const kinds: Command['kind'][] = ['get', 'get', 'put', 'del', 'ifAbsent', 'ifMatch', 'ifMatch'];
  const cmds = Array.from({ length: n }, (): Command => {
    const kind = kinds[Math.floor(random() * kinds.length)]!;
    return kind === 'ifMatch' ? { kind, stale: random() < 0.3 } : { kind };
  });
  const reach = 100 * concurrency;
  return h(...sequential(cmds).map((s) => ({ ...s, invokeMs: s.invokeMs - Math.floor(random() * reach), completeMs: s.completeMs + Math.floor(random() * reach) })));
}

describe('linearizability: limits', () => {
  it('linearizability - 200 operations on one key at concurrency 5 are decided (must finish within the test timeout)', () => {
    const ops = busyHistory(200, 5, 12);
    const k = assertOk(ops);
    assert.equal(k.opCount, 200);
    // The same history with a read changed to a value never written is caught just as well.
    const bad = ops.map((o) => (o.id === 150 ? { ...o, op: RegisterOp.Get, value: 'never-written', outcome: ok } : o));
    assert.equal(only(checkLinearizable(bad)).verdict, Verdict.Violation);
  });

  it('linearizability - past the caps a key is unknown (too large), not a hang', () => {
    const ops = busyHistory(60, 5, 3);
    const tooMany = only(checkLinearizable(ops, { opsPerKeyMax: 50 }));
    assert.equal(tooMany.verdict, Verdict.Unknown);
    assert.match(tooMany.reason!, /^too large: 60 operations/);
    const tooLong = only(checkLinearizable(ops, { searchStepsMax: 20 }));
    assert.equal(tooLong.verdict, Verdict.Unknown);
    assert.match(formatLinearizability({ verdict: Verdict.Unknown, keys: [tooLong] }), /unknown: too large: gave up after 20 search steps/);
    assert.equal(checkLinearizable(ops).verdict, Verdict.Ok, 'within the default caps it is decided');
  });

  it('linearizability - a violation outranks an unknown key in the overall verdict', () => {
    const ops = [...busyHistory(60, 5, 3), ...h({ ...get('x', 'nobody', 0, 10), key: 'k2' })].map((o, i) => ({ ...o, id: i + 1 }));
    const r = checkLinearizable(ops, { opsPerKeyMax: 50 });
    assert.deepEqual(r.keys.map((k) => k.verdict), [Verdict.Unknown, Verdict.Violation]);
    assert.equal(r.verdict, Verdict.Violation);
  });
});
