/**
 * Key listing (issue 12 item 4) on a simulated cluster: listings through
 * `kv.keys` match the live keys exactly while a node restarts on its stale
 * disk, over a lossy bus (a page that fails is asked again with the same
 * cursor), and while a wiped node pulls its ranges back (it answers no
 * listing then; the other replicas do).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientOp } from '../../src/protocol/subjects.js';
import { decodeKeysPage } from '../../src/protocol/keys_page.js';
import { replyError } from '../../src/transport/transport.js';
import { SimCluster, simSeed, type SimClient } from '../helpers/sim_cluster.js';

const ids = ['n1', 'n2', 'n3'];

/** Every page of a listing; a page that fails or times out is asked again with the same cursor. */
async function listAll(client: SimClient, headers: Record<string, string> = {}): Promise<{ keys: string[]; retries: number }> {
  const keys: string[] = [];
  let cursor: string | undefined;
  let retries = 0;
  for (;;) {
    assert.ok(retries < 200, 'a listing that keeps failing');
    let reply;
    try {
      // A lost page costs its timeout: short, so many losses fit in the simulated minute a run allows.
      reply = await client.transport.request('kv.keys', new Uint8Array(0), { timeoutMs: 3_000, headers: { ...headers, ...(cursor === undefined ? {} : { 'KV-Keys-After': cursor }) } });
    } catch {
      retries++;
      continue;
    }
    if (replyError(reply) !== undefined) {
      retries++;
      continue;
    }
    keys.push(...decodeKeysPage(reply.data, reply.header('KV-Keys-Encoding')));
    cursor = reply.header('KV-Keys-After');
    if (cursor === undefined) {
      assert.equal(Number(reply.header('KV-Keys-Done')), keys.length);
      return { keys, retries };
    }
  }
}

function assertExactly(keys: readonly string[], live: ReadonlySet<string>, what: string): void {
  assert.equal(keys.length, new Set(keys).size, `${what}: no key twice`);
  assert.deepEqual([...keys].sort(), [...live].sort(), what);
}

describe('key listing (simulated)', () => {
  it('keys - listings match the live keys exactly through a stale restart, a lossy bus and a wiped node', async () => {
    const c = new SimCluster(simSeed(), ids);
    await c.start();
    const client = c.connectClient('lister', 10_000);
    const live = new Set<string>();
    const put = async (key: string, headers: Record<string, string> = {}) => assert.equal((await c.request(ClientOp.Put, key, `v-${key}`, headers)).code, 200, key);
    const del = async (key: string) => assert.equal((await c.request(ClientOp.Del, key)).code, 200, key);
    for (let i = 0; i < 120; i++) {
      await put(`k.${i}`);
      live.add(`k.${i}`);
    }
    for (let i = 0; i < 120; i += 5) {
      await del(`k.${i}`);
      live.delete(`k.${i}`);
    }
    for (let i = 0; i < 10; i++) await put(`ttl.${i}`, { 'KV-TTL': '1' });
    await c.clock.advance(2_000);
    assertExactly((await c.clock.run(listAll(client))).keys, live, 'at rest');

    // n3 misses writes and deletes, then comes back on its old disk while listings run.
    await c.crash('n3');
    await c.clock.advance(5_000);
    for (let i = 0; i < 20; i++) {
      await put(`late.${i}`);
      live.add(`late.${i}`);
    }
    for (let i = 1; i < 120; i += 10) {
      await del(`k.${i}`);
      live.delete(`k.${i}`);
    }
    const restarting = c.restart('n3', { wipe: false });
    assertExactly((await c.clock.run(listAll(client, { 'KV-Keys-Limit': '25' }))).keys, live, 'during the restart');
    await c.clock.run(restarting);
    assertExactly((await c.clock.run(listAll(client, { 'KV-Keys-Limit': '25' }))).keys, live, 'after the restart, before any repair');

    // A lossy bus: pages fail now and then, and are asked again from the same cursor.
    c.bus.dropRate = 0.05;
    const lossy = await c.clock.run(listAll(client, { 'KV-Keys-Limit': '10' }));
    c.bus.dropRate = 0;
    assertExactly(lossy.keys, live, 'over a lossy bus');

    // n2 back on an empty disk: it pulls its ranges and answers no listing until they are in.
    const wiped = c.restart('n2', { wipe: true });
    assertExactly((await c.clock.run(listAll(client))).keys, live, 'while n2 comes back wiped');
    await c.clock.run(wiped);
    assertExactly((await c.clock.run(listAll(client))).keys, live, 'once n2 is back');
    await c.stop();
  });
});
