/**
 * One load generator run: spawn it, sample every process's CPU exactly when
 * it says the measured window starts and ends, and collect its result.
 */
import { fileURLToPath } from 'node:url';
import { parseJsonLine, spawnNode, waitForLine } from './children.js';
import { cpuBetween, snapshotCpu } from './proc.js';
import { LoadgenEvent, loadgenParamsEnv, type LoadgenParams, type LoadgenResult } from './types.js';

const loadgenPath = fileURLToPath(new URL('./loadgen.js', import.meta.url));
/** Time for the load generator to start, connect, drain and report, beyond its warm-up and window. */
const loadgenSlackMs = 60_000;
/** The most a preload may take: 15 minutes, plus 10 ms a key (at 100 writes/s) for large --keys. */
const preloadTimeoutMsBase = 15 * 60_000;
const preloadTimeoutMsPerKey = 10;

export interface LoadgenRun {
  result: LoadgenResult;
  /** % of one core over the measured window, by label; the load generator is `loadgen`. */
  cpu: Record<string, number>;
  pid: number;
}

/**
 * Runs the load generator with `params`; `pids` labels the processes whose
 * CPU is sampled over the window (the load generator is added to them).
 */
export async function runLoadgen(
  params: LoadgenParams,
  pids: ReadonlyMap<string, number>,
  ticksPerSecond: number,
  onProgress: (done: number, total: number) => void = () => undefined,
): Promise<LoadgenRun> {
  const child = spawnNode(`load generator (${params.system} ${params.mode} ${params.op} c=${params.concurrency})`, loadgenPath, [], {
    env: { ...process.env, [loadgenParamsEnv]: JSON.stringify(params) },
  });
  const watched = new Map(pids).set('loadgen', child.pid);
  let before: ReturnType<typeof snapshotCpu> | undefined;
  let after: ReturnType<typeof snapshotCpu> | undefined;
  const timeoutMs = params.mode === 'preload' ? preloadTimeoutMsBase + params.keys * preloadTimeoutMsPerKey : params.warmupMs + params.durationMs + loadgenSlackMs;
  try {
    const result = await waitForLine(child, (line) => {
      const rec = parseJsonLine(line);
      if (rec?.['event'] === LoadgenEvent.WarmupEnd) before = snapshotCpu(watched);
      else if (rec?.['event'] === LoadgenEvent.MeasureEnd) after = snapshotCpu(watched);
      else if (rec?.['event'] === LoadgenEvent.Progress) onProgress(Number(rec['done']), Number(rec['total']));
      else if (rec?.['event'] === LoadgenEvent.Result) return rec as unknown as LoadgenResult;
      return undefined;
    }, timeoutMs);
    const cpu = before !== undefined && after !== undefined ? cpuBetween(before, after, ticksPerSecond) : {};
    return { result: withoutEvent(result), cpu, pid: child.pid };
  } finally {
    await child.stop();
  }
}

function withoutEvent(rec: LoadgenResult): LoadgenResult {
  const { event: _event, ...result } = rec as LoadgenResult & { event?: unknown };
  return result;
}
