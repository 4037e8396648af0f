/**
 * Loaded into each GoD-DB worker the benchmark starts (`node --import
 * heap_probe.js ...`), so the report can show V8 heap next to RSS without
 * any change to the worker: on the message `memoryQuery` over the IPC
 * channel the benchmark already opens, it answers with
 * process.memoryUsage(). Anything else on the channel is left alone.
 */
import { memoryQuery, type MemoryAnswer } from './heap.js';

if (typeof process.send === 'function') {
  process.on('message', (message: unknown) => {
    if (message !== memoryQuery) return;
    const m = process.memoryUsage();
    const answer: MemoryAnswer = { kind: memoryQuery, heapUsedBytes: m.heapUsed, heapTotalBytes: m.heapTotal, rssBytes: m.rss };
    process.send?.(answer);
  });
}
