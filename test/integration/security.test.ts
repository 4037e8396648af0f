/**
 * Issue 13: the two NATS roles of the shipped configuration (nats-server.conf,
 * which includes deploy/nats/auth.conf), with real processes. As the client
 * role, every attack on the nodes' traffic fails with a permissions error and
 * changes nothing; as the node role it all works; and the cluster serves the
 * client role.
 *
 * "Changes nothing" is checked against a witness that would have seen it: a
 * node-role connection subscribed to `god.>` and `_INBOX_GOD.>`, a client-role
 * watcher of `kvchanges.>`, both flushed after the attacker's own flush (the
 * server handles one connection's protocol in order, and a witness's PONG
 * comes after any message the server queued for it before), and each shown
 * to see the legitimate counterpart of the attack.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as natsConnect } from '@nats-io/transport-node';
import { PermissionViolationError, type Msg, type NatsConnection } from '@nats-io/nats-core';
import { newPassword, NatsRole } from '../../src/cli/dev_credentials.js';
import { connect, type GodDbClient } from '../../src/client/index.js';
import { packageRoot } from '../../src/config/load.js';
import { startNatsServer, type NatsServerHandle } from '../../src/devtools/servers.js';
import { startWorker, tempDir, type Worker } from '../helpers/workers.js';

const cluster = 'sec';
const ids = ['s1', 's2', 's3'];
const waitMs = 10_000;

interface Conn {
  nc: NatsConnection;
  violations: PermissionViolationError[];
}

async function until(what: string, done: () => boolean): Promise<void> {
  const deadline = Date.now() + waitMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('security - NATS roles of the shipped configuration', () => {
  const dir = tempDir('security');
  const nodePassword = newPassword();
  const clientPassword = newPassword();
  let nats: NatsServerHandle;
  let workers: Worker[] = [];
  const conns: Conn[] = [];
  let db: GodDbClient | undefined;

  async function open(role: 'node' | 'client'): Promise<Conn> {
    const nc = await natsConnect({
      servers: nats.url,
      user: role === 'node' ? NatsRole.Node : NatsRole.Client,
      pass: role === 'node' ? nodePassword : clientPassword,
      noAsyncTraces: true,
    });
    const conn: Conn = { nc, violations: [] };
    void (async () => {
      for await (const s of nc.status()) if (s.type === 'error' && s.error instanceof PermissionViolationError) conn.violations.push(s.error);
    })();
    conns.push(conn);
    return conn;
  }

  /** Waits for the server's permissions error about `subject`. */
  async function refused(conn: Conn, operation: 'publish' | 'subscription', subject: string): Promise<void> {
    await until(`a ${operation} permissions error on ${subject}`, () => conn.violations.some((v) => v.operation === operation && v.subject === subject));
  }

  /** Everything a connection has been sent so far has reached it (see the header). */
  async function settle(...cs: Conn[]): Promise<void> {
    for (const c of cs) await c.nc.flush();
  }

  /** A subscription that records the messages carrying `marker`. */
  function witness(conn: Conn, subject: string, marker: string): Msg[] {
    const seen: Msg[] = [];
    conn.nc.subscribe(subject, {
      callback: (e, m) => {
        if (e === null && m.string().includes(marker)) seen.push(m);
      },
    });
    return seen;
  }

  before(async () => {
    nats = await startNatsServer({
      configFile: join(packageRoot(), 'nats-server.conf'),
      env: { GODDB_NATS_NODE_PASSWORD: nodePassword, GODDB_NATS_CLIENT_PASSWORD: clientPassword },
    });
    workers = await Promise.all(ids.map((id) => startWorker(id, [
      '--cluster', cluster, '-peers', ids.join(','), '-discovery', nats.url, '--engine', 'memory', '--data-dir', join(dir.path, id),
      '--nats-user', NatsRole.Node, '--nats-pass', nodePassword,
    ])));
    db = await connect({ servers: nats.url, user: NatsRole.Client, pass: clientPassword });
  });

  after(async () => {
    await db?.close();
    await Promise.all(conns.map((c) => c.nc.close().catch(() => undefined)));
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    await nats?.stop();
    dir.remove();
  });

  it('security - no password, a wrong one, or a role name with the other role\'s password: no connection', async () => {
    for (const opts of [{}, { user: NatsRole.Client, pass: 'wrong' }, { user: NatsRole.Client, pass: nodePassword }]) {
      await assert.rejects(natsConnect({ servers: nats.url, noAsyncTraces: true, reconnect: false, ...opts }), /Authorization/i, JSON.stringify(opts));
    }
  });

  it('security - the cluster serves kv.put, kv.get, kv.del, kv.keys and $SRV to the client role', async () => {
    await db!.put('sec.k1', 'v1');
    assert.equal((await db!.get('sec.k1'))?.text(), 'v1');
    await db!.del('sec.k1');
    assert.equal(await db!.get('sec.k1'), null);
    await db!.put('sec.k2', 'v2');
    const keys: string[] = [];
    for await (const k of db!.keys('sec.')) keys.push(k);
    assert.deepEqual(keys, ['sec.k2']);
    // An application's own inbox prefix (README: one per application keeps replies apart).
    const app = await connect({ servers: nats.url, user: NatsRole.Client, pass: clientPassword, inboxPrefix: '_INBOX.app1' });
    try {
      assert.equal((await app.get('sec.k2'))?.text(), 'v2');
    } finally {
      await app.close();
    }
    const client = await open('client');
    const raw = await client.nc.request('kv.get.sec.k2', '', { timeout: 5000 });
    assert.equal(raw.string(), 'v2', 'a plain NATS client of the client role, as with `nats req`');
    const pong = await client.nc.request('$SRV.PING.goddb', '', { timeout: 5000 });
    assert.equal((pong.json() as { name: string }).name, 'goddb');
    assert.deepEqual(client.violations, []);
  });

  it('security - a client may not publish on god.> (gossip, replica writes): refused, and no node sees it', async () => {
    const node = await open('node');
    const attacker = await open('client');
    const marker = `forged-${newPassword()}`;
    const seen = witness(node, 'god.>', marker);
    await node.nc.flush();
    for (const subject of [`god.${cluster}.gossip`, `god.${cluster}.node.s1.put`, `god.${cluster}.node.s2.get`]) {
      attacker.nc.publish(subject, marker, { reply: `_INBOX.${marker}` });
      await refused(attacker, 'publish', subject);
    }
    await settle(attacker, node);
    assert.equal(seen.length, 0, 'the forged messages reached no subscriber of god.>');
    // The witness would have seen them: the same publish from the node role arrives.
    node.nc.publish(`god.${cluster}.test`, marker);
    await until('the node role\'s own message', () => seen.length === 1);
    assert.deepEqual(node.violations, []);
  });

  it('security - a client may not subscribe to god.>, the nodes\' inboxes, or the kv.> queue group', async () => {
    const attacker = await open('client');
    const got: string[] = [];
    const record = (e: Error | null, m: Msg): void => {
      if (e === null) got.push(m.subject);
    };
    const denied: [string, string | undefined][] = [
      ['god.>', undefined],
      [`god.${cluster}.gossip`, undefined],
      ['_INBOX_GOD.>', undefined],
      ['_INBOX_GOD.s1.>', undefined],
      ['kv.>', `goddb-${cluster}`],
      ['kv.put.>', `goddb-${cluster}`],
      ['kvn.s1.>', undefined],
      ['$SRV.>', undefined],
    ];
    for (const [subject, queue] of denied) {
      attacker.nc.subscribe(subject, { callback: record, ...(queue ? { queue } : {}) });
      await refused(attacker, 'subscription', subject);
    }
    // Gossip and replica traffic (with replies on _INBOX_GOD.<id>) flows meanwhile; none reaches the attacker.
    for (let i = 0; i < 20; i++) {
      await db!.put(`sec.q${i}`, `v${i}`);
      assert.equal((await db!.get(`sec.q${i}`))?.text(), `v${i}`, 'no request was swallowed by a would-be queue member');
    }
    await settle(attacker);
    assert.deepEqual(got, []);
  });

  it('security - replicas answer each other on their private inbox prefix, which only the node role reads', async () => {
    const node = await open('node');
    const replies: string[] = [];
    node.nc.subscribe('_INBOX_GOD.>', {
      callback: (e, m) => {
        if (e === null) replies.push(m.subject);
      },
    });
    await node.nc.flush();
    for (let i = 0; i < 5; i++) await db!.put(`sec.inbox${i}`, 'x');
    await until('a replica reply on _INBOX_GOD', () => replies.length > 0);
    assert.ok(replies.every((s) => ids.some((id) => s.startsWith(`_INBOX_GOD.${id}.`))), replies.slice(0, 5).join(', '));
  });

  it('security - a client may not publish change events; the feed it watches carries only the nodes\' ones', async () => {
    const watcher = await open('client');
    const attacker = await open('client');
    const marker = `forged-${newPassword()}`;
    const events: string[] = [];
    watcher.nc.subscribe('kvchanges.>', {
      callback: (e, m) => {
        if (e === null) events.push(m.string());
      },
    });
    await watcher.nc.flush();
    for (const subject of ['kvchanges.sec.feed', 'kvchanges']) {
      attacker.nc.publish(subject, marker);
      await refused(attacker, 'publish', subject);
    }
    await settle(attacker, watcher);
    assert.ok(!events.some((e) => e.includes(marker)), 'no forged event reached the watcher');
    await db!.put('sec.feed', marker);
    await until('the real change event', () => events.includes(marker));
    assert.equal(events.length, 1, 'the watcher saw the real event only');
  });

  it('security - the node role may use god.>, the node inboxes, the kv.> queue group and the change feed', async () => {
    const node = await open('node');
    const watcher = await open('client');
    const marker = `node-${newPassword()}`;
    const god = witness(node, `god.${cluster}.selftest.>`, marker);
    const inbox = witness(node, '_INBOX_GOD.test.>', marker);
    const feed = witness(watcher, 'kvchanges.sec.selftest', marker);
    await settle(node, watcher);
    node.nc.publish(`god.${cluster}.selftest.x`, marker);
    node.nc.publish('_INBOX_GOD.test.x', marker);
    node.nc.publish('kvchanges.sec.selftest', marker);
    await until('the node role\'s messages', () => god.length === 1 && inbox.length === 1 && feed.length === 1);
    // Joining the client API's queue group (and leaving it at once: it would take requests).
    node.nc.subscribe('kv.>', { queue: `goddb-${cluster}`, max: 0, callback: () => undefined }).unsubscribe();
    // Answering a client: kvn.<id>.> of an id no worker has, so this subscriber is the only one.
    node.nc.subscribe('kvn.selftest.>', {
      callback: (e, m) => {
        if (e === null) m.respond('ok');
      },
    });
    await node.nc.flush();
    const client = await open('client');
    assert.equal((await client.nc.request('kvn.selftest.get.x', '', { timeout: 5000 })).string(), 'ok', 'the node role answers a client on its inbox');
    await settle(node);
    assert.deepEqual(node.violations, []);
    const workerErrors = workers.flatMap((w) => w.logs.filter((l) => /Permissions Violation/i.test(l)));
    assert.deepEqual(workerErrors, [], 'the workers needed nothing their role lacks');
    assert.deepEqual(client.violations, []);
  });
});
