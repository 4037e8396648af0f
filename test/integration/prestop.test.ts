/**
 * `goddb prestop`, the preStop hook of deploy/kubernetes/goddb.yaml: it asks
 * the Kubernetes API (here a stand-in HTTP server) for the StatefulSet's
 * replicas, as the pod's service account, and leaves only when the pod is
 * scaled away; a restart, an API it cannot read or a name that is not a
 * StatefulSet pod's never leaves.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { freePort } from '../../src/devtools/servers.js';
import { cliPath, runScript } from '../helpers/workers.js';

describe('prestop - goddb prestop leaves only when the StatefulSet is scaled below the pod', () => {
  it('prestop - a pod within the replicas stops without leaving; one past them leaves; an unreadable API or a bad name never leaves', async () => {
    let replicas: number | undefined = 3;
    const asked: string[] = [];
    const api = createServer((req: IncomingMessage, res) => {
      asked.push(req.url ?? '');
      if (req.url !== '/apis/apps/v1/namespaces/prod/statefulsets/goddb' || replicas === undefined) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"kind":"Status","code":404}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'StatefulSet', metadata: { name: 'goddb' }, spec: { replicas } }));
    });
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
    // No NATS listens here: a pod that leaves gets as far as connecting, and says so.
    const nowhere = `nats://127.0.0.1:${await freePort()}`;
    const prestop = (pod: string) => runScript(cliPath, ['prestop', '--pod', pod, '--api', url, '--namespace', 'prod', '--servers', nowhere, '--timeout', '5s'], '', 60_000);
    try {
      const stays = await prestop('goddb-2');
      assert.equal(stays.code, 0, stays.stderr);
      assert.match(stays.stderr, /goddb-2 stays \(ordinal 2 < 3 replicas\)/);
      assert.deepEqual(asked, ['/apis/apps/v1/namespaces/prod/statefulsets/goddb']);

      replicas = 2;
      const leaves = await prestop('goddb-2');
      assert.match(leaves.stderr, /goddb-2 is scaled away \(ordinal 2 >= 2 replicas\): leaving the cluster/);
      assert.equal(leaves.code, 3, `it asked NATS for the leave, and could not reach it: ${leaves.stderr}`);
      assert.match(leaves.stderr, /could not connect to NATS/);

      replicas = undefined;
      const unreadable = await prestop('goddb-0');
      assert.equal(unreadable.code, 1);
      assert.match(unreadable.stderr, /cannot read StatefulSet prod\/goddb: .*HTTP 404.*not leaving/);
      assert.doesNotMatch(unreadable.stderr, /NATS/);

      const badName = await prestop('worker');
      assert.equal(badName.code, 1);
      assert.match(badName.stderr, /not a StatefulSet pod name/);
    } finally {
      await new Promise<void>((resolve) => api.close(() => resolve()));
    }
  });
});
