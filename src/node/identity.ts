/**
 * A node's identity is durable: its id and vnode count live in
 * `<dataDir>/node.json`, so a restarted node comes back with the same id and
 * the same tokens and the ring does not move. The file is written once,
 * atomically (write, fsync, rename), before the node first serves.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BadRequestError } from '../core/errors.js';
import { isValidToken } from '../protocol/subjects.js';

export interface Identity {
  nodeId: string;
  virtualNodes: number;
  cluster: string;
  createdAt: string;
}

export const identityFile = 'node.json';

export function generateNodeId(): string {
  return `n-${randomBytes(4).toString('hex')}`;
}
const formatVersion = 1;

export interface IdentityRequest {
  /** '' when not given: taken from the file, or generated. */
  nodeId: string;
  virtualNodes: number;
  cluster: string;
  generateId(): string;
}

export interface IdentityOutcome {
  identity: Identity;
  created: boolean;
  /** Set when the configured vnode count differs from the stored one (the stored one wins). */
  virtualNodesIgnored?: number;
}

/** Reads the identity in `dataDir`, or creates it; refuses a directory that belongs to another node or cluster. */
export function loadOrCreateIdentity(dataDir: string, req: IdentityRequest, nowIso: string): IdentityOutcome {
  const stored = readIdentity(dataDir);
  if (stored) {
    if (req.nodeId !== '' && req.nodeId !== stored.nodeId) {
      throw new BadRequestError(`data directory ${dataDir} belongs to node ${stored.nodeId}, not ${req.nodeId}`);
    }
    if (req.cluster !== stored.cluster) {
      throw new BadRequestError(`data directory ${dataDir} belongs to cluster ${stored.cluster}, not ${req.cluster}`);
    }
    const outcome: IdentityOutcome = { identity: stored, created: false };
    if (req.virtualNodes !== stored.virtualNodes) outcome.virtualNodesIgnored = req.virtualNodes;
    return outcome;
  }
  const identity: Identity = { nodeId: req.nodeId || req.generateId(), virtualNodes: req.virtualNodes, cluster: req.cluster, createdAt: nowIso };
  writeIdentity(dataDir, identity);
  return { identity, created: true };
}

export function readIdentity(dataDir: string): Identity | undefined {
  let text: string;
  try {
    text = readFileSync(join(dataDir, identityFile), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const raw = JSON.parse(text) as Record<string, unknown>;
  const { nodeId, virtualNodes, cluster, createdAt, format } = raw;
  if (format !== formatVersion || typeof nodeId !== 'string' || !isValidToken(nodeId) || typeof cluster !== 'string'
    || typeof virtualNodes !== 'number' || !Number.isInteger(virtualNodes) || virtualNodes < 1 || typeof createdAt !== 'string') {
    throw new BadRequestError(`${join(dataDir, identityFile)} is not a GoD-DB identity file (format ${formatVersion})`);
  }
  return { nodeId, virtualNodes, cluster, createdAt };
}

function writeIdentity(dataDir: string, identity: Identity): void {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, identityFile);
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, `${JSON.stringify({ format: formatVersion, ...identity }, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dir = openSync(dataDir, 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

export const lockFile = 'LOCK';

/**
 * Claims the data directory for this process: two workers on one directory
 * would share an id and an LMDB environment. The lock file holds the owner's
 * pid; a lock whose process is gone (a crash, SIGKILL) is taken over.
 */
export function lockDataDir(dataDir: string, pid: number): { release(): void } {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, lockFile);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, `${pid}\n`);
      closeSync(fd);
      return { release: () => rmSync(path, { force: true }) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(owner) && owner > 0 && owner !== pid && isAlive(owner)) {
        throw new BadRequestError(`data directory ${dataDir} is in use by process ${owner} (remove ${path} if that process is not a GoD-DB worker)`);
      }
      rmSync(path, { force: true }); // stale: its owner is gone
    }
  }
  throw new BadRequestError(`could not lock data directory ${dataDir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
