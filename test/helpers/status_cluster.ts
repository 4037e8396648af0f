/**
 * What the `goddb status` tests share: three memory workers (startWireCluster)
 * with a raw NATS connection and an SDK client, started before the suite's
 * tests and stopped after them, and `goddb status` run against them.
 */
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect, type GodDbClient } from '../../src/client/index.js';
import { rawConnect } from './nats_raw.js';
import { startWireCluster, type WireCluster } from './wire_cluster.js';
import { cliPath, runScript } from './workers.js';

export interface StatusCluster {
  cluster: WireCluster;
  nc: NatsConnection;
  db: GodDbClient;
}

/**
 * Registers before/after hooks in the calling describe(); the fields of the
 * object it returns are set once the before hook has run.
 */
export function useStatusCluster(name: string, ids: string[]): StatusCluster {
  const s = {} as Partial<StatusCluster>;
  before(async () => {
    s.cluster = await startWireCluster(name, ids, 'memory');
    s.nc = await rawConnect(s.cluster.nats.url);
    s.db = await connect({ servers: s.cluster.nats.url });
  });
  after(async () => {
    await s.db?.close();
    await s.nc?.close();
    await s.cluster?.stop();
  });
  return s as StatusCluster;
}

/** `goddb status [...flags] --servers <url>`, asserted to exit 0; its stdout. */
export async function goddbStatus(url: string, ...flags: string[]): Promise<string> {
  const run = await runScript(cliPath, ['status', ...flags, '--servers', url], '', 30_000);
  assert.equal(run.code, 0, run.stderr);
  return run.stdout;
}

/** The `goddb status` table, split into its header and one row per member (whitespace-separated cells). */
export async function goddbStatusTable(url: string): Promise<{ stdout: string; header: string[]; rows: string[][] }> {
  const stdout = await goddbStatus(url);
  const [header, ...rows] = stdout.trim().split('\n').map((l) => l.split(/\s+/));
  return { stdout, header: header ?? [], rows };
}
