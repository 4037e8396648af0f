/**
 * Comparing two builds (`npm run bench:ab`, scripts/bench-ab.js; issue 11):
 * the bench run once per round for each build, the builds alternated, and
 * the rounds summarized per (system, op, C) as the medians of each build,
 * their ratio, and in how many rounds the second build did better than the
 * first run next to it. On this shared machine one build's runs move by
 * 10-25% within minutes, so a lever of a few percent shows as a direction
 * held round after round, not as a difference of two medians.
 */
import { median } from './stats.js';
import type { Summary } from './types.js';

/** One round: the medians (a --repeats 1 run's samples) of the first build and of the second, run one after the other. */
export interface AbRound {
  a: readonly Summary[];
  b: readonly Summary[];
}

export interface AbRow {
  system: string;
  op: string;
  concurrency: number;
  rounds: number;
  opsPerSecA: number;
  opsPerSecB: number;
  cpuUsPerOpA: number;
  cpuUsPerOpB: number;
  /** Rounds in which B did more operations per second than A. */
  fasterRounds: number;
  /** Rounds in which B spent less server CPU per operation than A. */
  cheaperRounds: number;
}

/** One row per (system, op, C) that both builds measured in every round, in the order of the first round. */
export function compareRounds(rounds: readonly AbRound[]): AbRow[] {
  if (rounds.length === 0) return [];
  const keyOf = (s: Summary) => `${s.system} ${s.op} ${s.concurrency}`;
  const rows: AbRow[] = [];
  for (const first of rounds[0]!.a) {
    const key = keyOf(first);
    const pairs = rounds.map((r) => ({ a: r.a.find((s) => keyOf(s) === key), b: r.b.find((s) => keyOf(s) === key) }));
    if (pairs.some((p) => p.a === undefined || p.b === undefined)) continue;
    const a = pairs.map((p) => p.a!);
    const b = pairs.map((p) => p.b!);
    rows.push({
      system: first.system,
      op: first.op,
      concurrency: first.concurrency,
      rounds: rounds.length,
      opsPerSecA: median(a.map((s) => s.opsPerSec)),
      opsPerSecB: median(b.map((s) => s.opsPerSec)),
      cpuUsPerOpA: median(a.map((s) => s.serverCpuUsPerOp)),
      cpuUsPerOpB: median(b.map((s) => s.serverCpuUsPerOp)),
      fasterRounds: pairs.filter((p) => p.b!.opsPerSec > p.a!.opsPerSec).length,
      cheaperRounds: pairs.filter((p) => p.b!.serverCpuUsPerOp < p.a!.serverCpuUsPerOp).length,
    });
  }
  return rows;
}

/** The rows as a Markdown table: A and B are the two revisions' names. */
export function abTable(rows: readonly AbRow[], a: string, b: string): string {
  const pct = (x: number, y: number) => `${y >= x ? '+' : ''}${(((y - x) / x) * 100).toFixed(0)}%`;
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  const lines = [
    `| system | op | C | ops/s ${a} / ${b} | change | B faster in | server CPU µs/op ${a} / ${b} | change | B cheaper in |`,
    '|---|---|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.system} | ${r.op} | ${r.concurrency} | ${n(r.opsPerSecA)} / ${n(r.opsPerSecB)} | ${pct(r.opsPerSecA, r.opsPerSecB)} | ${r.fasterRounds} of ${r.rounds} | ${n(r.cpuUsPerOpA)} / ${n(r.cpuUsPerOpB)} | ${pct(r.cpuUsPerOpA, r.cpuUsPerOpB)} | ${r.cheaperRounds} of ${r.rounds} |`,
    );
  }
  return lines.join('\n');
}
