/**
 * The reply form of a get that finds several live values (conflictPolicy
 * `siblings`), readable by any NATS client with no library: the payload is
 * the values one after another, newest first, and the header
 * `KV-Sibling-Lengths` gives their lengths in bytes, comma separated (with
 * `KV-Siblings` their number). Values are arbitrary bytes, so nothing in the
 * payload is escaped or framed; a reader slices it by the lengths:
 *
 *   KV-Siblings: 2
 *   KV-Sibling-Lengths: 5,3
 *   payload: "helloabc"  ->  ["hello", "abc"]
 *
 * A get with one live value answers that value alone, as under `lww`.
 */
import { limits } from '../core/limits.js';

export function encodeSiblings(values: readonly Uint8Array[]): { data: Uint8Array; lengths: string } {
  return { data: Buffer.concat(values.map((v) => Buffer.from(v.buffer, v.byteOffset, v.length))), lengths: values.map((v) => v.length).join(',') };
}

/**
 * The values of a siblings reply, newest first; an Error when the lengths
 * header is malformed or does not add up to the payload (a reply is
 * untrusted input like any other).
 */
export function decodeSiblings(data: Uint8Array, lengths: string): Uint8Array[] {
  const parts = lengths.split(',');
  if (parts.length > limits.siblingsMax) throw new Error(`KV-Sibling-Lengths lists ${parts.length} values, more than ${limits.siblingsMax}`);
  const out: Uint8Array[] = [];
  let at = 0;
  for (const p of parts) {
    if (!/^\d{1,10}$/.test(p.trim())) throw new Error(`KV-Sibling-Lengths is not a list of byte counts: ${JSON.stringify(lengths.slice(0, 80))}`);
    const n = Number(p.trim());
    if (at + n > data.length) throw new Error(`KV-Sibling-Lengths adds up to more than the ${data.length} bytes of the payload`);
    out.push(data.subarray(at, at + n));
    at += n;
  }
  if (at !== data.length) throw new Error(`KV-Sibling-Lengths adds up to ${at} bytes, the payload has ${data.length}`);
  return out;
}
