/**
 * Node ids. An id is a subject token (subjects.ts: `god.<cluster>.node.<id>.…`),
 * so a generated one uses only letters, digits and `-`. Both configuration
 * (an id for a node without a data directory, which names its directory
 * after it) and the node (an id for a new data directory) generate them here,
 * so neither imports the other.
 */
import { randomBytes } from 'node:crypto';

/** `n-` and 8 random hex digits. */
export function generateNodeId(): string {
  return `n-${randomBytes(4).toString('hex')}`;
}
