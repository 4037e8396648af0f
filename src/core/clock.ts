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
