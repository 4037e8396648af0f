/**
 * The SDK and the goddb CLI against three real worker processes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, BadRequestError, QuorumNotMetError, type GodDbClient } from '../../src/client/index.js';
import { startNatsServer, type NatsServerHandle } from '../../src/devtools/servers.js';
import { cliPath, runScript, startWorker, type Worker } from '../helpers/workers.js';

const ids = ['c1', 'c2', 'c3'];

function goddb(args: string[], stdin = '') {
  return runScript(cliPath, args, stdin, 30_000);
}

describe('clients: SDK and CLI', () => {
  let nats: NatsServerHandle;
  let workers: Worker[] = [];
  let db: GodDbClient;

  before(async () => {
    nats = await startNatsServer();
    workers = await Promise.all(ids.map((id) => startWorker(id, ['--cluster', 'clients', '-peers', ids.join(','), '-discovery', nats.url, '--engine', 'memory'])));
    db = await connect({ servers: nats.url });
  });

  after(async () => {
    await db?.close();
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    await nats?.stop();
  });

  it('sdk - put, get, delete and a missing key', async () => {
    const put = await db.put('sdk.k', 'one');
    assert.match(put.acks, /^[23]\/3$/);
    const got = await db.get('sdk.k');
    assert.equal(got?.text(), 'one');
    assert.equal(got?.siblings, 1);
    await db.del('sdk.k');
    assert.equal(await db.get('sdk.k'), null);
    assert.equal(await db.get('sdk.never'), null);
  });

  it('sdk - a write with the context of a read supersedes what was read', async () => {
    await db.put('ctx', 'a');
    const first = await db.get('ctx', { r: 3 });
    await db.put('ctx', 'b', { context: first!.context, w: 3 });
    const second = await db.get('ctx', { r: 3 });
    assert.equal(second?.text(), 'b');
    assert.notEqual(second!.context, first!.context, 'the context moved on');
  });

  it('sdk - bad requests are typed errors', async () => {
    await assert.rejects(db.get(''), BadRequestError);
    await assert.rejects(db.put('x', 'v', { context: 'not-a-context!' }), BadRequestError);
    await assert.rejects(db.get('x', { r: 7 }), BadRequestError);
  });

  it('sdk - bytes come back byte for byte', async () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    await db.put('binary', bytes);
    assert.deepEqual([...(await db.get('binary'))!.value], [...bytes]);
  });

  it('cli - one-shot put, get and del with exit codes', async () => {
    const put = await goddb(['put', 'cli.key', 'cli value', '--servers', nats.url]);
    assert.equal(put.code, 0, put.stderr);
    const get = await goddb(['get', 'cli.key', '--servers', nats.url]);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(get.stdout, 'cli value');
    assert.equal((await goddb(['del', 'cli.key', '--servers', nats.url])).code, 0);
    const missing = await goddb(['get', 'cli.key', '--servers', nats.url]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /error 404/);
  });

  it('cli - the client shell reads commands from a pipe', async () => {
    const run = await goddb(['client', '--servers', nats.url], 'put shell.k hello there\nget shell.k\ndel shell.k\nget shell.k\nquit\n');
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.stdout.trim().split('\n').slice(-4), ['OK', 'hello there', 'OK', '(not found)']);
  });

  it('cli - a failing command in a piped shell makes the exit code non-zero', async () => {
    const run = await goddb(['client', '--servers', nats.url], 'get\nput a\n');
    assert.equal(run.code, 1);
  });

  it('sdk - nodes() lists every node with the requests it coordinated', async () => {
    const nodes = await db.nodes();
    assert.deepEqual(nodes.map((n) => n.nodeId), ids);
    assert.ok(nodes.every((n) => n.cluster === 'clients' && n.version !== '?'));
    const puts = nodes.reduce((s, n) => s + Object.values(n.requests['put'] ?? {}).reduce((a, b) => a + b, 0), 0);
    assert.ok(puts >= 4, `the puts of the tests above were counted (${puts})`);
  });

  it('cli - status prints one line per node and exits 0', async () => {
    const run = await goddb(['status', '--servers', nats.url]);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trim().split('\n');
    assert.match(lines[0]!, /^id\s+cluster\s+version/);
    assert.deepEqual(lines.slice(1).map((l) => l.split(/\s+/)[0]), ids);
  });

  it('sdk - with too few nodes the error says how many replicas answered', async () => {
    await workers[1]!.kill('SIGKILL');
    await workers[2]!.kill('SIGKILL');
    // The server drops a dead process's queue subscriptions when it sees the socket close: wait
    // for that, or the request could be routed to a dead node and time out instead.
    for (let i = 0; i < 50 && (await db.nodes({ waitMs: 100 })).length > 1; i++);
    const err = await db.put('lonely', 'v').then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof QuorumNotMetError, String(err));
    assert.match((err as Error).message, /1 of 3 replicas|of 3 replicas up/);
  });

  it('cli - status exits 1 when no node answers', async () => {
    await workers[0]!.kill('SIGKILL');
    const none = await goddb(['status', '--servers', nats.url, '--wait', '200']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no GoD-DB node answered within 200ms/);
  });
});
