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
  readText(name: string): string | undefined;
  writeText(name: string, text: string): void;
}

function parseNumber(text: string | undefined, where: string): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text.trim());
  if (!Number.isSafeInteger(value) || value < 0) throw new StorageError(`${where} does not hold a non-negative integer`);
  return value;
}

/** For simulations: survives a simulated restart when the same object is passed again. */
export class MemoryMetaStore implements MetaStore {
  private readonly values = new Map<string, string>();
  read(name: string): number | undefined {
    return parseNumber(this.values.get(name), name);
  }
  write(name: string, value: number): void {
    this.values.set(name, String(value));
  }
  readText(name: string): string | undefined {
    return this.values.get(name);
  }
  writeText(name: string, text: string): void {
    this.values.set(name, text);
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
    return parseNumber(this.readText(name), join(this.dir, name));
  }

  write(name: string, value: number): void {
    this.writeText(name, String(value));
  }

  readText(name: string): string | undefined {
    try {
      return readFileSync(join(this.dir, name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new StorageError(`cannot read ${join(this.dir, name)}: ${(err as Error).message}`, { cause: err });
    }
  }

  writeText(name: string, text: string): void {
    const path = join(this.dir, name);
    const tmp = `${path}.tmp`;
    try {
      const fd = openSync(tmp, 'w');
      try {
        writeSync(fd, `${text.trimEnd()}\n`);
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
