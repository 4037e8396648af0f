/**
 * A node's identity is durable: its id and vnode count live in
 * `<dataDir>/node.json`, so a restarted node comes back with the same id and
 * the same tokens and the ring does not move. The file is written once,
 * atomically (write, fsync, rename), before the node first serves.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, constants as fsConstants, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, readSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BadRequestError } from '../../core/errors.js';
import { isValidToken } from '../../protocol/subjects.js';

export interface Identity {
  nodeId: string;
  virtualNodes: number;
  cluster: string;
  createdAt: string;
}

export const identityFile = 'node.json';

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

/** Another live process holds the data directory. */
export class DataDirLockedError extends BadRequestError {
  constructor(readonly dataDir: string, readonly ownerPid: number | undefined) {
    const owner = ownerPid === undefined ? 'another process' : `another process (pid ${ownerPid}, as written in ${join(dataDir, lockFile)})`;
    super(`data directory ${dataDir} is locked by ${owner}: two workers cannot share a data directory`);
    this.name = 'DataDirLockedError';
  }
}

/**
 * Claims the data directory for this process: two workers on one directory
 * would share an id and an LMDB environment. The claim is an OS lock
 * (flock(2)) on `<dataDir>/LOCK`, so it cannot be raced and dies with the
 * process, however it dies. Node has no flock binding, so util-linux's
 * `flock -xn 3` takes it on our descriptor, passed as the child's fd 3: a
 * flock belongs to the open file description, which the child shares, so
 * the lock stays held by our descriptor after the child exits, until we
 * close it or the kernel closes it for us. The pid written into the file is
 * for people reading it, never for the decision. The file is not removed on
 * release: unlinking a lock file lets a third process lock a new inode while
 * a second still waits on the old one.
 */
export function lockDataDir(dataDir: string, pid: number): { release(): void } {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, lockFile);
  const fd = openSync(path, fsConstants.O_RDWR | fsConstants.O_CREAT, 0o644);
  try {
    const flock = spawnSync('flock', ['-x', '-n', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
    if (flock.error) {
      const missing = (flock.error as NodeJS.ErrnoException).code === 'ENOENT';
      throw new BadRequestError(missing
        ? `cannot lock data directory ${dataDir}: the flock command (util-linux) is not installed or not on PATH`
        : `cannot lock data directory ${dataDir}: flock failed (${flock.error.message})`);
    }
    if (flock.status === 1) throw new DataDirLockedError(dataDir, ownerOf(fd));
    if (flock.status !== 0) {
      throw new BadRequestError(`cannot lock data directory ${dataDir}: flock exited with ${flock.status ?? flock.signal} (${flock.stderr.toString().trim()})`);
    }
    ftruncateSync(fd, 0);
    writeSync(fd, `${pid}\n`, 0);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  let held = true;
  return {
    release: () => {
      if (!held) return;
      held = false;
      closeSync(fd); // the kernel drops the lock with the last descriptor of this open
    },
  };
}

/** The pid the holder wrote, when it has written one yet. */
function ownerOf(fd: number): number | undefined {
  const buf = Buffer.alloc(32);
  const n = readSync(fd, buf, 0, buf.length, 0);
  const pid = Number(buf.subarray(0, n).toString('utf8').trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}
