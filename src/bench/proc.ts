/**
 * CPU and memory of other processes, read from Linux's /proc: the parsers
 * are pure (tested on sample text), the readers return undefined for a
 * process that is gone.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** The fallback when `getconf CLK_TCK` cannot be asked; it is 100 on every Linux we know of. */
const clockTicksDefault = 100;

/**
 * utime + stime (fields 14 and 15 of proc(5), in clock ticks) from a
 * /proc/<pid>/stat line. The command name (field 2) is in parentheses and may
 * itself hold spaces and parentheses, so fields are counted after the last ')'.
 */
export function parseStatCpuTicks(line: string): number {
  const close = line.lastIndexOf(')');
  if (close === -1) throw new Error(`not a /proc/<pid>/stat line: ${line.slice(0, 80)}`);
  const fields = line.slice(close + 2).trim().split(/\s+/);
  // fields[0] is field 3 (state), so field n is fields[n - 3].
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`no utime/stime in: ${line.slice(0, 80)}`);
  return utime + stime;
}

/** A `Name:   1234 kB` field of /proc/<pid>/status, in bytes; undefined when absent. */
export function parseStatusBytes(text: string, name: string): number | undefined {
  const match = new RegExp(`^${name}:\\s+(\\d+)\\s+kB$`, 'm').exec(text);
  return match === null ? undefined : Number(match[1]) * 1024;
}

/** CPU used between two tick readings over `wallMs`, as % of one core. */
export function cpuPercent(ticksBefore: number, ticksAfter: number, wallMs: number, ticksPerSecond: number): number {
  if (wallMs <= 0) return 0;
  return ((ticksAfter - ticksBefore) / ticksPerSecond / (wallMs / 1000)) * 100;
}

export function readCpuTicks(pid: number): number | undefined {
  try {
    return parseStatCpuTicks(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

export interface Memory {
  rssBytes: number;
  /** Anonymous memory (heap, stacks) and file-backed pages (code, LMDB's map) that make up RSS. */
  rssAnonBytes?: number;
  rssFileBytes?: number;
  /** V8 heap used and reserved, when the process answers (a GoD-DB worker, through heap_probe.ts). */
  heapUsedBytes?: number;
  heapTotalBytes?: number;
}

export function readMemory(pid: number): Memory | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const rssBytes = parseStatusBytes(text, 'VmRSS');
  if (rssBytes === undefined) return undefined;
  return { rssBytes, rssAnonBytes: parseStatusBytes(text, 'RssAnon'), rssFileBytes: parseStatusBytes(text, 'RssFile') };
}

export function clockTicksPerSecond(): number {
  const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const ticks = Number(out.stdout?.trim());
  return Number.isInteger(ticks) && ticks > 0 ? ticks : clockTicksDefault;
}

/** True while `pid` exists (a zombie counts as gone: it runs nothing). */
export function isAlive(pid: number): boolean {
  try {
    const line = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return line.charAt(line.lastIndexOf(')') + 2) !== 'Z';
  } catch {
    return false;
  }
}

/** CPU tick readings of several labelled processes at one moment. */
export function snapshotCpu(pids: ReadonlyMap<string, number>): { atMs: number; ticks: Map<string, number> } {
  const ticks = new Map<string, number>();
  for (const [label, pid] of pids) {
    const t = readCpuTicks(pid);
    if (t !== undefined) ticks.set(label, t);
  }
  return { atMs: performance.now(), ticks };
}

/** % of one core per label between two snapshots (labels missing from either are left out). */
export function cpuBetween(
  before: { atMs: number; ticks: Map<string, number> },
  after: { atMs: number; ticks: Map<string, number> },
  ticksPerSecond: number,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [label, t1] of after.ticks) {
    const t0 = before.ticks.get(label);
    if (t0 !== undefined) out[label] = cpuPercent(t0, t1, after.atMs - before.atMs, ticksPerSecond);
  }
  return out;
}
