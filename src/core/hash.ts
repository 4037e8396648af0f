/**
 * A stable 64-bit hash for ring positions: the first 8 bytes of MD5, as
 * Cassandra's RandomPartitioner and riak_core's chash (SHA-1) use a
 * cryptographic digest for an even spread. Pure: no I/O, no state.
 */
import { hash } from 'node:crypto';

export function hash64(input: string): bigint {
  return hash('md5', input, 'buffer').readBigUInt64BE(0); // one call: no Hash object per key
}

/** The position of a node's i-th virtual node. */
export function tokenOf(nodeId: string, index: number): bigint {
  return hash64(`${nodeId}#${index}`);
}
