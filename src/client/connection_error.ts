/**
 * NATS could not be reached, so no GoD-DB node was asked anything: not one
 * of the wire errors (a 500 or 504 is a node's answer), so it has no code.
 * It names the servers tried and where they came from (see context.ts).
 */
export class ConnectionError extends Error {
  constructor(
    readonly servers: readonly string[],
    /** Where the servers came from: `--servers`, `NATS_URL`, `context <file>`, the default... */
    readonly source: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`could not connect to NATS at ${servers.join(', ')} (from ${source}): ${reason}`, options);
    this.name = 'ConnectionError';
  }
}
