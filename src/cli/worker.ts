/**
 * `goddb worker`: one node in the foreground, logging JSON to stdout.
 * The first SIGINT/SIGTERM stops the node gracefully; a second one exits at
 * once. When started by `goddb dev` (with an IPC channel), the node also stops
 * if its parent goes away, so a killed dev session leaves no workers behind.
 * A worker that cannot start (bad configuration, NATS out of reach, a locked
 * data directory, a port in use) says why in one sentence on stderr and exits 1.
 */
import { pino, type Logger } from 'pino';
import { ConfigError, loadConfig } from '../config/load.js';
import type { NodeConfig } from '../config/types.js';
import { ErrorCode, GodDbError } from '../core/errors.js';
import { startNode, type GodDbNode } from '../node/node.js';
import { NatsUnreachableError } from '../transport/nats.js';

/** Longest a graceful stop may take: in-flight requests (bounded by the request timeout) and drains. */
const stopDeadlineMs = 15_000;

export async function runWorker(flags: Record<string, unknown>): Promise<void> {
  let config: Readonly<NodeConfig>;
  try {
    config = loadConfig({ flags });
  } catch (err) {
    failStart(err, pino({ base: { pid: process.pid } }));
  }
  const logger = pino({ level: config.log.level, base: { pid: process.pid } });
  const starting = startNode(config, { logger });
  handleShutdown(logger, starting);
  try {
    await starting;
  } catch (err) {
    failStart(err, logger, config);
  }
}

/**
 * Whoever started the worker reads why it did not start on stderr, as one
 * sentence, whether stdout is a terminal, a file or /dev/null. The JSON log
 * (stdout) carries it too, for log collectors, unless stdout is a terminal
 * where it would only repeat the sentence; a stack goes there only for an
 * unexpected error (a bug), where it is what a report needs.
 */
function failStart(err: unknown, logger: Logger, config?: Readonly<NodeConfig>): never {
  const sentence = startFailure(err, config);
  const expected = isExpectedFailure(err);
  if (!expected) logger.fatal({ err }, `node failed to start: ${sentence}`);
  else if (!process.stdout.isTTY) logger.fatal(`node failed to start: ${sentence}`);
  process.stderr.write(`goddb worker: ${sentence}\n`);
  process.exit(1);
}

/** The failure in one line, with what to change where the message alone does not say. */
export function startFailure(err: unknown, config?: Readonly<NodeConfig>): string {
  const message = (err instanceof Error ? err.message : String(err)).split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '').join('; ');
  if (err instanceof NatsUnreachableError) {
    return `${message}; is nats-server running there? --discovery (nats.servers) names the servers, --nats-connect-wait (nats.connectWaitMs) how long to keep trying`;
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (config && code === 'EADDRINUSE') return `the HTTP port ${config.http.port} on ${config.http.host} is in use by another process; choose another with -port (http.port), or 0 for any free port`;
  return message;
}

/** A failure of the setting the worker was given, not of the worker: no stack needed. */
function isExpectedFailure(err: unknown): boolean {
  if (err instanceof ConfigError || err instanceof NatsUnreachableError) return true;
  if (err instanceof GodDbError) return err.code !== ErrorCode.Internal;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code); // a system error: EADDRINUSE, EACCES, ENOENT, ...
}

function handleShutdown(logger: Logger, starting: Promise<GodDbNode>): void {
  let node: GodDbNode | undefined;
  starting.then(
    (n) => {
      node = n;
      // `goddb leave`: once its ranges are with their next owners, the node stops and the worker exits 0.
      void n.left.then(() => stop('left the cluster'));
    },
    () => undefined,
  );
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
