/**
 * Polls `done` until it holds, or throws after `waitMs` naming what was
 * awaited (`what()` is read then, so it can show the state it ended in).
 * Tests wait for a condition this way, never for a fixed time.
 */
import { setTimeout as delay } from 'node:timers/promises';

export async function until(done: () => boolean | Promise<boolean>, waitMs: number, what: () => string, everyMs = 100): Promise<void> {
  const deadline = Date.now() + waitMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`not within ${waitMs}ms: ${what()}`);
    await delay(everyMs);
  }
}
