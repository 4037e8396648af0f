/**
 * A per-key linearizability checker (Herlihy and Wing 1990) for keys used as
 * registers with conditional writes: the proof tool for KV-If-Absent and
 * KV-If-Match (issue 12), which must be linearizable per key where plain
 * writes (history.ts) only promise the weaker Dynamo rules.
 *
 * The search is Wing and Gong's (1993) with Lowe's memoisation ("Testing for
 * linearizability", 2017): walk the history's call and return events in time
 * order; at a call, try to linearize that operation next (apply it to the
 * model, lift its events out of the list, start again from the front); at a
 * return whose operation is not yet linearized, nothing placed so far can be
 * extended, so backtrack. A configuration (set of linearized operations,
 * model state) fully decides the rest of the search, so each one is explored
 * once: the cache is what makes register histories tractable, since reads do
 * not change the state and the orders of concurrent reads all collapse into
 * one configuration. Lowe's just-in-time linearization (place an operation
 * only when some return forces it) mostly prunes the same orders this cache
 * does for a register model; it is not done here. Knossos (Jepsen) and
 * Porcupine check histories the same way; keys are independent objects
 * (linearizability is local, Herlihy and Wing's theorem 1; Porcupine's
 * P-compositionality), so each key is searched apart.
 *
 * An operation whose outcome is unknown (timeout, no reply, a duplicated
 * request: Knossos's :info) may take effect at any time after its invocation
 * or never: it has no return event, and the search succeeds once every
 * operation with a known outcome is placed, whether or not the unknown ones
 * were. Refused operations (400, 413) and reads with an unknown outcome
 * neither change nor observe the state and are left out. Unknown writes
 * pending to the end are what blows Knossos's searches up; two exact
 * reductions (settle, below) bound or drop most of them first, and
 * `exactUnknowns` turns them off to cross-check them.
 *
 * The model, one key: absent or a value. Every written value is unique in a
 * test history, so the version context of KV-If-Match is modelled as the
 * value it names, as Knossos's cas-register does.
 *
 * Bounded (limits): more than `opsPerKeyMax` operations on a key (2,000),
 * or more than `searchStepsMax` steps of the search on it (2,000,000: each
 * candidate tried and each backtrack is one step; the cache holds at most
 * that many entries), and the key's verdict is "unknown: too large" instead
 * of a hang. The problem is NP-complete in general (Gibbons and Korach
 * 1997): the cost grows with how many operations overlap, not with length.
 * Measured on the 2-core dev machine: 2,000 operations at concurrency 5
 * decide in ~0.15 s (~25k steps), 500 at concurrency 10 in ~0.5 s (~500k
 * steps); a key that hits the step cap gives up after 1 to 3.5 s with under
 * 150 MB resident. Sim histories (3 to 6 sequential clients, a few hundred
 * operations per key) stay far below the caps.
 *
 * Pure: plain data in, verdicts out.
 */
import assert from 'node:assert/strict';
import { OpKind, Outcome, type Operation } from './history.js';

/** The operations on a key: history.ts's, plus the two conditional writes. */
export const RegisterOp = {
  ...OpKind,
  /** KV-If-Absent: writes `value` only when the key is absent; ok or conflict. */
  PutIfAbsent: 'putIfAbsent',
  /** KV-If-Match: writes `value` only when the key holds `expected`; ok or conflict. */
  PutIfMatch: 'putIfMatch',
} as const;
export type RegisterOp = (typeof RegisterOp)[keyof typeof RegisterOp];

export const RegisterOutcome = {
  ...Outcome,
  /** A conditional write refused because its condition did not hold (409): it took no effect, and observed the state. */
  Conflict: 'conflict',
} as const;
export type RegisterOutcome = (typeof RegisterOutcome)[keyof typeof RegisterOutcome];

/**
 * history.ts's Operation, extended additively: a plain history is a
 * register history as it is. `invokeMs`/`completeMs` share one time line;
 * `completeMs` of an operation with an unknown outcome is ignored.
 */
export interface RegisterOperation extends Omit<Operation, 'op' | 'outcome'> {
  op: RegisterOp;
  outcome: RegisterOutcome;
  /** putIfMatch: the value it may replace (the context read, modelled as its value). */
  expected?: string;
  /** Conflicts: what the 409 reported as the current value, when it reported one; null for absent. */
  current?: string | null;
}

export const Verdict = { Ok: 'ok', Violation: 'violation', Unknown: 'unknown' } as const;
export type Verdict = (typeof Verdict)[keyof typeof Verdict];

export interface LinearizabilityLimits {
  /** Operations on one key (known or unknown outcome, reads included) past which the key is not searched. */
  opsPerKeyMax: number;
  /** Steps of the search on one key (candidates tried plus backtracks) before giving up. */
  searchStepsMax: number;
}

export const defaultLinearizabilityLimits: LinearizabilityLimits = { opsPerKeyMax: 2_000, searchStepsMax: 2_000_000 };

export interface LinearizabilityOptions extends Partial<LinearizabilityLimits> {
  /** Skip the reductions of unknown writes (settle): the plain search, slower, for cross-checking them. */
  exactUnknowns?: boolean;
}

/** One operation of a linearization, with the key's state after it (undefined: absent). */
export interface Step {
  op: RegisterOperation;
  after: string | undefined;
}

export interface KeyResult {
  key: string;
  verdict: Verdict;
  /** Ok: a witness order (unknown-outcome operations that never took effect left out). Violation: the longest prefix the search could place. */
  linearized: Step[];
  /** Violation: the operation whose return the longest prefix could not get past (it could not be placed in time). */
  blocked?: RegisterOperation;
  /** Violation, when `blocked` has an unknown outcome: the operation that observed its value, by whose completion it had to be placed. */
  observedBy?: RegisterOperation;
  /** Violation: the operations that could have gone next after the longest prefix, all refused by the model, with why. */
  refused?: { op: RegisterOperation; why: string }[];
  /** Unknown: why the key was not decided. */
  reason?: string;
  /** Operations searched (known and unknown outcomes) and steps spent. */
  opCount: number;
  steps: number;
}

export interface LinearizabilityReport {
  /** Violation if any key has one, else unknown if any key is undecided, else ok. */
  verdict: Verdict;
  keys: KeyResult[];
}

/** The key's state: 0 is absent, n > 0 the n-th distinct value (interned, for cheap cache keys). */
type State = number;
const absent: State = 0;

/** An operation compiled against the interned values. */
interface Compiled {
  op: RegisterOperation;
  kind: RegisterOp;
  value: State;
  expected: State;
  /** -1: the conflict reported no current value. */
  current: State;
  /** The outcome is known, or the operation is known to have succeeded (settled): it must be placed. */
  known: boolean;
  /** Conditional writes: it succeeded (or, while unknown, succeeds wherever its condition holds). */
  succeeded: boolean;
  /** The time by which it must be placed: its completion; +Infinity while unknown. */
  returnMs: number;
  /** An unknown write settled by the first operation that observed its value (see settle). */
  observedBy?: RegisterOperation;
}

class Values {
  private readonly index = new Map<string, State>();
  readonly names: (string | undefined)[] = [undefined];
  of(v: string | undefined): State {
    if (v === undefined) return absent;
    let i = this.index.get(v);
    if (i === undefined) {
      i = this.names.length;
      this.index.set(v, i);
      this.names.push(v);
    }
    return i;
  }
}

/** The register's sequential specification: the state after `c`, or why `c` cannot happen in `s`. */
function apply(c: Compiled, s: State, values: Values): State | string {
  const show = (x: State) => showValue(values.names[x]);
  const conflictSeen = (): State | string =>
    c.current < 0 || c.current === s ? s : `the conflict reported ${show(c.current)} but the key holds ${show(s)}`;
  switch (c.kind) {
    case RegisterOp.Get:
      return c.value === s ? s : `it would read ${show(s)}`;
    case RegisterOp.Put:
      return c.value;
    case RegisterOp.Del:
      return absent;
    case RegisterOp.PutIfAbsent:
      if (!c.known) return s === absent ? c.value : s;
      if (c.succeeded) return s === absent ? c.value : `the key holds ${show(s)}, not absent`;
      return s !== absent ? conflictSeen() : 'the key is absent, so the write would succeed';
    case RegisterOp.PutIfMatch:
      if (!c.known) return s === c.expected ? c.value : s;
      if (c.succeeded) return s === c.expected ? c.value : `the key holds ${show(s)}, not ${show(c.expected)}`;
      return s !== c.expected ? conflictSeen() : `the key holds ${show(s)}, so the write would succeed`;
  }
}

/** The operations a search needs: refused ones and reads of unknown outcome neither change nor observe the state. */
function relevant(o: RegisterOperation): boolean {
  if (o.outcome === RegisterOutcome.Failed) return false;
  return !(o.op === RegisterOp.Get && o.outcome === RegisterOutcome.Unknown);
}

function compile(o: RegisterOperation, values: Values, observedBy: RegisterOperation | undefined): Compiled {
  assert.ok(Number.isFinite(o.invokeMs), `operation #${o.id} has no invocation time`);
  const known = o.outcome !== RegisterOutcome.Unknown;
  if (known) assert.ok(o.completeMs >= o.invokeMs, `operation #${o.id} completes before it is invoked`);
  assert.ok(o.outcome !== RegisterOutcome.Unknown || o.op !== RegisterOp.Get, 'reads of unknown outcome are left out before');
  const conditional = o.op === RegisterOp.PutIfAbsent || o.op === RegisterOp.PutIfMatch;
  assert.ok(o.outcome !== RegisterOutcome.Conflict || conditional, `operation #${o.id}: only a conditional write can conflict`);
  if (o.op === RegisterOp.PutIfMatch) assert.ok(o.expected !== undefined, `operation #${o.id}: putIfMatch needs an expected value`);
  if (o.op !== RegisterOp.Get && o.op !== RegisterOp.Del) assert.ok(o.value !== undefined, `operation #${o.id}: a write needs a value`);
  return {
    op: o,
    kind: o.op,
    value: values.of(o.value),
    expected: o.expected === undefined ? -1 : values.of(o.expected),
    current: o.current === undefined ? -1 : values.of(o.current ?? undefined),
    known: known || observedBy !== undefined,
    succeeded: o.outcome === RegisterOutcome.Ok || observedBy !== undefined,
    returnMs: known ? o.completeMs : observedBy !== undefined ? observedBy.completeMs : Infinity,
    ...(observedBy === undefined ? {} : { observedBy }),
  };
}

/** Writes that store a value (not deletes). */
const writesValue = (o: RegisterOperation) => o.op === RegisterOp.Put || o.op === RegisterOp.PutIfAbsent || o.op === RegisterOp.PutIfMatch;

/**
 * Unknown writes are what makes searches blow up (Knossos's :info problem):
 * each stays pending to the end. Two exact reductions for an unknown write
 * `u` of a value `v` that no other operation writes:
 * - Observed: a known operation read `v`, expected it and succeeded, or
 *   reported it as current in a conflict. Then `u` took effect, before that
 *   operation's linearization point, so before its completion: `u` is
 *   settled as a success that must be placed by the earliest such completion.
 * - Unobserved: nothing refers to `v` (no read, expected or current value,
 *   whatever its outcome), and no conflict that reports no current value
 *   completes after `u`'s invocation. Then from any linearization where `u`
 *   took effect, removing it leaves one (the operations that saw `v` instead
 *   of the state before it are writes, which do not look, and unknown
 *   conditional writes that failed on `v` and can be left out), so `u` is
 *   dropped.
 * Anything else (deletes, values written twice) stays open, to the end.
 */
function settle(ops: readonly RegisterOperation[]): { kept: RegisterOperation[]; observedBy: Map<RegisterOperation, RegisterOperation> } {
  const writers = new Map<string, number>();
  const refs = new Map<string, RegisterOperation[]>();
  const ref = (v: string | null | undefined, o: RegisterOperation) => {
    if (typeof v === 'string') refs.set(v, [...(refs.get(v) ?? []), o]);
  };
  for (const o of ops) {
    if (writesValue(o) && o.value !== undefined) writers.set(o.value, (writers.get(o.value) ?? 0) + 1);
    if (o.op === RegisterOp.Get) ref(o.value, o);
    ref(o.expected, o);
    ref(o.current, o);
  }
  const observes = (o: RegisterOperation, v: string) =>
    o.outcome !== RegisterOutcome.Unknown &&
    ((o.op === RegisterOp.Get && o.value === v) || (o.op === RegisterOp.PutIfMatch && o.outcome === RegisterOutcome.Ok && o.expected === v) || (o.outcome === RegisterOutcome.Conflict && o.current === v));
  const blindConflicts = ops.filter((o) => o.outcome === RegisterOutcome.Conflict && o.current === undefined);
  const observedBy = new Map<RegisterOperation, RegisterOperation>();
  const kept = ops.filter((u) => {
    if (u.outcome !== RegisterOutcome.Unknown || !writesValue(u) || u.value === undefined || writers.get(u.value) !== 1) return true;
    const uses = refs.get(u.value) ?? [];
    const first = uses.filter((o) => observes(o, u.value!)).reduce<RegisterOperation | undefined>((m, o) => (!m || o.completeMs < m.completeMs ? o : m), undefined);
    // An observer that completed before `u` was invoked is a violation; the search reports it with `u` left open.
    if (first !== undefined && first.completeMs >= u.invokeMs) observedBy.set(u, first);
    if (first !== undefined || uses.length > 0) return true;
    return blindConflicts.some((c) => c.completeMs >= u.invokeMs);
  });
  return { kept, observedBy };
}

/**
 * The history's events as a doubly linked list over arrays (Knuth's dancing
 * links: a lifted operation's entries keep their own links, so putting it
 * back is two pointer writes). Entry 0 is the head; entry 2i+1 is the call of
 * operation i, 2i+2 its return.
 */
class Events {
  readonly next: Int32Array;
  readonly prev: Int32Array;
  constructor(ops: readonly Compiled[]) {
    const n = ops.length;
    const time = (e: number): number => {
      const c = ops[(e - 1) >> 1]!;
      return e % 2 === 1 ? c.op.invokeMs : c.returnMs;
    };
    // Calls before returns at equal times: operations that touch in time are concurrent (as in history.ts).
    const order = Array.from({ length: 2 * n }, (_, i) => i + 1).sort((a, b) => time(a) - time(b) || (b % 2) - (a % 2) || a - b);
    this.next = new Int32Array(2 * n + 1).fill(-1);
    this.prev = new Int32Array(2 * n + 1).fill(-1);
    let last = 0;
    for (const e of order) {
      this.next[last] = e;
      this.prev[e] = last;
      last = e;
    }
  }
  private unlink(e: number): void {
    const p = this.prev[e]!;
    const q = this.next[e]!;
    this.next[p] = q;
    if (q >= 0) this.prev[q] = p;
  }
  private relink(e: number): void {
    const p = this.prev[e]!;
    const q = this.next[e]!;
    this.next[p] = e;
    if (q >= 0) this.prev[q] = e;
  }
  lift(i: number): void {
    this.unlink(2 * i + 1);
    this.unlink(2 * i + 2);
  }
  /** Undoes lift(i); lifts are undone in the reverse order they were made. */
  unlift(i: number): void {
    this.relink(2 * i + 2);
    this.relink(2 * i + 1);
  }
}

/** The set of linearized operations, as words; its string form keys the cache. */
class Bits {
  private readonly words: Uint16Array;
  constructor(n: number) {
    this.words = new Uint16Array(Math.ceil(n / 16));
  }
  flip(i: number): void {
    this.words[i >> 4]! ^= 1 << (i & 15);
  }
  keyWith(state: State): string {
    return String.fromCharCode(...this.words) + '|' + state;
  }
}

interface Frame {
  i: number;
  before: State;
}

/** The search on one key's operations. */
function searchKey(key: string, ops: readonly RegisterOperation[], limits: LinearizabilityLimits, exactUnknowns: boolean): KeyResult {
  const { kept, observedBy } = exactUnknowns ? { kept: ops.filter(relevant), observedBy: new Map<RegisterOperation, RegisterOperation>() } : settle(ops.filter(relevant));
  if (kept.length > limits.opsPerKeyMax) {
    return { key, verdict: Verdict.Unknown, linearized: [], reason: `too large: ${kept.length} operations on the key, more than the ${limits.opsPerKeyMax} searched`, opCount: kept.length, steps: 0 };
  }
  const values = new Values();
  const compiled = kept.map((o) => compile(o, values, observedBy.get(o)));
  const events = new Events(compiled);
  const bits = new Bits(compiled.length);
  const seen = new Set<string>();
  const knownTotal = compiled.filter((c) => c.known).length;
  const stack: Frame[] = [];
  // Each frame's operation applied to the state before it, which it fitted when it was placed.
  const stepsOf = (frames: readonly Frame[]): Step[] => frames.map((f) => ({ op: compiled[f.i]!.op, after: values.names[apply(compiled[f.i]!, f.before, values) as State] }));

  let state: State = absent;
  let knownPlaced = 0;
  let steps = 0;
  let best: { frames: Frame[]; blocked: number; state: State } | undefined;
  let e = events.next[0]!;
  while (knownPlaced < knownTotal) {
    if (++steps > limits.searchStepsMax) {
      return { key, verdict: Verdict.Unknown, linearized: [], reason: `too large: gave up after ${limits.searchStepsMax} search steps (${compiled.length} operations)`, opCount: compiled.length, steps };
    }
    const i = (e - 1) >> 1;
    const c = e > 0 ? compiled[i] : undefined;
    if (c !== undefined && e % 2 === 1) {
      // A call: try `c` next.
      const after = apply(c, state, values);
      if (typeof after === 'number') {
        bits.flip(i);
        const k = bits.keyWith(after);
        if (!seen.has(k)) {
          seen.add(k);
          stack.push({ i, before: state });
          state = after;
          if (c.known) knownPlaced++;
          events.lift(i);
          e = events.next[0]!;
          continue;
        }
        bits.flip(i);
      }
      e = events.next[e]!;
      continue;
    }
    // The return of an operation not placed yet (an unknown one never returns, so `c` is known):
    // nothing after the current prefix can come before it. Backtrack.
    assert.ok(c !== undefined && c.known, 'the search ran past the last return');
    if (!best || stack.length > best.frames.length) best = { frames: [...stack], blocked: i, state };
    const top = stack.pop();
    if (top === undefined) break;
    events.unlift(top.i);
    bits.flip(top.i);
    state = top.before;
    if (compiled[top.i]!.known) knownPlaced--;
    e = events.next[2 * top.i + 1]!;
  }
  if (knownPlaced === knownTotal) return { key, verdict: Verdict.Ok, linearized: stepsOf(stack), opCount: compiled.length, steps };
  return violationOf(key, compiled, values, best!, stepsOf(best!.frames), steps);
}

/** What the longest prefix got stuck on: the return it could not pass, and each operation that could have gone next. */
function violationOf(key: string, compiled: readonly Compiled[], values: Values, best: { frames: Frame[]; blocked: number; state: State }, linearized: Step[], steps: number): KeyResult {
  const placed = new Set(best.frames.map((f) => f.i));
  const blocked = compiled[best.blocked]!;
  const deadline = blocked.returnMs;
  const refused = compiled
    .map((c, i) => ({ c, i }))
    .filter(({ c, i }) => !placed.has(i) && c.op.invokeMs <= deadline)
    .map(({ c }) => {
      const r = apply(c, best.state, values);
      return { op: c.op, why: typeof r === 'string' ? r : 'it fits here, but nothing linearizable follows it' };
    });
  return { key, verdict: Verdict.Violation, linearized, blocked: blocked.op, ...(blocked.observedBy ? { observedBy: blocked.observedBy } : {}), refused, opCount: compiled.length, steps };
}

/**
 * Checks, key by key, that `history` is linearizable against the register
 * model, every key starting absent. To hold a converged final value to the
 * same standard, append it as a get invoked after everything else.
 */
export function checkLinearizable(history: readonly RegisterOperation[], opts: LinearizabilityOptions = {}): LinearizabilityReport {
  const lim: LinearizabilityLimits = { opsPerKeyMax: opts.opsPerKeyMax ?? defaultLinearizabilityLimits.opsPerKeyMax, searchStepsMax: opts.searchStepsMax ?? defaultLinearizabilityLimits.searchStepsMax };
  const ids = new Set<number>();
  const byKey = new Map<string, RegisterOperation[]>();
  for (const o of history) {
    assert.ok(!ids.has(o.id), `operation id ${o.id} appears twice`);
    ids.add(o.id);
    const list = byKey.get(o.key);
    if (list) list.push(o);
    else byKey.set(o.key, [o]);
  }
  const keys = [...byKey].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, ops]) => searchKey(key, ops, lim, opts.exactUnknowns ?? false));
  const verdict = keys.some((k) => k.verdict === Verdict.Violation) ? Verdict.Violation : keys.some((k) => k.verdict === Verdict.Unknown) ? Verdict.Unknown : Verdict.Ok;
  return { verdict, keys };
}

/** Values can be large (up to max_payload): reports show their start and length. */
function showValue(v: string | null | undefined): string {
  if (v === undefined || v === null) return 'absent';
  return v.length <= 40 ? JSON.stringify(v) : `${JSON.stringify(v.slice(0, 24))}...(${v.length} chars)`;
}

export function describeRegisterOp(o: RegisterOperation): string {
  let what: string;
  if (o.op === RegisterOp.Get) what = `get -> ${o.outcome === RegisterOutcome.Ok ? showValue(o.value) : o.outcome}`;
  else if (o.op === RegisterOp.Del) what = `del -> ${o.outcome}`;
  else {
    const cond = o.op === RegisterOp.PutIfMatch ? ` if ${showValue(o.expected)}` : o.op === RegisterOp.PutIfAbsent ? ' if absent' : '';
    const seen = o.outcome === RegisterOutcome.Conflict && o.current !== undefined ? ` (current ${showValue(o.current)})` : '';
    what = `${o.op === RegisterOp.Put ? 'put' : o.op} ${showValue(o.value)}${cond} -> ${o.outcome}${seen}`;
  }
  const end = o.outcome === RegisterOutcome.Unknown ? 'never' : String(o.completeMs);
  return `#${o.id} ${o.client} ${what} [${o.invokeMs}, ${end}]${o.note ? ` (${o.note})` : ''}`;
}

/** One key's result as a report: the counter-example for a violation, the reason for an unknown. */
export function formatKeyResult(r: KeyResult, seed?: number): string {
  const where = `key ${JSON.stringify(r.key)}${seed === undefined ? '' : ` (seed ${seed})`}`;
  if (r.verdict === Verdict.Ok) return `${where}: linearizable (${r.opCount} operations, ${r.steps} steps)`;
  if (r.verdict === Verdict.Unknown) return `${where}: unknown: ${r.reason}`;
  const by = r.observedBy ? `by the time ${describeRegisterOp(r.observedBy)} observed its value` : 'before it returned';
  const lines = [`linearizability violation on ${where}: no order of its ${r.opCount} operations fits the register; could not place ${describeRegisterOp(r.blocked!)} ${by}`];
  lines.push(`  longest linearizable prefix (${r.linearized.length} operations), with the state after each:`);
  for (const s of r.linearized) lines.push(`    ${describeRegisterOp(s.op)}  => ${showValue(s.after)}`);
  const state = r.linearized.length === 0 ? 'absent (initial)' : showValue(r.linearized[r.linearized.length - 1]!.after);
  lines.push(`  then, with the key ${state}, none of these could go next:`);
  for (const x of r.refused ?? []) lines.push(`    ${describeRegisterOp(x.op)}: ${x.why}`);
  if (seed !== undefined) lines.push(`  replay with GODDB_SEED=${seed}`);
  return lines.join('\n');
}

/** Every key that is not ok, as a report (empty when all are). */
export function formatLinearizability(report: LinearizabilityReport, seed?: number): string {
  return report.keys.filter((k) => k.verdict !== Verdict.Ok).map((k) => formatKeyResult(k, seed)).join('\n');
}
