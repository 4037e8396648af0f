/**
 * The echo responder, a reference system run in its own process: it answers
 * every request under `bench.echo.>` with the payload it was sent. Measured
 * with the same load generator and client transport as GoD-DB's raw
 * subjects, it is the floor of one NATS request-reply on this machine.
 *
 * This file imports the NATS client directly, which product code must not
 * (only src/transport/nats.ts does): the echo is not GoD-DB, and the least
 * code between the subscription and the reply is what it is for.
 *
 *   node dist/src/bench/echo.js <nats-url>     prints `{"event":"ready"}` when subscribed
 *
 * It exits on SIGTERM or SIGINT, and when its parent goes away (stdin closes).
 */
import { connect } from '@nats-io/transport-node';
import { readyUntilStopped, runResponder } from './responder.js';
import { echoSubjectPrefix } from './types.js';

async function main(): Promise<void> {
  const url = process.argv[2];
  if (url === undefined) throw new Error('usage: echo.js <nats-url>');
  const nc = await connect({ servers: url, name: 'goddb-bench-echo-responder', noAsyncTraces: true });
  nc.subscribe(`${echoSubjectPrefix}.>`, {
    callback: (err, msg) => {
      if (err === null) msg.respond(msg.data);
    },
  });
  await readyUntilStopped(nc);
}

runResponder('echo', main);
