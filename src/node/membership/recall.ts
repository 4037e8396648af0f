/**
 * A node that starts with nothing kept (no tokens, no membership state in
 * its data directory) asks its configured peers, before it says hello,
 * what they know of its id. An answer means the disk was wiped (or
 * replaced) under a member the cluster still places: the node comes back
 * with the tokens it had (so the ring does not move) and a state version
 * past the one the cluster holds (so its word counts), and it pulls its
 * ranges back before it counts toward quorums (node/handoff/moves.ts,
 * Replica.bootstrapping). No answer: a new member, as before.
 */
import type { Clock } from '../../core/clock.js';
import { isGone, MemberState, type StateStamp } from '../../core/membership.js';
import { decode, encode, Kind, type MemberRecord } from '../../protocol/codec.js';
import { replicaSubject, ReplicaOp } from '../../protocol/subjects.js';
import type { Transport } from '../../transport/transport.js';

/** A peer that knows this id answers from memory at once; one that does not run yet is not waited for. */
const recallTimeoutMs = 2_000;

export interface Recalled {
  tokens: bigint[];
  stamp: StateStamp;
}

export async function recallSelf(transport: Transport, cluster: string, self: string, peers: readonly string[], clock: Clock): Promise<Recalled | undefined> {
  // An incarnation no process has: every record of this id is newer than it, so peers send theirs.
  const digest = [{ id: self, incarnation: `recall-${Math.floor(clock.monotonicMs())}`, stateVersion: 0, heartbeat: 0 }];
  const body = encode({ kind: Kind.MemberSync, from: self, digest });
  const answers = await Promise.allSettled(
    peers.filter((p) => p !== self).map((p) => transport.request(replicaSubject(cluster, p, ReplicaOp.Members), body, { timeoutMs: recallTimeoutMs }).then((r) => decode(r.data, Kind.Members).records)),
  );
  let best: MemberRecord | undefined;
  for (const a of answers) {
    if (a.status !== 'fulfilled') continue;
    for (const r of a.value) if (r.id === self && r.tokens !== undefined && (!best || r.stateVersion > best.stateVersion)) best = r;
  }
  if (!best) return undefined;
  // Gone: kept as it is, so the node refuses to start as it would with its own disk.
  if (isGone(best.state)) return { tokens: best.tokens!, stamp: { state: best.state, stateVersion: best.stateVersion } };
  const state = best.state === MemberState.Joining ? MemberState.Joining : MemberState.Up;
  return { tokens: best.tokens!, stamp: { state, stateVersion: best.stateVersion + 1 } };
}
