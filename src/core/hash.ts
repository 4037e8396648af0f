/**
 * A stable 64-bit hash for ring positions: the first 8 bytes of MD5, as
 * Cassandra's RandomPartitioner and riak_core's chash (SHA-1) use a
 * cryptographic digest for an even spread. Pure: no I/O, no state.
 */
import { createHash } from 'node:crypto';

export function hash64(input: string): bigint {
  return createHash('md5').update(input, 'utf8').digest().readBigUInt64BE(0);
}

/** The position of a node's i-th virtual node. */
export function tokenOf(nodeId: string, index: number): bigint {
  return hash64(`${nodeId}#${index}`);
}
