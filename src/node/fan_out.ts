/**
 * Sends one operation to several replicas with one deadline and tallies the
 * answers with the pure quorum tally. `quorum` settles as soon as the tally
 * is won or lost or the deadline passes; `all` settles once every replica
 * answered or the deadline passed (read repair works from it).
 */
import type { Clock } from '../core/clock.js';
import { newTally, recordFailure, recordSuccess, result, QuorumResult, type Tally } from '../core/quorum.js';

export const FanOutOutcome = { ...QuorumResult, Timeout: 'timeout' } as const;
export type FanOutOutcome = (typeof FanOutOutcome)[keyof typeof FanOutOutcome];

export interface FanOutResult<T> {
  outcome: FanOutOutcome;
  ok: Map<string, T>;
  failed: Map<string, Error>;
  tally: Tally;
}

export function fanOut<T>(
  targets: readonly string[],
  needed: number,
  timeoutMs: number,
  clock: Clock,
  call: (node: string) => Promise<T>,
): { quorum: Promise<FanOutResult<T>>; all: Promise<FanOutResult<T>> } {
  const ok = new Map<string, T>();
  const failed = new Map<string, Error>();
  let tally = newTally(targets.length, needed);
  let pending = targets.length;
  let quorumDone = false;
  let allDone = false;
  let resolveQuorum!: (r: FanOutResult<T>) => void;
  let resolveAll!: (r: FanOutResult<T>) => void;
  const quorum = new Promise<FanOutResult<T>>((r) => (resolveQuorum = r));
  const all = new Promise<FanOutResult<T>>((r) => (resolveAll = r));
  const snapshot = (outcome: FanOutOutcome): FanOutResult<T> => ({ outcome, ok: new Map(ok), failed: new Map(failed), tally });

  const settle = (): void => {
    const r = result(tally);
    if (!quorumDone && r !== QuorumResult.Pending) {
      quorumDone = true;
      resolveQuorum(snapshot(r));
    }
    if (!allDone && pending === 0) {
      allDone = true;
      timer.cancel();
      resolveAll(snapshot(r));
    }
  };
  const timer = clock.setTimer(timeoutMs, () => {
    if (!quorumDone) {
      quorumDone = true;
      resolveQuorum(snapshot(FanOutOutcome.Timeout));
    }
    if (!allDone) {
      allDone = true;
      resolveAll(snapshot(result(tally) === QuorumResult.Won ? QuorumResult.Won : FanOutOutcome.Timeout));
    }
  });

  for (const node of targets) {
    call(node).then(
      (answer) => {
        if (allDone) return;
        pending--;
        ok.set(node, answer);
        tally = recordSuccess(tally);
        settle();
      },
      (err: unknown) => {
        if (allDone) return;
        pending--;
        failed.set(node, err instanceof Error ? err : new Error(String(err)));
        tally = recordFailure(tally);
        settle();
      },
    );
  }
  if (targets.length === 0) settle();
  return { quorum, all };
}
