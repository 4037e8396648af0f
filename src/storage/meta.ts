/**
 * Node metadata kept beside the data, apart from the key space: today the
 * hybrid logical clock's high-water mark (core/hlc.ts), so a restarted node
 * never issues a timestamp or counter it issued before. A wiped data
 * directory loses it with the data, which is what a new disk means.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { StorageError } from '../core/errors.js';

export interface MetaStore {
  /** The value last written under `name`, or undefined on a new (or wiped) node. */
  read(name: string): number | undefined;
  /** Durable once it returns. */
  write(name: string, value: number): void;
}

/** For simulations: survives a simulated restart when the same object is passed again. */
export class MemoryMetaStore implements MetaStore {
  private readonly values = new Map<string, number>();
  read(name: string): number | undefined {
    return this.values.get(name);
  }
  write(name: string, value: number): void {
    this.values.set(name, value);
  }
}

/** One small file per name in `<dataDir>/meta/`, replaced atomically (write, fsync, rename, fsync dir). */
export class FileMetaStore implements MetaStore {
  private readonly dir: string;
  constructor(dataDir: string) {
    this.dir = join(dataDir, 'meta');
    mkdirSync(this.dir, { recursive: true });
  }

  read(name: string): number | undefined {
    let text: string;
    try {
      text = readFileSync(join(this.dir, name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new StorageError(`cannot read ${join(this.dir, name)}: ${(err as Error).message}`, { cause: err });
    }
    const value = Number(text.trim());
    if (!Number.isSafeInteger(value) || value < 0) throw new StorageError(`${join(this.dir, name)} does not hold a non-negative integer`);
    return value;
  }

  write(name: string, value: number): void {
    const path = join(this.dir, name);
    const tmp = `${path}.tmp`;
    try {
      const fd = openSync(tmp, 'w');
      try {
        writeSync(fd, `${value}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
      const dir = openSync(this.dir, 'r');
      try {
        fsyncSync(dir);
      } finally {
        closeSync(dir);
      }
    } catch (err) {
      throw new StorageError(`cannot write ${path}: ${(err as Error).message}`, { cause: err });
    }
  }
}
