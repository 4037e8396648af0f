/**
 * The arithmetic of the report, pure: medians over repeats, throughput
 * ratios of GoD-DB over each reference, the size of the data a node holds,
 * and the verdicts on issue 4's targets.
 */
import { Engine, Op, System, type Sample, type Summary } from './types.js';


/** The median; the mean of the two middle values for an even count; NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** One Summary per (system, op, concurrency), in the order of first appearance. */
export function summarize(samples: readonly Sample[]): Summary[] {
  const groups = new Map<string, Sample[]>();
  for (const s of samples) {
    const key = `${s.system}|${s.op}|${s.concurrency}`;
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [s]);
    else group.push(s);
  }
  return [...groups.values()].map((group) => {
    const first = group[0]!;
    const labels = new Set(group.flatMap((s) => Object.keys(s.cpu)));
    const cpu: Record<string, number> = {};
    for (const label of labels) {
      cpu[label] = median(group.flatMap((s) => (s.cpu[label] === undefined ? [] : [s.cpu[label]])));
    }
    return {
      system: first.system,
      op: first.op,
      concurrency: first.concurrency,
      repeats: group.length,
      opsPerSec: median(group.map((s) => s.opsPerSec)),
      p50Ms: median(group.map((s) => s.p50Ms)),
      p99Ms: median(group.map((s) => s.p99Ms)),
      errors: group.reduce((sum, s) => sum + s.errors, 0),
      cpu,
      serverCpuUsPerOp: median(group.map((s) => s.serverCpuUsPerOp).filter((x) => Number.isFinite(x))),
    };
  });
}

export function findSummary(summaries: readonly Summary[], system: System, op: Op, concurrency: number): Summary | undefined {
  return summaries.find((s) => s.system === system && s.op === op && s.concurrency === concurrency);
}

export const subjects: readonly System[] = [System.GoddbRaw, System.GoddbSdk, System.GoddbSdkDirect, System.GoddbPeriodic];
export const references: readonly System[] = [System.JetstreamKvR3, System.JetstreamKv, System.Fanout, System.FanoutLmdb, System.Echo, System.Redis];

export interface Ratio {
  op: Op;
  concurrency: number;
  system: System;
  reference: System;
  /** system ops/s over reference ops/s (medians). */
  ratio: number;
}

/** GoD-DB (raw, SDK) throughput over each reference's, per op and concurrency, where both were measured. */
export function ratios(summaries: readonly Summary[]): Ratio[] {
  const out: Ratio[] = [];
  const keys = new Map<string, { op: Op; concurrency: number }>();
  for (const s of summaries) keys.set(`${s.op}|${s.concurrency}`, { op: s.op, concurrency: s.concurrency });
  for (const { op, concurrency } of keys.values()) {
    for (const system of subjects) {
      const sut = findSummary(summaries, system, op, concurrency);
      for (const reference of references) {
        const ref = findSummary(summaries, reference, op, concurrency);
        if (sut === undefined || ref === undefined || !(ref.opsPerSec > 0)) continue;
        out.push({ op, concurrency, system, reference, ratio: sut.opsPerSec / ref.opsPerSec });
      }
    }
  }
  return out;
}

/**
 * What one node holds, roughly: every key's bytes and value's bytes, on
 * `replication` of the `nodes` nodes (without versions, clocks or indexes).
 */
export function dataBytesPerNode(keys: number, keyBytes: number, valueBytes: number, replication: number, nodes: number): number {
  return (keys * (keyBytes + valueBytes) * replication) / nodes;
}

export const Verdict = { Met: 'MET', NotMet: 'NOT MET', NotMeasured: 'NOT MEASURED' } as const;
export type Verdict = (typeof Verdict)[keyof typeof Verdict];

export interface Target {
  name: string;
  verdict: Verdict;
  detail: string;
}

export interface NodeMemory {
  id: string;
  baseBytes: number;
  afterPreloadBytes: number;
  endBytes: number;
  /** V8 heap used, when the node answered the heap probe. */
  afterPreloadHeapUsedBytes?: number;
  endHeapUsedBytes?: number;
}

export interface TargetInputs {
  summaries: readonly Summary[];
  memory: readonly NodeMemory[];
  dataBytesPerNode: number;
  engine: Engine;
}

/** Issue 4's targets. */
export const targetSpec = {
  throughputConcurrency: 128,
  throughputRatioMin: 1.0,
  latencyConcurrency: 16,
  p99MsMax: 6,
  rssDataFactor: 2,
} as const;

/** Verdicts on issue 4's targets (GoD-DB through the raw subjects; they are stated for LMDB). */
export function targets(inputs: TargetInputs): Target[] {
  const note = inputs.engine === Engine.Lmdb ? '' : ` (engine ${inputs.engine}; the targets are stated for lmdb)`;
  const out: Target[] = [];
  for (const op of [Op.Put, Op.Get]) out.push(throughputTarget(inputs.summaries, op, note));
  for (const op of [Op.Put, Op.Get]) out.push(latencyTarget(inputs.summaries, op, note));
  out.push(memoryTarget(inputs.memory, inputs.dataBytesPerNode, note));
  return out;
}

/** Issue 11's targets: GoD-DB (raw subjects; storage.sync always, and periodic when measured) against jetstream-kv-r3, like for like. */
export const likeForLikeSpec = {
  concurrency: 128,
  latencyConcurrency: 16,
  /** Stretch: within this factor of one-replica jetstream-kv's ops/s. */
  stretchFactor: 2,
} as const;

/**
 * Verdicts on issue 11's targets, each with its figures: ops/s at C=128 at
 * least jetstream-kv-r3's, server CPU per operation at C=128 at most its,
 * p99 at C=16 at most its; and the stretch, ops/s within 2x of one-replica
 * jetstream-kv. For `goddb-raw` (storage.sync always, the default) and, when
 * it was measured, `goddb-periodic` (whose syncs, like JetStream's default,
 * come after the acknowledgement), its verdicts named with a `periodic:` prefix.
 */
export function likeForLikeTargets(summaries: readonly Summary[]): Target[] {
  const measured = (sys: System) => summaries.some((s) => s.system === sys);
  const periodic = measured(System.GoddbPeriodic) ? likeForLikeOf(summaries, System.GoddbPeriodic).map((t) => ({ ...t, name: `periodic: ${t.name}` })) : [];
  return [...likeForLikeOf(summaries, System.GoddbRaw), ...periodic];
}

function likeForLikeOf(summaries: readonly Summary[], system: System): Target[] {
  const c = likeForLikeSpec.concurrency;
  const lc = likeForLikeSpec.latencyConcurrency;
  const stretch = likeForLikeSpec.stretchFactor;
  /** One verdict: `measurable` false (or either side missing) is NOT MEASURED. */
  const verdict = (name: string, op: Op, ref: System, conc: number, measurable: (sut: Summary, r: Summary) => boolean, met: (sut: Summary, r: Summary) => boolean, detail: (sut: Summary, r: Summary) => string): Target => {
    const sut = findSummary(summaries, system, op, conc);
    const r = findSummary(summaries, ref, op, conc);
    if (sut === undefined || r === undefined || !measurable(sut, r)) return { name, verdict: Verdict.NotMeasured, detail: `needs ${system} and ${ref} at C=${conc}` };
    return { name, verdict: met(sut, r) ? Verdict.Met : Verdict.NotMet, detail: detail(sut, r) };
  };
  const rate = (ref: System) => (sut: Summary, r: Summary) => `${system} ${formatRate(sut.opsPerSec)} ops/s vs ${ref} ${formatRate(r.opsPerSec)} ops/s = ${(sut.opsPerSec / r.opsPerSec).toFixed(2)}x`;
  const ops = [Op.Put, Op.Get];
  return [
    ...ops.map((op) => verdict(`${op} throughput at C=${c} >= 1.0x jetstream-kv-r3`, op, System.JetstreamKvR3, c, (_, r) => r.opsPerSec > 0, (sut, r) => sut.opsPerSec >= r.opsPerSec, rate(System.JetstreamKvR3))),
    ...ops.map((op) =>
      verdict(`${op} server CPU per operation at C=${c} <= 1.0x jetstream-kv-r3`, op, System.JetstreamKvR3, c, (sut, r) => Number.isFinite(sut.serverCpuUsPerOp) && r.serverCpuUsPerOp > 0, (sut, r) => sut.serverCpuUsPerOp <= r.serverCpuUsPerOp,
        (sut, r) => `${system} ${Math.round(sut.serverCpuUsPerOp)} µs vs jetstream-kv-r3 ${Math.round(r.serverCpuUsPerOp)} µs = ${(sut.serverCpuUsPerOp / r.serverCpuUsPerOp).toFixed(2)}x`),
    ),
    ...ops.map((op) => verdict(`${op} p99 at C=${lc} <= jetstream-kv-r3's`, op, System.JetstreamKvR3, lc, () => true, (sut, r) => sut.p99Ms <= r.p99Ms, (sut, r) => `${system} ${sut.p99Ms.toFixed(2)} ms vs jetstream-kv-r3 ${r.p99Ms.toFixed(2)} ms`)),
    ...ops.map((op) => verdict(`stretch: ${op} throughput at C=${c} within ${stretch}x of jetstream-kv (one replica)`, op, System.JetstreamKv, c, (_, r) => r.opsPerSec > 0, (sut, r) => sut.opsPerSec * stretch >= r.opsPerSec, rate(System.JetstreamKv))),
  ];
}

function throughputTarget(summaries: readonly Summary[], op: Op, note: string): Target {
  const c = targetSpec.throughputConcurrency;
  const name = `${op} throughput at C=${c} >= ${targetSpec.throughputRatioMin.toFixed(1)}x JetStream KV`;
  const sut = findSummary(summaries, System.GoddbRaw, op, c);
  const ref = findSummary(summaries, System.JetstreamKv, op, c);
  if (sut === undefined || ref === undefined || !(ref.opsPerSec > 0)) {
    return { name, verdict: Verdict.NotMeasured, detail: `needs goddb-raw and jetstream-kv at C=${c}` };
  }
  const ratio = sut.opsPerSec / ref.opsPerSec;
  const sdk = findSummary(summaries, System.GoddbSdk, op, c);
  const sdkText = sdk === undefined ? '' : `; SDK ${formatRate(sdk.opsPerSec)} ops/s = ${(sdk.opsPerSec / ref.opsPerSec).toFixed(2)}x`;
  return {
    name,
    verdict: ratio >= targetSpec.throughputRatioMin ? Verdict.Met : Verdict.NotMet,
    detail: `goddb-raw ${formatRate(sut.opsPerSec)} ops/s vs jetstream-kv ${formatRate(ref.opsPerSec)} ops/s = ${ratio.toFixed(2)}x${sdkText}${note}`,
  };
}

function latencyTarget(summaries: readonly Summary[], op: Op, note: string): Target {
  const c = targetSpec.latencyConcurrency;
  const name = `${op} p99 at C=${c} <= ${targetSpec.p99MsMax} ms`;
  const sut = findSummary(summaries, System.GoddbRaw, op, c);
  if (sut === undefined) return { name, verdict: Verdict.NotMeasured, detail: `needs goddb-raw at C=${c}` };
  const sdk = findSummary(summaries, System.GoddbSdk, op, c);
  return {
    name,
    verdict: sut.p99Ms <= targetSpec.p99MsMax ? Verdict.Met : Verdict.NotMet,
    detail: `goddb-raw p99 ${sut.p99Ms.toFixed(2)} ms${sdk === undefined ? '' : `; SDK ${sdk.p99Ms.toFixed(2)} ms`}${note}`,
  };
}

function memoryTarget(memory: readonly NodeMemory[], dataBytes: number, note: string): Target {
  const name = `node RSS <= ${targetSpec.rssDataFactor} x data + base`;
  if (memory.length === 0) return { name, verdict: Verdict.NotMeasured, detail: 'needs the GoD-DB nodes' };
  const parts = memory.map((m) => {
    const limit = targetSpec.rssDataFactor * dataBytes + m.baseBytes;
    return { ok: m.endBytes <= limit, text: `${m.id} ${formatBytes(m.endBytes)} (limit ${formatBytes(limit)})` };
  });
  return {
    name,
    verdict: parts.every((p) => p.ok) ? Verdict.Met : Verdict.NotMet,
    detail: `data ${formatBytes(dataBytes)} per node; RSS at end: ${parts.map((p) => p.text).join(', ')}${note}`,
  };
}

export function formatRate(opsPerSec: number): string {
  return Math.round(opsPerSec).toLocaleString('en-US');
}

/** Bytes in KiB below one MiB, in MiB above, with one decimal. */
export function formatBytes(bytes: number): string {
  const mib = 1024 * 1024;
  return bytes < mib ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / mib).toFixed(1)} MiB`;
}
