/**
 * Membership view and failure detection, kept apart as in Dynamo (4.8): a
 * member that stops heartbeating is marked down and skipped, but stays in
 * the ring until it leaves (a later issue moves data on leave).
 */
export const MemberStatus = {
  Up: 'up',
  Down: 'down',
} as const;
export type MemberStatus = (typeof MemberStatus)[keyof typeof MemberStatus];

export interface Member {
  id: string;
  virtualNodes: number;
  /** Sender's heartbeat counter; a larger one is newer news. */
  heartbeat: number;
  /** Local clock when we last heard from it (never compared across nodes). */
  lastHeardMs: number;
}

export type MemberView = ReadonlyMap<string, Member>;

export interface Heartbeat {
  id: string;
  virtualNodes: number;
  heartbeat: number;
}

/** The view after hearing `hb` at `nowMs`. Returns the same map when nothing changed. */
export function applyHeartbeat(view: MemberView, hb: Heartbeat, nowMs: number, membersMax: number): MemberView {
  const known = view.get(hb.id);
  if (!known && view.size >= membersMax) return view;
  // Only a larger counter is news: a delayed or duplicated copy of a dead
  // node's last heartbeat must not keep it up.
  if (known && hb.heartbeat <= known.heartbeat) return view;
  const next = new Map(view);
  next.set(hb.id, { id: hb.id, virtualNodes: hb.virtualNodes, heartbeat: hb.heartbeat, lastHeardMs: nowMs });
  return next;
}

/** Down when silent for longer than `failureTimeoutMs`; `self` is always up. */
export function statusOf(member: Member, self: string, nowMs: number, failureTimeoutMs: number): MemberStatus {
  if (member.id === self) return MemberStatus.Up;
  return nowMs - member.lastHeardMs > failureTimeoutMs ? MemberStatus.Down : MemberStatus.Up;
}

/** True when the ring would differ between the two views (members or their vnode counts changed). */
export function ringChanged(a: MemberView, b: MemberView): boolean {
  if (a.size !== b.size) return true;
  for (const [id, m] of a) {
    const o = b.get(id);
    if (!o || o.virtualNodes !== m.virtualNodes) return true;
  }
  return false;
}
