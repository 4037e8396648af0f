/**
 * Issue 9, the operator surface against a real node: how `goddb leave` and
 * `goddb remove` fail before any range moves (a bad node id, a bad
 * --timeout, a missing argument), and what a node answers to one with
 * --no-wait. Leave and remove themselves are tested with the node side.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startWireCluster, type WireCluster } from '../helpers/wire_cluster.js';
import { cliPath, runScript } from '../helpers/workers.js';

describe('goddb leave and remove against a node', () => {
  let cluster: WireCluster;
  before(async () => {
    cluster = await startWireCluster('leavecli', ['m1'], 'memory');
  });
  after(async () => {
    await cluster?.stop();
  });
  const goddb = (...args: string[]) => runScript(cliPath, [...args, '--servers', cluster.nats.url], '', 30_000);

  it('cli - a node id that is not one is refused before anything is sent: error 400, exit 1', async () => {
    for (const cmd of ['leave', 'remove']) {
      const run = await goddb(cmd, 'a.b', '--no-wait');
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /^error 400: not a node id: "a\.b"/);
      assert.equal(run.stdout, '');
    }
  });

  it('cli - a --timeout that is no duration is error 400, exit 1; a missing node id is a usage error, exit 2', async () => {
    const bad = await goddb('leave', 'm1', '--timeout', 'soon');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error 400: --timeout must be a positive duration/);
    const usage = await runScript(cliPath, ['remove'], '', 30_000);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /missing required argument 'node-id'/);
  });

  it('cli - the node answers a leave of an unknown member with an error line and exit 1 (503 while it has no membership hooks, 404 with them)', async () => {
    const run = await goddb('leave', 'ghost', '--no-wait');
    assert.equal(run.code, 1, run.stdout);
    assert.match(run.stderr, /^error (503: node m1 cannot change membership: leave is not available on it|404: .+)\n$/);
    assert.equal(run.stdout, '');
  });
});
