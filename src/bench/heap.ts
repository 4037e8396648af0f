/**
 * The benchmark's side of heap_probe.ts: ask a worker for its V8 heap over
 * the IPC channel and wait a little for the answer.
 */
import type { ChildProcess } from 'node:child_process';

/** The message heap_probe.ts answers, and the `kind` of its answer. */
export const memoryQuery = 'goddb-bench-memory';
/** The `--import` argument that loads the probe into a worker. */
export const heapProbeExecArgv = ['--import', new URL('./heap_probe.js', import.meta.url).href];
const answerTimeoutMs = 2_000;

export interface MemoryAnswer {
  kind: typeof memoryQuery;
  heapUsedBytes: number;
  heapTotalBytes: number;
  rssBytes: number;
}

function isAnswer(message: unknown): message is MemoryAnswer {
  return typeof message === 'object' && message !== null && (message as { kind?: unknown }).kind === memoryQuery;
}

/** The worker's memoryUsage(), or undefined when it has no IPC channel or does not answer in time. */
export function askHeap(child: ChildProcess): Promise<MemoryAnswer | undefined> {
  if (child.connected !== true) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const done = (answer: MemoryAnswer | undefined): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(answer);
    };
    const onMessage = (message: unknown): void => {
      if (isAnswer(message)) done(message);
    };
    const timer = setTimeout(() => done(undefined), answerTimeoutMs);
    child.on('message', onMessage);
    child.send(memoryQuery, (err) => {
      if (err !== null) done(undefined);
    });
  });
}
