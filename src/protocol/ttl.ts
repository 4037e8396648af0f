/**
 * Time to live on the wire: `KV-TTL: <seconds>` on a put, a positive integer
 * up to limits.ttlSecondsMax. The SDK and the CLI also take a duration
 * ('30s', '5m', '1h', '2d'), sent as whole seconds. Pure, shared by the node
 * (header checks), the SDK and the CLI.
 */
import { limits } from '../core/limits.js';

const unitSeconds: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** Seconds of a `KV-TTL` header value, or the reason it is refused. */
export function parseTtlHeader(raw: string): number | { error: string } {
  const s = raw.trim();
  const n = Number(s);
  if (!/^\d+$/.test(s) || n < 1 || n > limits.ttlSecondsMax) {
    return { error: `must be a whole number of seconds from 1 to ${limits.ttlSecondsMax} (ten years)` };
  }
  return n;
}

/**
 * Seconds of a time to live given as seconds (a number, or digits) or as a
 * duration with one unit ('30s', '5m', '1h', '2d'); undefined when it is not
 * a whole number of seconds from 1 to ttlSecondsMax.
 */
export function ttlSecondsOf(ttl: number | string): number | undefined {
  let n: number;
  if (typeof ttl === 'number') n = ttl;
  else {
    const m = /^(\d+)(s|m|h|d)?$/.exec(ttl.trim());
    if (!m) return undefined;
    n = Number(m[1]) * unitSeconds[m[2] ?? 's']!;
  }
  return Number.isSafeInteger(n) && n >= 1 && n <= limits.ttlSecondsMax ? n : undefined;
}
