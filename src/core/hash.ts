/**
 * A stable 64-bit hash for ring positions: the first 8 bytes of MD5, as
 * Cassandra's RandomPartitioner and riak_core's chash (SHA-1) use a
 * cryptographic digest for an even spread. Pure: no I/O, no state.
 */
import { md5High64 } from './md5.js';

export function hash64(input: string): bigint {
  if (input.length > textScratchUnits) return md5High64(Buffer.from(input, 'utf8'));
  return md5High64(textScratch, writeUtf8(input));
}

/** Strings of up to this many UTF-16 units are laid out in `textScratch` (3 UTF-8 bytes per unit at most). */
const textScratchUnits = 2048;
const textScratch = Buffer.allocUnsafe(3 * textScratchUnits);

/** `text` as UTF-8 at the start of `textScratch` (as Buffer.from writes it, lone surrogates included); its byte count. */
function writeUtf8(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) return textScratch.write(text, 0, 'utf8');
    textScratch[i] = c;
  }
  return text.length;
}

/** The position of a node's i-th virtual node. */
export function tokenOf(nodeId: string, index: number): bigint {
  return hash64(`${nodeId}#${index}`);
}
