/**
 * The run's record (the JSON file keeps every sample) and the report
 * printed from it.
 */
import { cpus, loadavg, totalmem } from 'node:os';
import { spawnSync } from 'node:child_process';
import type { Memory } from './proc.js';
import { memoryTable, ratioTable, resultsTable, targetLines } from './report.js';
import { formatBytes, type NodeMemory, type Ratio, type Target } from './stats.js';
import type { BenchConfig, Sample, Summary, System } from './types.js';

export interface PreloadRecord {
  system: System;
  keys: number;
  ms: number;
  opsPerSec: number;
  errors: number;
  loadgenPid: number;
}

export interface NodeMemoryRecord extends NodeMemory {
  base: Memory;
  afterPreload: Memory;
  end: Memory;
}

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryBytes: number;
  /** 1, 5 and 15 minute load averages when the run started: how busy the shared machine was. */
  loadAverageAtStart: number[];
  node: string;
  natsServer: string;
  redisServer: string;
}

export interface BenchResult {
  startedAt: string;
  finishedAt: string;
  wallMs: number;
  estimateMs: number;
  machine: Machine;
  config: BenchConfig & { nodes: number; replication: number; readQuorum: number; writeQuorum: number; requestTimeoutMs: number; preloadConcurrency: number; keyBytes: number };
  /** Every process the run started, by label (load generators are in `samples` and `preload`). */
  processes: Record<string, number>;
  preload: PreloadRecord[];
  memory: { dataBytesPerNode: number; nodes: NodeMemoryRecord[] };
  samples: Sample[];
  medians: Summary[];
  ratios: Ratio[];
  targets: Target[];
  /** Issue 11's targets against jetstream-kv-r3 (absent in results written before them). */
  likeForLike?: Target[];
}

export function describeMachine(binaries: { natsServer?: string; redisServer?: string }): Machine {
  const list = cpus();
  return {
    cpus: list.length,
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    memoryBytes: totalmem(),
    loadAverageAtStart: loadavg().map((x) => Number(x.toFixed(2))),
    node: process.version,
    natsServer: versionOf(binaries.natsServer),
    redisServer: versionOf(binaries.redisServer),
  };
}

function versionOf(binary: string | undefined): string {
  if (binary === undefined) return '';
  const out = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  return (out.stdout ?? '').trim().split('\n')[0] ?? '';
}

/** Every pid the run started: servers, workers, echo, and each load generator. */
export function allPids(result: BenchResult): number[] {
  return [...Object.values(result.processes), ...result.preload.map((p) => p.loadgenPid), ...result.samples.map((s) => s.loadgenPid)];
}

export function renderReport(r: BenchResult): string {
  const c = r.config;
  const sections = [
    `## GoD-DB bench, ${r.startedAt.slice(0, 10)}`,
    '',
    `${r.machine.cpus} cores (${r.machine.cpuModel}), load average ${r.machine.loadAverageAtStart.join(' ')} at start; ` +
      `${c.nodes} nodes, N=${c.replication} R=${c.readQuorum} W=${c.writeQuorum}, engine ${c.engine}; ` +
      `${c.valueBytes}-byte values, ${c.keys.toLocaleString('en-US')} keys; ` +
      `${c.durationMs} ms windows after ${c.warmupMs} ms of warm-up; medians of ${c.repeats}; wall time ${(r.wallMs / 1000).toFixed(0)} s.` +
      (c.ratePerSec === undefined ? '' : ` Open loop: ${c.ratePerSec.toLocaleString('en-US')} requests/s offered, at most C in flight (C is a cap, not the load).`),
    '',
    '### Throughput and latency (server CPU µs/op: the system\'s nats-servers and server processes, not the load generator; CPU %: of one core over the measured window)',
    '',
    resultsTable(r.medians),
  ];
  if (r.ratios.length > 0) sections.push('', '### GoD-DB throughput over each reference', '', ratioTable(r.ratios));
  if (r.memory.nodes.length > 0) {
    sections.push(
      '',
      `### GoD-DB node memory (VmRSS, and V8 heap used; ${r.config.keys.toLocaleString('en-US')} keys, data held: ${formatBytes(r.memory.dataBytesPerNode)} per node)`,
      '',
      memoryTable(r.memory.nodes, r.memory.dataBytesPerNode),
    );
  }
  if (r.preload.length > 0) {
    sections.push('', `Preload: ${r.preload.map((p) => `${p.system} ${(p.ms / 1000).toFixed(1)} s (${Math.round(p.opsPerSec).toLocaleString('en-US')} puts/s)`).join(', ')}.`);
  }
  sections.push('', '### Targets (issue 4)', '', targetLines(r.targets), '');
  if (r.likeForLike !== undefined) sections.push('### Targets (issue 11: like for like, against jetstream-kv-r3)', '', targetLines(r.likeForLike), '');
  return sections.join('\n');
}
