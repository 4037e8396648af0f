/**
 * Simulated clients that put, delete and get keys until stopped, recording
 * every operation for the history checker (test/helpers/history.ts): a
 * put's value is unique (`<client>.<n>`), a get's outcome is known on 200
 * and 404, a write's on 200 (unless the bus duplicated it: a duplicate may
 * run twice) and on a 400 or 413 refusal; anything else is unknown. Times
 * are simulated ms relative to `startMs`. Seeded: the same seed, the same
 * operations.
 */
import { ErrorCode } from '../../src/core/errors.js';
import { ClientOp } from '../../src/protocol/subjects.js';
import { seededRandom } from '../../src/transport/sim.js';
import { OpKind, Outcome, type Operation } from './history.js';
import type { SimCluster } from './sim_cluster.js';

export interface RecordedWorkload {
  history: Operation[];
  /** Stops starting operations and waits for those under way (at most four client timeouts). */
  stop(): Promise<void>;
}

export interface WorkloadShape {
  seed: number;
  clients: number;
  clientTimeoutMs: number;
  startMs: number;
  /** The key of the next operation. */
  pickKey: (random: () => number) => string;
  /** Share of puts and of deletes among operations (the rest are gets). */
  putShare: number;
  deleteShare: number;
  /** Longest pause between two operations of one client (ms). */
  thinkMsMax: number;
}

export function startRecordedWorkload(c: SimCluster, shape: WorkloadShape): RecordedWorkload {
  const random = seededRandom(shape.seed);
  const history: Operation[] = [];
  let running = true;
  let seq = 0;
  const sleep = (ms: number) => new Promise<void>((r) => c.clock.setTimer(ms, r));
  const loop = async (name: string): Promise<void> => {
    const client = c.connectClient(name, shape.clientTimeoutMs);
    while (running) {
      const key = shape.pickKey(random);
      const r = random();
      const op = r < shape.putShare ? ClientOp.Put : r < shape.putShare + shape.deleteShare ? ClientOp.Del : ClientOp.Get;
      const written = op === ClientOp.Put ? `${name}.${++seq}` : undefined;
      const invokeMs = c.clock.nowMs() - shape.startMs;
      const duplicatesBefore = client.transport.duplicatesSent;
      const reply = await client.request(op, key, written ?? '');
      const entry: Operation = { id: history.length + 1, client: name, key, op: op as OpKind, invokeMs, completeMs: c.clock.nowMs() - shape.startMs, outcome: Outcome.Unknown, note: `${reply.code} ${reply.message.slice(0, 160)}` };
      if (op === ClientOp.Get) {
        if (reply.code === 200 || reply.code === ErrorCode.NotFound) {
          entry.outcome = Outcome.Ok;
          if (reply.code === 200) entry.value = reply.value;
        }
      } else {
        entry.value = written;
        if (reply.code === 200 && client.transport.duplicatesSent === duplicatesBefore) entry.outcome = Outcome.Ok;
        else if (reply.code === ErrorCode.BadRequest || reply.code === ErrorCode.TooLarge) entry.outcome = Outcome.Failed;
      }
      history.push(entry);
      await sleep(Math.floor(random() * shape.thinkMsMax));
    }
  };
  const done = Promise.all(Array.from({ length: shape.clients }, (_, i) => loop(`c${i + 1}`)));
  return {
    history,
    stop: async () => {
      running = false;
      await c.clock.run(done, 4 * shape.clientTimeoutMs);
    },
  };
}
