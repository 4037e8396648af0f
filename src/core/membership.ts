/**
 * Membership view and failure detection, kept apart as in Dynamo (4.8): a
 * member that stops heartbeating is marked down and skipped, but stays in
 * the ring until it leaves (a later issue moves data on leave).
 *
 * Nobody joins on hearsay. A heartbeat only counts when it comes from a
 * member already admitted in the same incarnation; any other claim (an id
 * the node does not know, or a known id with a new incarnation) waits in a
 * bounded set of pending claims until the member confirms it on its own node
 * subject (memberlist likewise only lets a node refute rumours about
 * itself). A forged or bit-flipped heartbeat names an id nobody serves, so
 * its claim is never confirmed and the ring never sees it.
 */
export const MemberStatus = {
  Up: 'up',
  Down: 'down',
} as const;
export type MemberStatus = (typeof MemberStatus)[keyof typeof MemberStatus];

/**
 * Membership state, kept apart from liveness (issue 9): a down member stays
 * in the ring. The serving ring holds members that hold their ranges now
 * (up, leaving, removing); the future ring those that will hold them once
 * the moves end (joining, up). `removing` is `leaving` for a dead member an
 * operator removed: the survivors stream its ranges, and it ends `removed`.
 */
export const MemberState = {
  Joining: 'joining',
  Up: 'up',
  Leaving: 'leaving',
  Removing: 'removing',
  Left: 'left',
  Removed: 'removed',
} as const;
export type MemberState = (typeof MemberState)[keyof typeof MemberState];

export const memberStates: readonly MemberState[] = Object.values(MemberState);

/** Among equal state versions, the later state wins (a removal decided on two nodes at once agrees). */
const stateRank: Record<MemberState, number> = { joining: 0, up: 1, leaving: 2, removing: 3, left: 4, removed: 5 };

export function inServingRing(state: MemberState): boolean {
  return state === MemberState.Up || state === MemberState.Leaving || state === MemberState.Removing;
}

export function inFutureRing(state: MemberState): boolean {
  return state === MemberState.Joining || state === MemberState.Up;
}

/** Gone for good: out of both rings, and a heartbeat in its name is never admitted again. */
export function isGone(state: MemberState): boolean {
  return state === MemberState.Left || state === MemberState.Removed;
}

/** A member's state with the version that orders its changes (the member bumps it; a removal bumps it for a dead member). */
export interface StateStamp {
  state: MemberState;
  stateVersion: number;
}

/** True when `a` is later news than `b`. */
export function stateNewer(a: StateStamp, b: StateStamp): boolean {
  return a.stateVersion > b.stateVersion || (a.stateVersion === b.stateVersion && stateRank[a.state] > stateRank[b.state]);
}

export interface Member {
  id: string;
  state: MemberState;
  stateVersion: number;
  /** Fingerprint of the ring the member holds every key of (core/moves.ts); '' when unknown. */
  synced: string;
  /** Fingerprint of the future ring the member writes for now (its pending owners follow it); '' when unknown. */
  plans: string;
  virtualNodes: number;
  /** Random per process start; '' for a peer trusted from configuration. */
  incarnation: string;
  /** Sender's heartbeat counter; a larger one is newer news. */
  heartbeat: number;
  /** Local clock when we last heard from it (never compared across nodes). */
  lastHeardMs: number;
  /** Its tokens, once it said them (a probe answer); absent: derived from its id (core/ring.ts). */
  tokens?: readonly bigint[] | undefined;
}

export type MemberView = ReadonlyMap<string, Member>;

export interface Heartbeat {
  id: string;
  virtualNodes: number;
  incarnation: string;
  heartbeat: number;
  /** Absent from a protocol-1 or -2 member: up, version 0. */
  state?: MemberState | undefined;
  stateVersion?: number | undefined;
  synced?: string | undefined;
  plans?: string | undefined;
  /** Only from the member itself (its probe answer); a heartbeat without keeps what is known. */
  tokens?: readonly bigint[] | undefined;
}

/** What a valid heartbeat from another node means for the view. */
export const Verdict = {
  /** From an admitted member, in its incarnation, with a larger counter: apply it. */
  News: 'news',
  /** From an admitted member, but an old or duplicated counter: nothing to do. */
  Stale: 'stale',
  /** Claims another vnode count for an admitted incarnation: a process cannot change it, a flipped bit can. */
  Conflict: 'conflict',
  /** From an id not admitted, or a new incarnation of one: the member must confirm it first. */
  Verify: 'verify',
} as const;
export type Verdict = (typeof Verdict)[keyof typeof Verdict];

export function judgeHeartbeat(view: MemberView, hb: Heartbeat): Verdict {
  const known = view.get(hb.id);
  if (!known || known.incarnation !== hb.incarnation) return Verdict.Verify;
  if (known.virtualNodes !== hb.virtualNodes) return Verdict.Conflict;
  return hb.heartbeat > known.heartbeat ? Verdict.News : Verdict.Stale;
}

/**
 * The view after hearing `hb` at `nowMs`. Returns the same map when nothing
 * changed. A heartbeat of another incarnation replaces the record (a
 * restart): callers apply one only once the member confirmed it.
 */
export function applyHeartbeat(view: MemberView, hb: Heartbeat, nowMs: number, membersMax: number): MemberView {
  const known = view.get(hb.id);
  if (!known && view.size >= membersMax) return view;
  // Only a larger counter is news: a delayed or duplicated copy of a dead
  // node's last heartbeat must not keep it up.
  if (known && known.incarnation === hb.incarnation && hb.heartbeat <= known.heartbeat) return view;
  const next = new Map(view);
  const heard: StateStamp = { state: hb.state ?? MemberState.Up, stateVersion: hb.stateVersion ?? 0 };
  // The state is kept unless the heartbeat's is newer: a removal decided by others outlives the member's old word.
  const stamp = known && !stateNewer(heard, known) ? { state: known.state, stateVersion: known.stateVersion } : heard;
  const member: Member = { id: hb.id, ...stamp, synced: hb.synced ?? known?.synced ?? '', plans: hb.plans ?? known?.plans ?? '', virtualNodes: hb.virtualNodes, incarnation: hb.incarnation, heartbeat: hb.heartbeat, lastHeardMs: nowMs };
  const tokens = hb.tokens ?? known?.tokens;
  if (tokens !== undefined) member.tokens = tokens;
  next.set(hb.id, member);
  return next;
}

/** A heartbeat's claim, waiting for the member to confirm it. */
export interface Claim extends Heartbeat {
  /** The claim came with a hello: answer it with a heartbeat once admitted. */
  hello: boolean;
  /** The protocol version the heartbeat was sent in. */
  protocol: number;
  /** The newest version the sender speaks (a protocol-1 node cannot answer a probe). */
  speaks: number;
}

/**
 * Claims waiting for confirmation, oldest first (a Map keeps insertion
 * order). Updated in place: a flood of forged heartbeats arrives at message
 * rate, and copying up to membersMax entries per message is what it wants.
 */
export type PendingClaims = Map<string, Claim>;

/**
 * Notes `claim` in `pending`; returns the id of a claim forgotten to stay
 * within `pendingMax` (the oldest), if any. A claim for an id already
 * pending replaces it (the newest incarnation is the one worth asking
 * about) and keeps its place when it is the same incarnation.
 */
export function addClaim(pending: PendingClaims, claim: Claim, pendingMax: number): string | undefined {
  const held = pending.get(claim.id);
  if (held && held.incarnation === claim.incarnation) {
    pending.set(claim.id, { ...claim, hello: held.hello || claim.hello, heartbeat: Math.max(held.heartbeat, claim.heartbeat) });
    return undefined;
  }
  pending.delete(claim.id);
  let evicted: string | undefined;
  if (pending.size >= pendingMax) {
    evicted = pending.keys().next().value;
    if (evicted !== undefined) pending.delete(evicted);
  }
  pending.set(claim.id, claim);
  return evicted;
}

/** Forgets the claim for `id` when it is still the one for `incarnation` (a newer one stays). */
export function settleClaim(pending: PendingClaims, id: string, incarnation: string): void {
  if (pending.get(id)?.incarnation === incarnation) pending.delete(id);
}

/** True when a member's own answer confirms the claim made in its name. */
export function confirms(claim: { id: string; incarnation: string }, answer: { id: string; incarnation: string }): boolean {
  return claim.id === answer.id && claim.incarnation === answer.incarnation;
}

/** Down when silent for longer than `failureTimeoutMs`; `self` is always up. */
export function statusOf(member: Member, self: string, nowMs: number, failureTimeoutMs: number): MemberStatus {
  if (member.id === self) return MemberStatus.Up;
  return nowMs - member.lastHeardMs > failureTimeoutMs ? MemberStatus.Down : MemberStatus.Up;
}

/** True when the rings or the move state would differ between the two views (members, vnodes, tokens, states, synced rings). */
export function ringChanged(a: MemberView, b: MemberView): boolean {
  if (a.size !== b.size) return true;
  for (const [id, m] of a) {
    const o = b.get(id);
    if (!o || o.virtualNodes !== m.virtualNodes || !sameTokens(o.tokens, m.tokens) || o.state !== m.state || o.synced !== m.synced || o.plans !== m.plans) return true;
  }
  return false;
}

/** The view with `id`'s state replaced by `stamp` when it is newer (hearsay of a removal, or the member's own word relayed). */
export function applyState(view: MemberView, id: string, stamp: StateStamp): MemberView {
  const known = view.get(id);
  if (!known || !stateNewer(stamp, known)) return view;
  const next = new Map(view);
  next.set(id, { ...known, state: stamp.state, stateVersion: stamp.stateVersion });
  return next;
}

function sameTokens(a: readonly bigint[] | undefined, b: readonly bigint[] | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  return a.every((t, i) => t === b[i]);
}
