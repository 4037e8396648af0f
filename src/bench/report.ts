/**
 * The printed report, pure: Markdown tables padded to line up in a terminal,
 * so the same text reads well on screen and pastes into the README.
 */
import { formatBytes, formatRate, type NodeMemory, type Ratio, type Target } from './stats.js';
import type { Summary, System } from './types.js';

/** A Markdown table whose columns line up; `right` lists the columns aligned right. */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[], right: ReadonlySet<number> = new Set()): string {
  const widths = headers.map((h, i) => Math.max(3, h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const cell = (text: string, i: number): string => (right.has(i) ? text.padStart(widths[i]!) : text.padEnd(widths[i]!));
  const line = (cells: readonly string[]): string => `| ${headers.map((_, i) => cell(cells[i] ?? '', i)).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (right.has(i) ? `${'-'.repeat(w + 1)}:` : `${'-'.repeat(w + 2)}`)).join('|')}|`;
  return [line(headers), rule, ...rows.map(line)].join('\n');
}

const allColumnsRight = (from: number, to: number): Set<number> => new Set(Array.from({ length: to - from }, (_, i) => from + i));

/** CPU labels in a stable order: nats first, the R3 cluster's servers, nodes, then the rest as given. */
export function cpuLabels(summaries: readonly Summary[]): string[] {
  const seen = new Set(summaries.flatMap((s) => Object.keys(s.cpu)));
  const byPattern = (pattern: RegExp): string[] => [...seen].filter((l) => pattern.test(l)).sort();
  const order = ['nats', ...byPattern(/^nats-r3-\d+$/), ...byPattern(/^b\d+$/), 'nats-periodic', ...byPattern(/^p\d+$/), 'loadgen', 'echo', ...byPattern(/^f\d+$/), ...byPattern(/^fl\d+$/), 'redis'];
  return [...order.filter((l) => seen.has(l)), ...[...seen].filter((l) => !order.includes(l)).sort()];
}

/**
 * The medians: one row per (system, op, concurrency), with the server-side
 * CPU per op (µs, summed over the system's own processes) and each
 * process's CPU as % of one core.
 */
export function resultsTable(summaries: readonly Summary[]): string {
  const labels = cpuLabels(summaries);
  const headers = ['system', 'op', 'C', 'ops/s', 'p50 ms', 'p99 ms', 'server CPU µs/op', 'errors', ...labels.map((l) => `${l} %`)];
  const rows = summaries.map((s) => [
    s.system,
    s.op,
    String(s.concurrency),
    formatRate(s.opsPerSec),
    s.p50Ms.toFixed(2),
    s.p99Ms.toFixed(2),
    Number.isFinite(s.serverCpuUsPerOp) ? Math.round(s.serverCpuUsPerOp).toString() : '',
    String(s.errors),
    ...labels.map((l) => (s.cpu[l] === undefined ? '' : Math.round(s.cpu[l]).toString())),
  ]);
  return formatTable(headers, rows, allColumnsRight(2, headers.length));
}

/** GoD-DB over each reference: one row per (op, concurrency), one column per (client, reference). */
export function ratioTable(list: readonly Ratio[]): string {
  const pairs: { system: System; reference: System }[] = [];
  for (const r of list) {
    if (!pairs.some((p) => p.system === r.system && p.reference === r.reference)) pairs.push({ system: r.system, reference: r.reference });
  }
  const rowKeys: { op: string; concurrency: number }[] = [];
  for (const r of list) {
    if (!rowKeys.some((k) => k.op === r.op && k.concurrency === r.concurrency)) rowKeys.push({ op: r.op, concurrency: r.concurrency });
  }
  const headers = ['op', 'C', ...pairs.map((p) => `${p.system.replace('goddb-', '')} / ${p.reference}`)];
  const rows = rowKeys.map((k) => [
    k.op,
    String(k.concurrency),
    ...pairs.map((p) => {
      const r = list.find((x) => x.op === k.op && x.concurrency === k.concurrency && x.system === p.system && x.reference === p.reference);
      return r === undefined ? '' : `${r.ratio.toFixed(2)}x`;
    }),
  ]);
  return formatTable(headers, rows, allColumnsRight(1, headers.length));
}

/** RSS at three moments, and V8 heap used (when the node answered) after the preload and at the end. */
export function memoryTable(memory: readonly NodeMemory[], dataBytesPerNode: number): string {
  const headers = ['node', 'idle (base)', 'after preload', 'at end', 'heap used after preload', 'heap used at end', 'data held', '2 x data + base'];
  const heap = (bytes: number | undefined): string => (bytes === undefined ? '' : formatBytes(bytes));
  const rows = memory.map((m) => [
    m.id,
    formatBytes(m.baseBytes),
    formatBytes(m.afterPreloadBytes),
    formatBytes(m.endBytes),
    heap(m.afterPreloadHeapUsedBytes),
    heap(m.endHeapUsedBytes),
    formatBytes(dataBytesPerNode),
    formatBytes(2 * dataBytesPerNode + m.baseBytes),
  ]);
  return formatTable(headers, rows, allColumnsRight(1, headers.length));
}

export function targetLines(list: readonly Target[]): string {
  const width = Math.max(...list.map((t) => t.verdict.length));
  return list.map((t) => `- ${t.verdict.padEnd(width)}  ${t.name}: ${t.detail}`).join('\n');
}
