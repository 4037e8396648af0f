/**
 * Keys held per node, end to end: three real workers (memory engine, N=3),
 * 30 keys written with W=3, then `goddb status --json`, /metrics and the
 * $SRV.INFO metadata each say what the node holds and where it sits.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { collect } from '../helpers/nats_raw.js';
import { goddbStatus, goddbStatusTable, useStatusCluster } from '../helpers/status_cluster.js';

const ids = ['s1', 's2', 's3'];
const keyTotal = 30;
/** Status polls stop here; the nodes re-read their count every second. */
const pollDeadlineMs = 30_000;

interface StatusJson {
  members: { id: string; keys: number | null }[];
}

async function statusKeys(url: string): Promise<Record<string, number | null>> {
  const status = JSON.parse(await goddbStatus(url, '--json')) as StatusJson;
  return Object.fromEntries(status.members.map((m) => [m.id, m.keys]));
}

async function metricsText(httpPort: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
}

describe('keys held per node', () => {
  const s = useStatusCluster('keycount', ids);

  it('keys - after 30 writes with W=3, status, /metrics and $SRV.INFO show 30 keys and the ring position on every node', async () => {
    const { cluster, nc, db } = s;
    for (let i = 0; i < keyTotal; i++) await db.put(`count.${i}`, `v${i}`, { w: 3 });

    const everyNode = Object.fromEntries(ids.map((id) => [id, keyTotal]));
    const deadline = Date.now() + pollDeadlineMs;
    let seen = await statusKeys(cluster.nats.url);
    // Each poll is a whole CLI run; the count a node reports is at most a second old.
    while (JSON.stringify(seen) !== JSON.stringify(everyNode) && Date.now() < deadline) seen = await statusKeys(cluster.nats.url);
    assert.deepEqual(seen, everyNode, 'goddb status --json keys per node');

    const { stdout, header, rows } = await goddbStatusTable(cluster.nats.url);
    const keysColumn = header.indexOf('keys');
    assert.ok(keysColumn >= 0, stdout);
    assert.deepEqual(rows.map((r) => r[keysColumn]), ids.map(() => String(keyTotal)));

    for (const w of cluster.workers) {
      const text = await metricsText(w.httpPort);
      for (const [name, value] of [['goddb_keys', keyTotal], ['goddb_ring_members', 3], ['goddb_ring_owned_ratio', 1]] as const) {
        assert.match(text, new RegExp(`^${name}\\{[^}]*\\} ${value}$`, 'm'), `${w.id}: ${name} ${value}`);
      }
    }

    const infos = (await collect(nc, '$SRV.INFO.goddb', 10_000, ids.length)) as { metadata: Record<string, string> }[];
    assert.deepEqual(infos.map((i) => i.metadata['node_id']).sort(), ids);
    for (const info of infos) {
      assert.equal(info.metadata['replication'], '3', `${info.metadata['node_id']} replication`);
      assert.match(info.metadata['virtual_nodes'] ?? '', /^[1-9]\d*$/, `${info.metadata['node_id']} virtual_nodes`);
    }
  });
});
