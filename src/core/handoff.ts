/**
 * Ownership handoff, the pure part (riak_core `riak_core_handoff.hrl`: a
 * transfer has a kind, a source, a target and counts; Dynamo 4.9: a joining
 * node takes key ranges from the nodes that held them).
 *
 * When the ring changes, a key's preference list may gain members: they
 * must receive the key. One member of the old list sends it, so that each
 * gained replica gets one copy, not N: the first member of the OLD
 * preference list that is still a member of the new ring (it held the key
 * as a replica, and it is still here to send it). Every node computes the
 * same answer from the same two rings, so no coordination is needed.
 *
 * Pure: rings, N, ids and hashes in; lists out. Transfers are plain records
 * whose progress the node updates and `goddb status` reads.
 */
import { preferenceList, type Ring } from './ring.js';

export interface KeyHandoff {
  /** Members in the new preference list that were not in the old one, in new-list order. */
  gained: string[];
  /** The member that sends the key to them (undefined when nobody gained it, or no old replica remains). */
  sender: string | undefined;
}

/** Whether a ring holds tokens of `id`. */
export function ringHas(ring: Ring, id: string): boolean {
  return ring.tokens.some((t) => t.nodeId === id);
}

/** Who gains `hash` when the ring moves from `before` to `after`, and who sends it to them. */
export function keyHandoff(before: Ring, after: Ring, hash: bigint, n: number): KeyHandoff {
  const old = preferenceList(before, hash, n);
  const next = preferenceList(after, hash, n);
  const gained = next.filter((id) => !old.includes(id));
  if (gained.length === 0) return { gained, sender: undefined };
  const members = new Set(after.tokens.map((t) => t.nodeId));
  return { gained, sender: old.find((id) => members.has(id)) };
}

/** The members `self` must send `hash` to after the move (empty unless it is the sender). */
export function handoffTargets(before: Ring, after: Ring, hash: bigint, n: number, self: string): string[] {
  const h = keyHandoff(before, after, hash, n);
  return h.sender === self ? h.gained : [];
}

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

/** The transfer once its fold has ended: done when every key it was given arrived, failed otherwise. */
export function finishTransfer(t: Transfer, nowMs: number): Transfer {
  const state = t.keysFailed === 0 ? TransferState.Done : TransferState.Failed;
  return { ...t, state, keysTotal: t.keysSent + t.keysFailed, bytesTotal: t.keysFailed === 0 ? t.bytesSent : undefined, finishedMs: nowMs };
}
