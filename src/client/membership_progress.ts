/**
 * How far a `leave` or a `remove` has got, from what the answering nodes
 * report (listNodes): the member's membership state, the ranges and bytes
 * still moving, and whether the change is done. Pure: NodeInfo in, plain
 * data out, so `goddb leave|remove` and scripts read progress the same way.
 *
 * Done, for a leave: the member is `left` (or no reporting node lists it
 * any more); it handed its ranges over before getting there, so the ranges
 * moving are the ones whose source or target it is. For a remove: the
 * member is `removed` (or unlisted) and every reporting node is settled: a
 * removed member sends nothing, its ranges get their new replicas from the
 * surviving copies, so every transfer under way counts.
 */
import { clusterStatus, movingFigures, transfersUnderWay, type MovingFigures } from './ring_status.js';
import type { NodeInfo } from './nodes.js';

export const MembershipChangeKind = { Leave: 'leave', Remove: 'remove' } as const;
export type MembershipChangeKind = (typeof MembershipChangeKind)[keyof typeof MembershipChangeKind];

/** The membership state a change ends in. */
export const finalState: Record<MembershipChangeKind, string> = { leave: 'left', remove: 'removed' };

export interface ChangeProgress {
  kind: MembershipChangeKind;
  node: string;
  /** The member's state as the reporting nodes agree on it, 'disputed' when they differ, null when none reports one. */
  state: string | null;
  /** Some node reports a ring, and none of them lists the member. */
  gone: boolean;
  /** Every reporting node says no range is moving; null when none reports a ring. */
  settled: boolean | null;
  /** The transfers that count for this change, summed: zeros when none is under way. */
  figures: MovingFigures;
  /** How many transfers that is. */
  transfers: number;
  done: boolean;
}

const none: MovingFigures = { rangesDone: 0, rangesTotal: 0, bytesDone: 0, bytesTotal: 0 };

export function changeProgress(nodes: readonly NodeInfo[], kind: MembershipChangeKind, nodeId: string): ChangeProgress {
  const status = clusterStatus(nodes);
  const reporters = nodes.filter((n) => n.ring !== undefined);
  const listed = reporters.some((n) => n.ring!.members.some((m) => m.id === nodeId));
  const gone = reporters.length > 0 && !listed;
  const state = status.members.find((m) => m.id === nodeId)?.state ?? null;
  const all = transfersUnderWay(nodes);
  const counted = kind === MembershipChangeKind.Leave ? all.filter((t) => t.source === nodeId || t.target === nodeId) : all;
  const reached = gone || state === finalState[kind];
  const done = kind === MembershipChangeKind.Leave ? reached : reached && status.settled === true;
  return { kind, node: nodeId, state, gone, settled: status.settled, figures: movingFigures(counted) ?? { ...none }, transfers: counted.length, done };
}
