/**
 * Issue 13, item 3: a node treats what other nodes send as untrusted, and what
 * it logs about bad messages is rate limited (node/log_limiter.ts), so a flood
 * of garbage cannot fill the disk with logs. 10,000 garbage messages from a
 * connection of the node role (a peer), spread over every subject a node
 * serves (gossip, each replica operation, the client API), with and without
 * reply subjects (some on subjects a node must not answer on): the worker's
 * whole log, read to its end after it stopped, holds a few dozen lines, and
 * the worker still serves.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as natsConnect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { newPassword, NatsRole } from '../../src/cli/dev_credentials.js';
import { connect } from '../../src/client/index.js';
import { packageRoot } from '../../src/config/load.js';
import { startNatsServer, type NatsServerHandle } from '../../src/devtools/servers.js';
import { gossipSubject, ReplicaOp, replicaSubject } from '../../src/protocol/subjects.js';
import { startWorker, tempDir, type Worker } from '../helpers/workers.js';

const cluster = 'junk';
const id = 'g1';
const garbageMessages = 10_000;
/** What the worker may log in all: start, stop, and a line per kind of refusal per 10 s. */
const linesMax = 150;

describe('garbage from peers - logs stay bounded', () => {
  const dir = tempDir('garbage');
  const env = { GODDB_NATS_NODE_PASSWORD: newPassword(), GODDB_NATS_CLIENT_PASSWORD: newPassword() };
  let nats: NatsServerHandle;
  let worker: Worker | undefined;
  let peer: NatsConnection | undefined;

  before(async () => {
    nats = await startNatsServer({ configFile: join(packageRoot(), 'nats-server.conf'), env });
    worker = await startWorker(id, [
      '--cluster', cluster, '-peers', id, '-discovery', nats.url, '--engine', 'memory', '--data-dir', join(dir.path, id),
      '-replication', '1', '-readquorum', '1', '-writequorum', '1',
      '--nats-user', NatsRole.Node, '--nats-pass', env.GODDB_NATS_NODE_PASSWORD,
    ]);
    peer = await natsConnect({ servers: nats.url, user: NatsRole.Node, pass: env.GODDB_NATS_NODE_PASSWORD, noAsyncTraces: true });
  });

  after(async () => {
    await peer?.close();
    await worker?.kill('SIGKILL');
    await nats?.stop();
    dir.remove();
  });

  it('garbage - 10,000 garbage messages on every node subject: a bounded log, and the node still serves', async () => {
    const subjects = [
      gossipSubject(cluster),
      ...Object.values(ReplicaOp).map((op) => replicaSubject(cluster, id, op)),
      'kv.get.x', 'kv.put.x', 'kv.keys', `kvn.${id}.put.y`,
    ];
    // Reply subjects: none, a peer's inbox, and ones a node must not answer on (a forged write, the feed).
    const replies = [undefined, `_INBOX_GOD.attacker.${randomBytes(4).toString('hex')}`, replicaSubject(cluster, id, ReplicaOp.Put), 'kvchanges.x'];
    const before = worker!.logs.length;
    for (let i = 0; i < garbageMessages; i++) {
      const reply = replies[i % replies.length];
      const data = randomBytes(1 + (i % 64));
      // A CBOR-looking first byte now and then, so decoding gets past the first check.
      if (i % 3 === 0) data[0] = 0xa0 + (i % 8);
      peer!.publish(subjects[i % subjects.length]!, data, reply ? { reply } : undefined);
      if (i % 1000 === 999) await peer!.flush();
    }
    await peer!.flush();
    // The node still serves, and a request after the flood means it has read the flood (one connection, in order).
    const db = await connect({ servers: nats.url, user: NatsRole.Client, pass: env.GODDB_NATS_CLIENT_PASSWORD });
    try {
      await db.put('after.flood', 'ok');
      assert.equal((await db.get('after.flood'))?.text(), 'ok');
    } finally {
      await db.close();
    }
    // Read the log to its end: stop the worker and wait for its output to close.
    const stdout = worker!.process.stdout!;
    const closed = stdout.closed ? Promise.resolve() : once(stdout, 'close');
    await worker!.kill('SIGTERM');
    await closed;
    const during = worker!.logs.slice(before).filter((l) => l.trim() !== '');
    const refusals = during.filter((l) => /malformed|refused|transport:/.test(l));
    assert.ok(refusals.length > 0, 'the node did log the garbage (rate limited), so the bound below means something');
    assert.ok(during.length <= linesMax, `${during.length} log lines for ${garbageMessages} garbage messages (at most ${linesMax}):\n${during.slice(0, 40).join('\n')}`);
    // Each refusal line says how many it stood for, once the limiter held some back.
    assert.ok(during.some((l) => /"suppressed":\d+/.test(l)) || during.length < 40, 'suppressed counts are reported');
  });
});
