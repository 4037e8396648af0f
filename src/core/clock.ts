/** Time as a parameter: real in nodes, fake in simulations. */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Wall-clock milliseconds: may drift, jump forward or step back (NTP, an operator, a VM resume). */
  nowMs(): number;
  /**
   * Milliseconds on a clock that never jumps, for durations only (failure
   * detection, timeouts); its origin is arbitrary and differs between nodes.
   */
  monotonicMs(): number;
  /** Calls `fn` once after `delayMs`. */
  setTimer(delayMs: number, fn: () => void): TimerHandle;
}

/**
 * Resolves on a later turn of the event loop (a timer of 0 ms): long work
 * on the event loop awaits it between pieces, so requests are served in
 * between, a piece's length at most.
 */
export function nextTurn(clock: Clock): Promise<void> {
  return new Promise<void>((resolve) => clock.setTimer(0, resolve));
}

/** A timer this much later than due means the process did not run meanwhile (SIGSTOP, a stuck event loop). */
export const stallMsMin = 100;

/**
 * A deadline that does not count a stall of this process against what it
 * waits for: when it fires `stallMsMin` or more past due, it waits that long
 * again, once. After a stall the timers run before the poll phase reads what
 * came in meanwhile (the replies waited in the socket), so a plain timer
 * would time out work that had finished; the transport moves its own
 * request deadlines the same way. Once only: an event loop that stays late
 * (overload, not a pause) would otherwise put the deadline off for as long
 * as it lags. A fake clock fires timers on time: simulations are unchanged.
 */
export function setDeadline(clock: Clock, delayMs: number, fn: () => void): TimerHandle {
  const dueMs = clock.monotonicMs() + delayMs;
  let extended = false;
  let timer: TimerHandle;
  const fire = (): void => {
    const lateMs = clock.monotonicMs() - dueMs;
    if (extended || lateMs <= stallMsMin) return fn();
    extended = true;
    timer = clock.setTimer(lateMs, fire);
  };
  timer = clock.setTimer(delayMs, fire);
  return { cancel: () => timer.cancel() };
}
