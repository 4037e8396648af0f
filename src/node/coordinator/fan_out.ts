/**
 * Sends one operation to replicas with one deadline and tallies the answers
 * with the pure quorum tally. It starts with the first `initial` targets and
 * calls a spare (the next target) whenever one fails, or when the quorum is
 * still pending `speculativeMs` after the start (a slow replica: Cassandra's
 * speculative retry). Reads start with R targets, writes with all of them.
 * `quorum` settles as soon as the tally is won or lost or the deadline
 * passes; `all` once every replica called has answered or the deadline
 * passed (read repair works from it). Both timers forgive a stall of this
 * process once (core/clock.ts setDeadline): the replies that came in during
 * it are read before either gives up on them.
 */
import { setDeadline, type Clock, type TimerHandle } from '../../core/clock.js';
import { newTally, recordFailure, recordSuccess, result, QuorumResult, type Tally } from '../../core/quorum.js';

export const FanOutOutcome = { ...QuorumResult, Timeout: 'timeout' } as const;
export type FanOutOutcome = (typeof FanOutOutcome)[keyof typeof FanOutOutcome];

export interface FanOutResult<T> {
  outcome: FanOutOutcome;
  ok: Map<string, T>;
  failed: Map<string, Error>;
  tally: Tally;
  /** Targets called by then (the first `initial`, and the spares called since). */
  called: number;
}

export interface FanOutOptions {
  needed: number;
  timeoutMs: number;
  /** Targets called at once; the rest are spares (default: all). */
  initial?: number;
  /** When set, one more spare is called if the quorum is still pending this long after the start. */
  speculativeMs?: number;
}

export function fanOut<T>(
  targets: readonly string[],
  opts: FanOutOptions,
  clock: Clock,
  call: (node: string) => Promise<T>,
): { quorum: Promise<FanOutResult<T>>; all: Promise<FanOutResult<T>> } {
  const ok = new Map<string, T>();
  const failed = new Map<string, Error>();
  let tally = newTally(targets.length, opts.needed);
  let next = 0;
  let outstanding = 0;
  let quorumDone = false;
  let allDone = false;
  let resolveQuorum!: (r: FanOutResult<T>) => void;
  let resolveAll!: (r: FanOutResult<T>) => void;
  const quorum = new Promise<FanOutResult<T>>((r) => (resolveQuorum = r));
  const all = new Promise<FanOutResult<T>>((r) => (resolveAll = r));
  // The quorum's answer is a copy (answers keep coming after it); `all`'s are the maps themselves,
  // which nothing changes once it has settled.
  const snapshot = (outcome: FanOutOutcome): FanOutResult<T> => ({ outcome, ok: new Map(ok), failed: new Map(failed), tally, called: next });
  const final = (outcome: FanOutOutcome): FanOutResult<T> => ({ outcome, ok, failed, tally, called: next });
  let speculative: TimerHandle | undefined;

  const settle = (): void => {
    const r = result(tally);
    if (!quorumDone && r !== QuorumResult.Pending) {
      quorumDone = true;
      speculative?.cancel();
      resolveQuorum(snapshot(r));
    }
    if (!allDone && outstanding === 0 && (quorumDone || next >= targets.length)) {
      allDone = true;
      deadline.cancel();
      resolveAll(final(r));
    }
  };

  const launch = (): void => {
    const node = targets[next++]!;
    outstanding++;
    call(node).then(
      (answer) => {
        if (allDone) return;
        outstanding--;
        ok.set(node, answer);
        tally = recordSuccess(tally);
        settle();
      },
      (err: unknown) => {
        if (allDone) return;
        outstanding--;
        failed.set(node, err instanceof Error ? err : new Error(String(err)));
        tally = recordFailure(tally);
        if (!quorumDone && result(tally) === QuorumResult.Pending && next < targets.length) launch();
        settle();
      },
    );
  };

  // A stall of this process (SIGSTOP) is not the replicas' time: their replies wait in the socket.
  const deadline = setDeadline(clock, opts.timeoutMs, () => {
    speculative?.cancel();
    if (!quorumDone) {
      quorumDone = true;
      resolveQuorum(snapshot(FanOutOutcome.Timeout));
    }
    if (!allDone) {
      allDone = true;
      resolveAll(final(result(tally) === QuorumResult.Won ? QuorumResult.Won : FanOutOutcome.Timeout));
    }
  });
  const initial = Math.min(opts.initial ?? targets.length, targets.length);
  for (let i = 0; i < initial; i++) launch();
  if (opts.speculativeMs !== undefined && next < targets.length) {
    // After a stall a spare would be asked for answers that wait in the socket: a wasted read.
    speculative = setDeadline(clock, opts.speculativeMs, () => {
      if (!quorumDone && next < targets.length) launch();
    });
  }
  settle();
  return { quorum, all };
}
