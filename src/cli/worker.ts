/**
 * `goddb worker`: one node in the foreground, logging JSON to stdout.
 * The first SIGINT/SIGTERM stops the node gracefully; a second one exits at
 * once. When started by `goddb dev` (with an IPC channel), the node also stops
 * if its parent goes away, so a killed dev session leaves no workers behind.
 */
import { pino, type Logger } from 'pino';
import { loadConfig } from '../config/load.js';
import type { NodeConfig } from '../config/types.js';
import { startNode, type GodDbNode } from '../node/node.js';

/** Longest a graceful stop may take: in-flight requests (bounded by the request timeout) and drains. */
const stopDeadlineMs = 15_000;

export async function runWorker(flags: Record<string, unknown>): Promise<void> {
  let config: Readonly<NodeConfig>;
  try {
    config = loadConfig({ flags });
  } catch (err) {
    // The stack of a config error is noise; the message names the key and the rule.
    pino().fatal((err as Error).message);
    process.exit(1);
  }
  const logger = pino({ level: config.log.level, base: { pid: process.pid } });
  const starting = startNode(config, { logger });
  handleShutdown(logger, starting);
  try {
    await starting;
  } catch (err) {
    logger.fatal({ err }, 'node failed to start');
    // Also on stderr, so whoever started the worker sees why without reading the JSON log.
    process.stderr.write(`goddb worker: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}

function handleShutdown(logger: Logger, starting: Promise<GodDbNode>): void {
  let node: GodDbNode | undefined;
  starting.then((n) => (node = n), () => undefined);
  let stopping = false;
  const stop = async (reason: string): Promise<void> => {
    if (stopping) {
      logger.warn({ reason }, 'second stop request: exiting now');
      process.exit(1);
    }
    stopping = true;
    if (node === undefined) {
      // Still starting (perhaps waiting for NATS, which can take forever): nothing is served yet.
      logger.info({ reason }, 'stopping before the node was ready');
      process.exit(0);
    }
    logger.info({ reason }, 'stopping');
    // A stop that hangs (a storage engine or NATS that never answers) must not keep the process.
    setTimeout(() => {
      logger.error({ afterMs: stopDeadlineMs }, 'stop did not finish: exiting');
      process.exit(1);
    }, stopDeadlineMs).unref();
    try {
      await node.stop();
      logger.info('stopped');
      process.exit(0);
    } catch (err) {
      logger.error({ err }, 'stop failed');
      process.exit(1);
    }
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  if (process.channel) process.on('disconnect', () => void stop('parent exited'));
}
