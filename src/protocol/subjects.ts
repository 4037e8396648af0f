/**
 * The whole subject grammar, in one place.
 *
 * Client API (any NATS client; served by every node in one queue group):
 *   kv.get.<key>   payload: empty          reply: the value's bytes (404 when absent)
 *   kv.put.<key>   payload: the value      reply: empty
 *   kv.del.<key>   payload: empty          reply: empty
 *   kv.get | kv.put | kv.del   the same, with the key in the `KV-Key` header
 *     (for keys that are not valid subject tokens: spaces, `*`, `>`, empty tokens).
 *   The key is everything after the second token, so `kv.get.user.42` reads `user.42`.
 *   A key must be valid UTF-8 text: one holding U+FFFD is refused (see unsendableKey).
 *   $SRV.PING|INFO|STATS.goddb   the NATS micro-service endpoints of every node (@nats-io/services)
 *
 * Between nodes (god.<cluster>.…; <id> is a node id, itself a subject token):
 *   god.<cluster>.gossip              heartbeats and announcements (publish)
 *   god.<cluster>.node.<id>.get       replica read   (request: ReplicaGet, reply: ReplicaGetReply)
 *   god.<cluster>.node.<id>.put       replica write  (request: ReplicaPut, reply: ReplicaPutReply)
 *   god.<cluster>.node.<id>.probe     "who are you": a member is admitted only when it answers here
 *                                     itself (request: Probe, reply: ProbeReply)
 */
export const apiPrefix = 'kv';

/** The NATS micro-service name every node registers the client API under. */
export const serviceName = 'goddb';

/** Every node's micro-service statistics answer here ($SRV.PING.<name> and $SRV.INFO.<name> likewise). */
export function serviceStatsSubject(): string {
  return `$SRV.STATS.${serviceName}`;
}

export const ClientOp = {
  Get: 'get',
  Put: 'put',
  Del: 'del',
} as const;
export type ClientOp = (typeof ClientOp)[keyof typeof ClientOp];

export const ReplicaOp = {
  Get: 'get',
  Put: 'put',
  Probe: 'probe',
} as const;
export type ReplicaOp = (typeof ReplicaOp)[keyof typeof ReplicaOp];

export const Header = {
  Key: 'KV-Key',
  R: 'KV-R',
  W: 'KV-W',
  Context: 'KV-Context',
  IfAbsent: 'KV-If-Absent',
  Ttl: 'KV-TTL',
  Siblings: 'KV-Siblings',
  Acks: 'KV-Acks',
} as const;

/** Subjects a node serves for clients: `kv.get.>` and bare `kv.get`, per op. */
export function clientSubjects(op: ClientOp): { wildcard: string; bare: string } {
  return { wildcard: `${apiPrefix}.${op}.>`, bare: `${apiPrefix}.${op}` };
}

/** True when `key` can travel as the tail of a subject (tokens non-empty, no wildcards or spaces). */
export function isSubjectSafeKey(key: string): boolean {
  if (key.length === 0) return false;
  if (/[\s*>\u0000-\u001f\u007f]/u.test(key)) return false;
  return key.split('.').every((t) => t.length > 0);
}

/**
 * A key holding U+FFFD is refused: nats.js decodes subjects and header
 * values as UTF-8 and replaces every invalid byte sequence with U+FFFD, so
 * such a key may stand for many different byte strings, which would all
 * read and write one key. A lone surrogate becomes U+FFFD on the way out.
 */
export const invalidUtf8KeyMessage = 'the key holds U+FFFD (the replacement character) or a lone surrogate: keys must be valid UTF-8 text';
const replacementOrLoneSurrogate = /\uFFFD|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Why `key` cannot be sent by a NATS client, or undefined. Header values lose
 * leading and trailing white space and cannot hold CR or LF, so such keys
 * would arrive as another key or not at all; keys that are not valid UTF-8
 * would alias each other (see invalidUtf8KeyMessage).
 */
export function unsendableKey(key: string, keyBytesMax: number): string | undefined {
  if (key.length === 0) return 'the key is empty';
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > keyBytesMax) return `key of ${bytes} bytes is over the maximum of ${keyBytesMax}`;
  if (replacementOrLoneSurrogate.test(key)) return invalidUtf8KeyMessage;
  if (!isSubjectSafeKey(key) && (/[\r\n]/.test(key) || key.trim() !== key)) {
    return 'a key that is not a subject token cannot start or end with white space or hold CR or LF';
  }
  return undefined;
}

/** The subject and headers a client uses for `op` on `key`. */
export function clientRequest(op: ClientOp, key: string): { subject: string; keyHeader?: string } {
  if (isSubjectSafeKey(key)) return { subject: `${apiPrefix}.${op}.${key}` };
  return { subject: `${apiPrefix}.${op}`, keyHeader: key };
}

/**
 * The op and key of a client request, or a reason it is malformed.
 * A key in the header wins only on the bare subject; both at once is an error.
 */
export function parseClientSubject(
  subject: string,
  keyHeader: string | undefined,
): { op: ClientOp; key: string } | { error: string } {
  const prefix = `${apiPrefix}.`;
  if (!subject.startsWith(prefix)) return { error: `not a client subject: ${subject}` };
  const rest = subject.slice(prefix.length);
  const dot = rest.indexOf('.');
  const opToken = dot === -1 ? rest : rest.slice(0, dot);
  if (opToken !== ClientOp.Get && opToken !== ClientOp.Put && opToken !== ClientOp.Del) {
    return { error: `unknown operation: ${opToken}` };
  }
  const op = opToken as ClientOp;
  if (dot === -1) {
    if (keyHeader === undefined || keyHeader.length === 0) return { error: `the key is missing: use ${prefix}${op}.<key> or the ${Header.Key} header` };
    return { op, key: keyHeader };
  }
  if (keyHeader !== undefined) return { error: `the key is given twice: in the subject and in ${Header.Key}` };
  const key = rest.slice(dot + 1);
  if (key.length === 0) return { error: `the key is missing: use ${prefix}${op}.<key> or the ${Header.Key} header` };
  return { op, key };
}

/**
 * True for subjects in the nodes' namespace (`god.…`). A node never replies
 * on one: a client picks its own reply subject, and a reply carries bytes
 * the client chose (a stored value), which the node would otherwise publish
 * there with its own permissions, as a forged replica write or heartbeat.
 */
export function isNodeSubject(subject: string): boolean {
  return subject === 'god' || subject.startsWith('god.');
}

export function gossipSubject(cluster: string): string {
  return `god.${cluster}.gossip`;
}

export function replicaSubject(cluster: string, nodeId: string, op: ReplicaOp): string {
  return `god.${cluster}.node.${nodeId}.${op}`;
}

/** Node ids and cluster names are single subject tokens. */
export function isValidToken(s: string): boolean {
  return /^[A-Za-z0-9_-]{1,64}$/.test(s);
}
