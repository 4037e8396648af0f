/**
 * Keys held per node, end to end: three real workers (memory engine, N=3),
 * 30 keys written with W=3, then `goddb status --json`, /metrics and the
 * $SRV.INFO metadata each say what the node holds and where it sits.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect, type GodDbClient } from '../../src/client/index.js';
import { collect, rawConnect } from '../helpers/nats_raw.js';
import { startWireCluster, type WireCluster } from '../helpers/wire_cluster.js';
import { cliPath, runScript } from '../helpers/workers.js';

const ids = ['s1', 's2', 's3'];
const keyTotal = 30;
/** Status polls stop here; the nodes re-read their count every second. */
const pollDeadlineMs = 30_000;

interface StatusJson {
  members: { id: string; keys: number | null }[];
}

async function statusKeys(url: string): Promise<Record<string, number | null>> {
  const run = await runScript(cliPath, ['status', '--json', '--servers', url], '', 30_000);
  assert.equal(run.code, 0, run.stderr);
  const status = JSON.parse(run.stdout) as StatusJson;
  return Object.fromEntries(status.members.map((m) => [m.id, m.keys]));
}

async function metricsText(httpPort: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
}

describe('keys held per node', () => {
  let cluster: WireCluster;
  let nc: NatsConnection;
  let db: GodDbClient;

  before(async () => {
    cluster = await startWireCluster('keycount', ids, 'memory');
    nc = await rawConnect(cluster.nats.url);
    db = await connect({ servers: cluster.nats.url });
  });

  after(async () => {
    await db?.close();
    await nc?.close();
    await cluster?.stop();
  });

  it('keys - after 30 writes with W=3, status, /metrics and $SRV.INFO show 30 keys and the ring position on every node', async () => {
    for (let i = 0; i < keyTotal; i++) await db.put(`count.${i}`, `v${i}`, { w: 3 });

    const everyNode = Object.fromEntries(ids.map((id) => [id, keyTotal]));
    const deadline = Date.now() + pollDeadlineMs;
    let seen = await statusKeys(cluster.nats.url);
    // Each poll is a whole CLI run; the count a node reports is at most a second old.
    while (JSON.stringify(seen) !== JSON.stringify(everyNode) && Date.now() < deadline) seen = await statusKeys(cluster.nats.url);
    assert.deepEqual(seen, everyNode, 'goddb status --json keys per node');

    const table = await runScript(cliPath, ['status', '--servers', cluster.nats.url], '', 30_000);
    assert.equal(table.code, 0, table.stderr);
    const [header, ...rows] = table.stdout.trim().split('\n').map((l) => l.split(/\s+/));
    const keysColumn = header!.indexOf('keys');
    assert.ok(keysColumn >= 0, table.stdout);
    assert.deepEqual(rows.map((r) => r[keysColumn]), ids.map(() => String(keyTotal)));

    for (const w of cluster.workers) {
      const text = await metricsText(w.httpPort);
      for (const [name, value] of [['goddb_keys', keyTotal], ['goddb_ring_members', 3], ['goddb_ring_owned_ratio', 1]] as const) {
        assert.match(text, new RegExp(`^${name}\\{[^}]*\\} ${value}$`, 'm'), `${w.id}: ${name} ${value}`);
      }
    }

    const infos = (await collect(nc, '$SRV.INFO.goddb')) as { metadata: Record<string, string> }[];
    assert.deepEqual(infos.map((i) => i.metadata['node_id']).sort(), ids);
    for (const info of infos) {
      assert.equal(info.metadata['replication'], '3', `${info.metadata['node_id']} replication`);
      assert.match(info.metadata['virtual_nodes'] ?? '', /^[1-9]\d*$/, `${info.metadata['node_id']} virtual_nodes`);
    }
  });
});
