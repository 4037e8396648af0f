/**
 * Backups of a node's data directory (`goddb backup`, `goddb restore`), made
 * on the node's machine, beside the running worker (no request to it): LMDB
 * lets any number of processes read an environment while one writes, and its
 * copy (mdb_env_copy2, lmdb-js `backup()`) runs in one read transaction, so
 * each store is copied as of one commit while the node goes on serving.
 * Nothing travels over NATS and no remote caller names a path to write.
 *
 * A backup is a data directory of its own:
 *
 *   node.json        the node's identity (same id, same cluster)
 *   meta/            membership state, tokens, clock high-water mark
 *   lmdb/ hints/ paxos/   the three LMDB stores, each a consistent snapshot
 *   backup.json      written last: the backup is whole when it is there
 *
 * The three stores are copied one after another, so they are not one
 * snapshot together; nothing needs them to be: a restored node is a replica
 * that was down since the backup, and anti-entropy, read repair and the
 * other nodes' hints bring it up to date.
 */
import { closeSync, cpSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { open } from 'lmdb';
import { BadRequestError } from '../../core/errors.js';
import { goddbVersion } from '../../version.js';
import { identityFile, lockDataDir, readIdentity } from '../membership/identity.js';
import { Namespace } from '../namespace_engine.js';

/** The LMDB stores of a data directory by namespace (node.ts, namespace_engine.ts). */
export const storeDirs = { data: 'lmdb', hints: Namespace.Hints.dir, paxos: Namespace.Paxos.dir } as const;
const metaDir = 'meta';
export const backupManifestFile = 'backup.json';
const manifestFormat = 1;

export interface BackupManifest {
  format: number;
  nodeId: string;
  cluster: string;
  takenAt: string;
  version: string;
  /** Bytes of each store's copy. */
  stores: Record<string, number>;
}

/** Bytes on disk (allocated blocks) of each LMDB store of `dataDir` that exists: for /metrics. */
export async function storeBytes(dataDir: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [namespace, dir] of Object.entries(storeDirs)) {
    let files: string[];
    try {
      files = await readdir(join(dataDir, dir));
    } catch {
      continue;
    }
    let bytes = 0;
    for (const f of files) {
      const s = await stat(join(dataDir, dir, f)).catch(() => undefined);
      if (s?.isFile()) bytes += s.blocks * 512;
    }
    out[namespace] = bytes;
  }
  return out;
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function isLmdbStore(dir: string): boolean {
  return existsSync(join(dir, 'data.mdb'));
}

/**
 * Copies the data directory `dataDir` (its worker running or not) into the
 * new directory `target`. Refuses a target that exists and is not empty, and
 * a data directory without an identity or an LMDB key space (the memory and
 * Redis engines: back Redis up with its own tools).
 */
export async function backupDataDir(dataDir: string, target: string, opts: { compact?: boolean; now?: () => Date } = {}): Promise<BackupManifest> {
  const identity = readIdentity(dataDir);
  if (identity === undefined) throw new BadRequestError(`${dataDir} holds no node identity (${identityFile}): not a GoD-DB data directory`);
  if (!isLmdbStore(join(dataDir, storeDirs.data))) throw new BadRequestError(`${dataDir} has no LMDB store (${storeDirs.data}/data.mdb): goddb backup copies the lmdb engine only`);
  if (existsSync(target) && readdirSync(target).length > 0) throw new BadRequestError(`${target} exists and is not empty: a backup goes in a new directory`);
  mkdirSync(target, { recursive: true });
  // Identity and meta first: a store copied later is newer than them, never older than the membership state.
  cpSync(join(dataDir, identityFile), join(target, identityFile));
  if (existsSync(join(dataDir, metaDir))) cpSync(join(dataDir, metaDir), join(target, metaDir), { recursive: true, filter: (src) => !src.endsWith('.tmp') });
  const stores: Record<string, number> = {};
  for (const [namespace, dir] of Object.entries(storeDirs)) {
    const from = join(dataDir, dir);
    if (!isLmdbStore(from)) continue;
    const to = join(target, dir);
    mkdirSync(to, { recursive: true });
    // Read-only: this process takes a reader slot in the store's lock file, and never writes to it.
    const env = open({ path: from, readOnly: true });
    try {
      await env.backup(to, opts.compact ?? false);
    } finally {
      await env.close();
    }
    fsyncPath(join(to, 'data.mdb'));
    stores[namespace] = statSync(join(to, 'data.mdb')).size;
  }
  const manifest: BackupManifest = {
    format: manifestFormat,
    nodeId: identity.nodeId,
    cluster: identity.cluster,
    takenAt: (opts.now ?? (() => new Date()))().toISOString(),
    version: goddbVersion,
    stores,
  };
  const tmp = join(target, `${backupManifestFile}.tmp`);
  writeFileSync(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
  fsyncPath(tmp);
  renameSync(tmp, join(target, backupManifestFile));
  fsyncPath(target);
  return manifest;
}

export function readBackupManifest(backup: string): BackupManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(join(backup, backupManifestFile), 'utf8'));
  } catch (err) {
    throw new BadRequestError(`${backup} is not a whole GoD-DB backup (${backupManifestFile}: ${(err as Error).message})`);
  }
  const m = raw as Partial<BackupManifest>;
  if (m.format !== manifestFormat || typeof m.nodeId !== 'string' || typeof m.cluster !== 'string' || typeof m.takenAt !== 'string') {
    throw new BadRequestError(`${join(backup, backupManifestFile)} is not a GoD-DB backup manifest (format ${manifestFormat})`);
  }
  return m as BackupManifest;
}

/**
 * Replaces the stores, identity and meta of `dataDir` with the backup's.
 * The worker must be stopped: refused while another process holds the data
 * directory's lock. Refused too when `dataDir` belongs to another node.
 */
export function restoreDataDir(backup: string, dataDir: string, pid = process.pid): BackupManifest {
  const manifest = readBackupManifest(backup);
  const lock = lockDataDir(dataDir, pid);
  try {
    const current = readIdentity(dataDir);
    if (current !== undefined && (current.nodeId !== manifest.nodeId || current.cluster !== manifest.cluster)) {
      throw new BadRequestError(`${dataDir} belongs to node ${current.nodeId} of cluster ${current.cluster}, the backup to node ${manifest.nodeId} of cluster ${manifest.cluster}`);
    }
    for (const name of [...Object.values(storeDirs), metaDir, identityFile]) rmSync(join(dataDir, name), { recursive: true, force: true });
    for (const name of [...Object.values(storeDirs), metaDir, identityFile]) {
      if (existsSync(join(backup, name))) cpSync(join(backup, name), join(dataDir, name), { recursive: true });
    }
    for (const dir of Object.values(storeDirs)) if (isLmdbStore(join(dataDir, dir))) fsyncPath(join(dataDir, dir, 'data.mdb'));
    fsyncPath(dataDir);
    return manifest;
  } finally {
    lock.release();
  }
}
