/** Time as a parameter: real in nodes, fake in simulations. */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  nowMs(): number;
  /** Calls `fn` once after `delayMs`. */
  setTimer(delayMs: number, fn: () => void): TimerHandle;
}
