/**
 * `kv.ring` on the client API (issue 12 item 6): the serving ring, answered
 * from memory, for the SDK's 'direct' routing (protocol/ring_map.ts). The
 * grouping of tokens by member and the fingerprint are computed once per
 * ring (membership replaces the ring object when it changes); liveness is
 * read per answer. A client that names the fingerprint it holds gets the
 * members' liveness only: polling every second costs a few bytes a member.
 */
import { BadRequestError, UnavailableError } from '../../core/errors.js';
import { limits } from '../../core/limits.js';
import { ringFingerprint } from '../../core/moves.js';
import type { Ring } from '../../core/ring.js';
import { encodeRingMap, ringMembers } from '../../protocol/ring_map.js';
import { Header, ringSubject } from '../../protocol/subjects.js';
import type { InboundMessage } from '../../transport/transport.js';

export interface RingSource {
  /** The serving ring now (the coordinator places keys by it). */
  ring(): Ring;
  /** Liveness as the coordinator judges it (this node: always). */
  isUp(id: string): boolean;
  replication: number;
}

/** True for `kv.ring` and anything under it (the latter answered 400). */
export function isRingSubject(subject: string): boolean {
  return subject === ringSubject || subject.startsWith(`${ringSubject}.`);
}

export class RingPublisher {
  private cached: { ring: Ring; fingerprint: string; members: Map<string, bigint[]> } | undefined;

  constructor(private readonly source: RingSource) {}

  /** The serving ring's fingerprint (core/moves.ts), the same on every node that holds the same ring. */
  fingerprint(): string {
    return this.current().fingerprint;
  }

  /** The answer to a `kv.ring` request; throws 400 for a malformed one, 503 when the ring is empty or too large to send. */
  answer(msg: InboundMessage, subject: string): Uint8Array {
    if (subject !== ringSubject) throw new BadRequestError(`${ringSubject} takes nothing after it`);
    if (msg.data.length > 0) throw new BadRequestError(`${ringSubject} takes an empty payload`);
    const { ring, fingerprint, members } = this.current();
    if (members.size === 0) throw new UnavailableError('this node has no ring yet');
    if (ring.tokens.length > limits.ringMapTokensMax) {
      throw new UnavailableError(`the ring has ${ring.tokens.length} tokens, more than the ${limits.ringMapTokensMax} a client is sent: route through any node`);
    }
    const withTokens = msg.header(Header.Ring)?.trim() !== fingerprint;
    const list = [...members].map(([id, tokens]) => ({ id, up: this.source.isUp(id), tokens }));
    return encodeRingMap({ replication: this.source.replication, fingerprint, members: list, withTokens });
  }

  private current(): { ring: Ring; fingerprint: string; members: Map<string, bigint[]> } {
    const ring = this.source.ring();
    if (this.cached?.ring !== ring) this.cached = { ring, fingerprint: ringFingerprint(ring), members: ringMembers(ring) };
    return this.cached;
  }
}
