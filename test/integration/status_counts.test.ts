/**
 * Issue 14, item 6: `goddb status` and each node's /metrics show the same
 * request counts (one source: the node's goddb_requests_total), sorted into
 * not found (404, a normal answer), refused (other 4xx) and errors (5xx);
 * `nats micro stats` reports the 5xx as the endpoint's num_errors.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { summarizeRequests, type RequestCounts } from '../../src/client/index.js';
import { statusColumns } from '../../src/cli/one_shot.js';
import { collect, rawRequest } from '../helpers/nats_raw.js';
import { goddbStatusTable, useStatusCluster } from '../helpers/status_cluster.js';

const ids = ['s1', 's2', 's3'];

/** goddb_requests_total of one node's /metrics, by op and code. */
async function metricsCounts(httpPort: number): Promise<RequestCounts> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const counts: RequestCounts = {};
  for (const m of text.matchAll(/^goddb_requests_total\{([^}]*)\} (\d+)$/gm)) {
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    (counts[labels['op']!] ??= {})[labels['code']!] = Number(m[2]);
  }
  return counts;
}

describe('goddb status counts what /metrics counts', () => {
  const s = useStatusCluster('status', ids);

  it('status - gets, puts, dels, 404s, other 4xx and 5xx per node are the node\'s own counts', async () => {
    const { cluster, nc, db } = s;
    // One node goes first, so that every request below is counted by a node that answers status.
    await cluster.workers[2]!.kill('SIGKILL');
    let answering = await db.nodes({ waitMs: 100 });
    for (let i = 0; i < 50 && answering.length > 2; i++) answering = await db.nodes({ waitMs: 100 });
    assert.equal(answering.length, 2, 'only the two live nodes answer before the requests are sent');
    await db.put('k', 'v');
    await db.get('k');
    for (const key of ['never.1', 'never.2', 'never.3']) assert.equal(await db.get(key), null);
    await db.del('k');
    assert.equal((await rawRequest(nc, 'kv.foo.x')).code, 400);
    assert.equal((await rawRequest(nc, 'kv.get.k', '', { 'KV-R': 'many' })).code, 400);
    // A 5xx: with one node gone, a write that needs all three replicas fails (503, or 504 at the deadline).
    const failed = await rawRequest(nc, 'kv.put.all3', 'v', { 'KV-W': '3' });
    assert.ok(failed.code === 503 || failed.code === 504, `${failed.code} ${failed.message}`);

    const { header, rows: members } = await goddbStatusTable(cluster.nats.url);
    assert.deepEqual(header, [...statusColumns]);
    // The killed node is still a member of the ring: it has a row, with '-' for what only it could say.
    assert.deepEqual(members.map((r) => r[0]), ids);
    assert.deepEqual(members[2]!.slice(2, 10), Array(8).fill('-'));
    const rows = members.slice(0, 2);
    const total = { notFound: 0, refused: 0, errors: 0 };
    for (const row of rows) {
      const worker = cluster.workers.find((w) => w.id === row[0])!;
      const s = summarizeRequests(await metricsCounts(worker.httpPort));
      const fromMetrics = [s.byOp['get'] ?? 0, s.byOp['put'] ?? 0, s.byOp['del'] ?? 0, s.notFound, s.refused, s.errors].map(String);
      assert.deepEqual(row.slice(4, 10), fromMetrics, `node ${row[0]}: status and /metrics agree`);
      total.notFound += s.notFound;
      total.refused += s.refused;
      total.errors += s.errors;
    }
    assert.deepEqual(total, { notFound: 3, refused: 2, errors: 1 });

    const stats = (await collect(nc, '$SRV.STATS.goddb')) as { metadata: Record<string, string>; endpoints: { name: string; num_errors: number }[] }[];
    // Both live nodes answer (the loop below asserts nothing if none does).
    assert.deepEqual(stats.map((st) => st.metadata['node_id']).sort(), ids.slice(0, 2));
    for (const st of stats) {
      const worker = cluster.workers.find((w) => w.id === st.metadata['node_id'])!;
      const errors = summarizeRequests(await metricsCounts(worker.httpPort)).errors;
      assert.equal(st.endpoints.find((e) => e.name === 'kv')?.num_errors, errors, `nats micro stats of ${worker.id} shows its 5xx`);
    }
  });
});
