/**
 * Convict formats for the config schema. Named (registered) formats, because
 * convict only coerces strings from env and flags for named formats; the
 * coercions are strict, so '12abc' stays a string and fails validation.
 */
import convict from 'convict';
import { limits } from '../core/limits.js';
import { isValidToken } from '../protocol/subjects.js';

export const kib = 1024;
export const mib = 1024 * kib;
export const gib = 1024 * mib;
export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function coerceInt(v: string): unknown {
  return /^\s*[+-]?\d+\s*$/.test(v) ? Number(v) : v;
}

export function intFormat(min: number, max: number): string {
  const name = `goddb-int-${min}-${max}`;
  convict.addFormat({
    name,
    coerce: coerceInt,
    validate(x: unknown) {
      if (!Number.isInteger(x) || (x as number) < min || (x as number) > max) {
        throw new Error(`must be an integer from ${min} to ${max}`);
      }
    },
  });
  return name;
}

const durationUnitMs: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go's time.ParseDuration grammar ('1s', '250ms', '1m30s'), since the seed's flags use it; a bare number is ms. */
export function parseDurationMs(text: string): number | undefined {
  const s = text.trim();
  if (/^\d+$/.test(s)) return Number(s);
  const part = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let end = 0;
  for (let m = part.exec(s); m !== null; m = part.exec(s)) {
    total += Number(m[1]) * durationUnitMs[m[2]!]!;
    end = part.lastIndex;
  }
  return end === s.length && s.length > 0 ? Math.round(total) : undefined;
}

export function durationFormat(minMs: number, maxMs: number): string {
  const name = `goddb-duration-${minMs}-${maxMs}`;
  convict.addFormat({
    name,
    coerce: (v: string) => parseDurationMs(v) ?? v,
    validate(x: unknown) {
      if (!Number.isInteger(x) || (x as number) < minMs || (x as number) > maxMs) {
        throw new Error(`must be a duration from ${minMs}ms to ${maxMs}ms, as milliseconds or like '250ms', '1s', '2m'`);
      }
    },
  });
  return name;
}

const sizeUnitBytes: Record<string, number> = { b: 1, kib, mib, gib, tib: 1024 * gib };

/** Bytes, or an IEC size ('512MiB', '1GiB'); decimal units are refused because tools disagree on them. */
export function parseSizeBytes(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  if (!m) return undefined;
  const unit = m[2]!.toLowerCase() || 'b';
  const factor = sizeUnitBytes[unit];
  return factor === undefined ? undefined : Math.round(Number(m[1]) * factor);
}

export function sizeFormat(minBytes: number, maxBytes: number): string {
  const name = `goddb-size-${minBytes}-${maxBytes}`;
  convict.addFormat({
    name,
    coerce: (v: string) => parseSizeBytes(v) ?? v,
    validate(x: unknown) {
      if (!Number.isInteger(x) || (x as number) < minBytes || (x as number) > maxBytes) {
        throw new Error(`must be a size from ${minBytes} to ${maxBytes} bytes, as bytes or like '512KiB', '1GiB'`);
      }
    },
  });
  return name;
}

convict.addFormat({
  name: 'goddb-boolean',
  coerce(v: string) {
    const s = v.trim().toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(s)) return true;
    if (['false', '0', 'no', 'off'].includes(s)) return false;
    return v;
  },
  validate(x: unknown) {
    if (typeof x !== 'boolean') throw new Error('must be true or false');
  },
});

export const tokenRule = "1 to 64 letters, digits, '_' or '-' (it is a NATS subject token)";

convict.addFormat({
  name: 'goddb-token',
  validate(x: unknown) {
    if (typeof x !== 'string' || !isValidToken(x)) throw new Error(`must be ${tokenRule}`);
  },
});

convict.addFormat({
  name: 'goddb-token-or-empty',
  validate(x: unknown) {
    if (typeof x !== 'string' || (x !== '' && !isValidToken(x))) throw new Error(`must be empty (generated) or ${tokenRule}`);
  },
});

function coerceList(v: string): string[] {
  return v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

convict.addFormat({
  name: 'goddb-token-list',
  coerce: coerceList,
  validate(x: unknown) {
    if (!Array.isArray(x) || !x.every((t) => typeof t === 'string' && isValidToken(t))) {
      throw new Error(`must be a list of node ids, each ${tokenRule}`);
    }
  },
});

convict.addFormat({
  name: 'goddb-server-list',
  coerce: coerceList,
  validate(x: unknown) {
    if (!Array.isArray(x) || x.length === 0 || !x.every((u) => typeof u === 'string' && /^\S+$/.test(u))) {
      throw new Error("must be one or more NATS URLs ('nats://host:port'), comma-separated in env and flags");
    }
  },
});

convict.addFormat({
  name: 'goddb-string',
  validate(x: unknown) {
    if (typeof x !== 'string') throw new Error('must be a string');
  },
});

convict.addFormat({
  name: 'goddb-host',
  validate(x: unknown) {
    if (typeof x !== 'string' || !/^\S+$/.test(x)) throw new Error('must be a host name or IP address');
  },
});

export const port = intFormat(0, 65535);
export const quorumNumber = intFormat(0, limits.replicationMax);
