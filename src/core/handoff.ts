/**
 * Ownership handoff, the pure part (riak_core `riak_core_handoff.hrl`: a
 * transfer has a kind, a source, a target and counts; Dynamo 4.9: a joining
 * node takes key ranges from the nodes that held them).
 *
 * What moves and from where is core/moves.ts; this is the record of one
 * stream (a node's pulls from one source), which the node updates and
 * `goddb status` reads.
 */
import type { Ring } from './ring.js';

/** Two rings place every key alike exactly when their tokens are the same. */
export function sameRing(a: Ring, b: Ring): boolean {
  if (a.tokens.length !== b.tokens.length) return false;
  return a.tokens.every((t, i) => t.position === b.tokens[i]!.position && t.nodeId === b.tokens[i]!.nodeId);
}

/** riak_core's four kinds; only ownership transfers exist yet. */
export const TransferKind = { Ownership: 'ownership', Hinted: 'hinted', Repair: 'repair', Resize: 'resize' } as const;
export type TransferKind = (typeof TransferKind)[keyof typeof TransferKind];

export const TransferState = { Running: 'running', Done: 'done', Superseded: 'superseded', Failed: 'failed' } as const;
export type TransferState = (typeof TransferState)[keyof typeof TransferState];

/** One stream of keys from `source` to `target` for one ring change (riak_core's handoff_status and ho_stats). */
export interface Transfer {
  kind: TransferKind;
  source: string;
  target: string;
  state: TransferState;
  keysSent: number;
  bytesSent: number;
  /** Keys and bytes the target refused or never acknowledged (sent again by the next fold). */
  keysFailed: number;
  /** Known once the fold has finished (the store is folded once, so totals are not known up front). */
  keysTotal: number | undefined;
  bytesTotal: number | undefined;
  startedMs: number;
  finishedMs: number | undefined;
}

export function newTransfer(kind: TransferKind, source: string, target: string, nowMs: number): Transfer {
  return { kind, source, target, state: TransferState.Running, keysSent: 0, bytesSent: 0, keysFailed: 0, keysTotal: undefined, bytesTotal: undefined, startedMs: nowMs, finishedMs: undefined };
}
