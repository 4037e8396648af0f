/**
 * A histogram for the hot path: every client request and every node-to-node
 * request is timed into one. prom-client's `observe` hashes its label object
 * into a string, validates the labels and looks its bucket up by the bound's
 * text on every call; here the series of a set of label values is resolved
 * once (`series`) and an observation is a bucket search over the bounds and
 * three additions. It joins a prom-client Registry as any metric does and
 * exports what prom-client's Histogram would, in the same layout: the
 * `_bucket` (cumulative, `le` from the bounds, then `+Inf`), `_sum` and
 * `_count` series of every set of label values seen.
 *
 * Memory: one series per distinct set of label values, so callers pass
 * values from bounded sets (an operation name, an error code).
 */
import type { Metric, Registry } from 'prom-client';

/** One set of label values' counts. */
export class HistogramSeries {
  /** Observations per bucket (not cumulative); past the last bound only in `count`. */
  private readonly buckets: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Readonly<Record<string, string>>,
    private readonly bounds: readonly number[],
  ) {
    this.buckets = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.buckets[i]!++;
        break;
      }
    }
    this.sum += value;
    this.count++;
  }

  /** Observations at or below each bound, in order. */
  cumulative(): number[] {
    let acc = 0;
    return Array.from(this.buckets, (n) => (acc += n));
  }
}

/** A series value as prom-client's Registry reads it (`sharedLabels` hold the series' own labels). */
interface ExportedValue {
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  value: number;
  metricName: string;
}

export class LightHistogram<L extends string = string> {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  /** Every series, in the order made; and by label value, one level of maps per label. */
  private all: HistogramSeries[] = [];
  private byValue = new Map<string, unknown>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly L[],
    private readonly bounds: readonly number[],
  ) {
    for (let i = 1; i < bounds.length; i++) {
      if (!(bounds[i - 1]! < bounds[i]!)) throw new Error(`assertion: histogram ${name}'s bounds must increase`);
    }
  }

  /** The series of these label values (one per label name, in order), made on first use. */
  series(...values: string[]): HistogramSeries {
    if (values.length !== this.labelNames.length) throw new Error(`assertion: histogram ${this.name} takes ${this.labelNames.length} label values, got ${values.length}`);
    let level: Map<string, unknown> = this.byValue;
    for (let i = 0; i < values.length - 1; i++) {
      let next = level.get(values[i]!) as Map<string, unknown> | undefined;
      if (next === undefined) level.set(values[i]!, (next = new Map()));
      level = next;
    }
    const last = values[values.length - 1]!;
    let s = level.get(last) as HistogramSeries | undefined;
    if (s === undefined) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i]!));
      s = new HistogramSeries(labels, this.bounds);
      level.set(last, s);
      this.all.push(s);
    }
    return s;
  }

  /** What prom-client's Registry writes as text: each value's own labels, the series' labels shared. */
  async getForPromString(): Promise<{ name: string; help: string; type: 'histogram'; values: ExportedValue[]; aggregator: 'sum' }> {
    const values: ExportedValue[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const s of this.all) {
      const counts = s.cumulative();
      this.bounds.forEach((le, i) => values.push({ labels: { le }, sharedLabels: s.labels, value: counts[i]!, metricName: bucketName }));
      values.push({ labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: bucketName });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** The same values with every label on each (prom-client's `get()`, as getMetricsAsJSON reads it). */
  async get(): Promise<{ name: string; help: string; type: 'histogram'; values: { labels: Record<string, string | number>; value: number; metricName: string }[]; aggregator: 'sum' }> {
    const data = await this.getForPromString();
    return { ...data, values: data.values.map(({ labels, sharedLabels, value, metricName }) => ({ labels: { ...labels, ...sharedLabels }, value, metricName })) };
  }

  /** Joins `registry`: it reads a metric through name, help, type, get and getForPromString alone, all here (prom-client's types want its own classes). */
  register(registry: Registry): void {
    registry.registerMetric(this as unknown as Metric);
  }

  reset(): void {
    this.all = [];
    this.byValue = new Map();
  }
}
