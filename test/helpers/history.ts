/**
 * A history checker for a key-value store with last-writer-wins registers,
 * judged in real time (Herlihy and Wing's linearizability, relaxed to what a
 * Dynamo store with R + W > N promises; Jepsen's knossos does the full
 * search, which these two rules do not need).
 *
 * A history is every client operation with its invocation and completion on
 * one, unskewed, time line. Writes (puts and deletes) write unique values. A
 * write with an unknown outcome (timeout, 503, 504) may take effect at any
 * time after its invocation, so it counts as concurrent with everything
 * invoked after it: it never completes. Per key:
 *
 * - Final state: once the cluster has healed and converged, the key holds
 *   the value of a write that no acknowledged write followed in real time
 *   (w'.invoke > w.complete); absent only when such a delete qualifies, or
 *   when no write was ever acknowledged (the initial absent state is a write
 *   at minus infinity).
 * - Reads: an acknowledged read returns a value written by a write invoked
 *   before the read completed, and not superseded when the read began: no
 *   acknowledged w' with w.complete < w'.invoke and w'.complete < read.invoke.
 *
 * Pure: plain data in, violations out.
 */
export const OpKind = { Put: 'put', Del: 'del', Get: 'get' } as const;
export type OpKind = (typeof OpKind)[keyof typeof OpKind];

export const Outcome = {
  /** Acknowledged: a write took effect, a read returned a value or absent (404). */
  Ok: 'ok',
  /** Definitely refused (400, 413): nothing took effect. */
  Failed: 'failed',
  /** Timeout, 503, 504, ...: a write may or may not take effect, at any later time. */
  Unknown: 'unknown',
} as const;
export type Outcome = (typeof Outcome)[keyof typeof Outcome];

export interface Operation {
  /** Unique in the history. */
  id: number;
  client: string;
  key: string;
  op: OpKind;
  /** Puts: the value written (unique). Gets that are ok: the value read, undefined when absent. */
  value?: string;
  invokeMs: number;
  completeMs: number;
  outcome: Outcome;
  /** Free text for reports (code, message, node that coordinated). */
  note?: string;
}

export const Rule = { Final: 'final', Read: 'read' } as const;
export type Rule = (typeof Rule)[keyof typeof Rule];

export interface Violation {
  rule: Rule;
  key: string;
  message: string;
  /** The operations involved: the offending read or final value's writes, and what superseded them. */
  ops: Operation[];
}

export interface CheckOptions {
  /**
   * Reads for which this holds are only checked for returning a value that
   * was written, not for freshness. After a replica lost its disk, a quorum
   * read may meet it and a replica that missed the write, and nothing but
   * such a read repairs it until anti-entropy exists.
   */
  staleReadAllowed?: (read: Operation) => boolean;
}

/** What a write stores: its value, or undefined for a delete. */
interface Write {
  op: Operation | undefined; // undefined: the initial absent state
  value: string | undefined;
  invokeMs: number;
  /** When it was certainly over; +Infinity while its outcome is unknown. */
  doneMs: number;
  ok: boolean;
}

const initial: Write = { op: undefined, value: undefined, invokeMs: -Infinity, doneMs: -Infinity, ok: true };

function writesOf(ops: readonly Operation[]): Write[] {
  const out: Write[] = [initial];
  for (const o of ops) {
    if (o.op === OpKind.Get || o.outcome === Outcome.Failed) continue;
    const ok = o.outcome === Outcome.Ok;
    out.push({ op: o, value: o.op === OpKind.Put ? o.value : undefined, invokeMs: o.invokeMs, doneMs: ok ? o.completeMs : Infinity, ok });
  }
  return out;
}

/** The first acknowledged write invoked after `w` was over and completed before `beforeMs`, if any. */
function supersederOf(w: Write, acked: readonly Write[], beforeMs: number): Write | undefined {
  let best: Write | undefined;
  for (const a of acked) {
    if (a === w || a.invokeMs <= w.doneMs || a.op!.completeMs >= beforeMs) continue;
    if (!best || a.op!.completeMs < best.op!.completeMs) best = a;
  }
  return best;
}

/** Values can be large (up to max_payload): reports show their start and length. */
const show = (v: string | undefined) => (v === undefined ? 'absent' : v.length <= 40 ? JSON.stringify(v) : `${JSON.stringify(v.slice(0, 24))}...(${v.length} chars)`);

export function describeOp(o: Operation): string {
  const what = o.op === OpKind.Get ? `get -> ${o.outcome === Outcome.Ok ? show(o.value) : o.outcome}` : o.op === OpKind.Put ? `put ${show(o.value)} -> ${o.outcome}` : `del -> ${o.outcome}`;
  return `#${o.id} ${o.client} ${what} [${o.invokeMs}, ${o.completeMs}]${o.note ? ` (${o.note})` : ''}`;
}

function describeWrite(w: Write): string {
  return w.op ? describeOp(w.op) : 'the initial absent state';
}

function checkFinal(key: string, writes: readonly Write[], acked: readonly Write[], final: string | undefined): Violation | undefined {
  const producers = writes.filter((w) => w.value === final);
  if (producers.some((w) => supersederOf(w, acked, Infinity) === undefined)) return undefined;
  if (producers.length === 0) {
    return { rule: Rule.Final, key, message: `final state ${show(final)} was never written (or only by a refused write)`, ops: [] };
  }
  const lines = producers.map((w) => {
    const s = supersederOf(w, acked, Infinity)!;
    return `${describeWrite(w)} was followed by acknowledged ${describeOp(s.op!)}`;
  });
  const ops = producers.flatMap((w) => [w.op, supersederOf(w, acked, Infinity)!.op]).filter((o): o is Operation => o !== undefined);
  const last = acked.reduce<Write | undefined>((m, a) => (!m || a.op!.completeMs > m.op!.completeMs ? a : m), undefined);
  if (last && !ops.includes(last.op!)) ops.push(last.op!);
  return { rule: Rule.Final, key, message: `lost write: final state is ${show(final)}, but ${lines.join('; ')}`, ops };
}

function checkRead(key: string, read: Operation, writes: readonly Write[], acked: readonly Write[], staleAllowed: boolean): Violation | undefined {
  const candidates = writes.filter((w) => w.value === read.value && w.invokeMs < read.completeMs);
  if (candidates.length === 0) {
    return { rule: Rule.Read, key, message: `read ${show(read.value)}, which no write invoked before the read completed wrote`, ops: [read] };
  }
  if (staleAllowed) return undefined;
  const stale = candidates.map((w) => ({ w, by: supersederOf(w, acked, read.invokeMs) }));
  if (stale.some((s) => s.by === undefined)) return undefined;
  const lines = stale.map((s) => `${describeWrite(s.w)} was superseded by acknowledged ${describeOp(s.by!.op!)} before the read began`);
  const ops = [read, ...stale.flatMap((s) => [s.w.op, s.by!.op])].filter((o): o is Operation => o !== undefined);
  return { rule: Rule.Read, key, message: `stale read: ${describeOp(read)} returned ${show(read.value)}, but ${lines.join('; ')}`, ops };
}

/**
 * Checks `history` against the final state of every key it touches
 * (`final`: the converged value, undefined when absent). Returns every
 * violation, most telling first per key (the final state, then reads in
 * order of completion).
 */
export function checkHistory(history: readonly Operation[], final: ReadonlyMap<string, string | undefined>, opts: CheckOptions = {}): Violation[] {
  const byKey = new Map<string, Operation[]>();
  for (const o of history) byKey.set(o.key, [...(byKey.get(o.key) ?? []), o]);
  for (const key of final.keys()) if (!byKey.has(key)) byKey.set(key, []);
  const violations: Violation[] = [];
  for (const [key, ops] of [...byKey].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const writes = writesOf(ops);
    const acked = writes.filter((w) => w.ok && w.op !== undefined);
    if (final.has(key)) {
      const v = checkFinal(key, writes, acked, final.get(key));
      if (v) violations.push(v);
    }
    const reads = ops.filter((o) => o.op === OpKind.Get && o.outcome === Outcome.Ok).sort((a, b) => a.completeMs - b.completeMs || a.id - b.id);
    for (const r of reads) {
      const v = checkRead(key, r, writes, acked, opts.staleReadAllowed?.(r) ?? false);
      if (v) violations.push(v);
    }
  }
  return violations;
}

/** A violation as a report: rule, key, message, the operations involved, and how to replay. */
export function formatViolation(v: Violation, seed?: number): string {
  const lines = [`${v.rule} violation on key ${JSON.stringify(v.key)}${seed === undefined ? '' : ` (seed ${seed})`}: ${v.message}`];
  for (const o of v.ops) lines.push(`    ${describeOp(o)}`);
  if (seed !== undefined) lines.push(`    replay with GODDB_SEED=${seed}`);
  return lines.join('\n');
}
