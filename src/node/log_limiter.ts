/**
 * Rate-limited logging for what arrives from outside: a flood of malformed
 * or refused messages writes at most one line per reason per interval, with
 * the number of lines it stood for, so garbage cannot fill the disk with logs.
 */
import type { Logger } from 'pino';

/** One line per reason per this long. */
export const logIntervalMs = 10_000;
/** Reasons remembered; past it the oldest is forgotten (its next line is logged at once). */
const reasonsMax = 256;

export class LogLimiter {
  private readonly last = new Map<string, { atMs: number; suppressed: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly nowMs: () => number = Date.now,
  ) {}

  warn(reason: string, fields: Record<string, unknown>, msg: string): void {
    if (this.admit(reason, fields)) this.logger.warn(fields, msg);
  }

  error(reason: string, fields: Record<string, unknown>, msg: string): void {
    if (this.admit(reason, fields)) this.logger.error(fields, msg);
  }

  private admit(reason: string, fields: Record<string, unknown>): boolean {
    const now = this.nowMs();
    const seen = this.last.get(reason);
    if (seen && now - seen.atMs < logIntervalMs) {
      seen.suppressed++;
      return false;
    }
    if (seen && seen.suppressed > 0) fields['suppressed'] = seen.suppressed;
    this.last.delete(reason);
    if (this.last.size >= reasonsMax) this.last.delete(this.last.keys().next().value!);
    this.last.set(reason, { atMs: now, suppressed: 0 });
    return true;
  }
}
