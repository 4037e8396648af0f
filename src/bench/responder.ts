/**
 * What the bench's responder processes (echo.ts, fanout.ts) share: once
 * subscribed they print `{"event":"ready"}` (the orchestrator waits for that
 * line), and they exit on SIGTERM or SIGINT, and when their parent goes away
 * (stdin closes), closing their NATS connection first.
 */
import type { NatsConnection } from '@nats-io/transport-node';

/** Flushes the subscriptions, says ready, and closes `nc` and exits when told to stop. */
export async function readyUntilStopped(nc: NatsConnection): Promise<void> {
  await nc.flush();
  process.stdout.write(`${JSON.stringify({ event: 'ready' })}\n`);
  const stop = (): void => {
    void nc.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
}

/** Runs a responder's `main`, exiting with its error on stderr when it fails. */
export function runResponder(name: string, main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
