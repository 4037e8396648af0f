/**
 * The whole subject grammar, in one place.
 *
 * Client API (any NATS client; served by every node in one queue group):
 *   kv.get.<key>   payload: empty          reply: the value's bytes (404 when absent)
 *   kv.put.<key>   payload: the value      reply: empty
 *   kv.del.<key>   payload: empty          reply: empty
 *   kv.owners.<key> payload: empty         reply: JSON: the key's hash, replicas with
 *                                          liveness, fallbacks, pending owners, as the
 *                                          answering node sees them (protocol/placement_report.ts)
 *   kv.leave.<node-id>  payload: empty     reply: JSON { node, state }: the member starts
 *                                          leaving (it hands its ranges to their next owners,
 *                                          then exits); any node may receive it and forwards it
 *   kv.remove.<node-id> payload: empty     reply: JSON { node, state }: a down member is
 *                                          removed; its ranges get a new replica each, streamed
 *                                          from the surviving copies
 *     The "key" of leave and remove is a node id (one subject token: letters,
 *     digits, `-`, `_`); anything else is 400. 404 unknown member, 409 a state
 *     that does not allow it (removing a member that is up), 503 not now.
 *   kv.get | kv.put | kv.del | kv.owners   the same, with the key in the `KV-Key` header
 *     (for keys that are not valid subject tokens: spaces, `*`, `>`, empty tokens),
 *     or in `KV-Key-B64` (base64url of its UTF-8 bytes), which carries any key
 *     exactly: white space at either end, CR, LF (header values lose the first
 *     and cannot hold the others).
 *   The key is everything after the second token, so `kv.get.user.42` reads `user.42`.
 *   A key must be valid UTF-8 text: one holding U+FFFD is refused (see unsendableKey).
 *   Every node serves all of `kv.>` (one endpoint), so an unknown operation
 *   (`kv.foo.x`) is answered 400, not "no responders". nats-server itself
 *   delivers no subject with an empty token (`kv.get.`, `kv..x`) to anyone:
 *   those get "no responders" from the server.
 *   The SDK and the CLI put a key in the subject only when it is subject-safe
 *   and at most subjectKeyBytesMax bytes: nats-server closes the connection of
 *   a client whose protocol line (subject, reply subject, sizes) exceeds its
 *   max_control_line (4 KiB by default).
 *   kvn.<node-id>.<op>.<key>   the same requests, to one node (not the queue group): the SDK
 *     sends them to nodes that answer $SRV.PING, so a paused node stops getting them
 *     (client/node_router.ts). The rest of the subject is as under `kv.`.
 *   kv.keys        payload: empty          reply: one page of live keys, one per line (node/keys):
 *     headers in: KV-Prefix (only keys starting with it), KV-Keys-After (the cursor
 *     the previous page gave), KV-Keys-Limit (at most this many keys), KV-R;
 *     headers out: KV-Keys-Count (keys in this page), then KV-Keys-After (ask again
 *     with it) or KV-Keys-Done (the total; the listing is over). A page whose keys
 *     hold CR or LF carries every key base64url and says KV-Keys-Encoding: base64url.
 *   kv.ring        payload: empty          reply: the serving ring, binary (protocol/ring_map.ts): replication,
 *     fingerprint, members with liveness and tokens. Header in: KV-Ring (the fingerprint the client
 *     holds: when it is the node's, the tokens are left out). The SDK's 'direct' routing polls it.
 *   $SRV.PING|INFO|STATS.goddb   the NATS micro-service endpoints of every node (@nats-io/services)
 *
 * Change feed (published by the coordinating node, fire and forget, after it answered 200):
 *   kvchanges.<key>   one event per acknowledged put or delete (protocol/changes.ts: KV-Op,
 *                     KV-HLC, KV-Writer, KV-Context headers; the value as payload). Keys that
 *                     cannot be tokens go on the bare `kvchanges` with KV-Key or KV-Key-B64,
 *                     as requests do. Outside `kv.>` on purpose: every node's service
 *                     subscribes to all of `kv.>` (a queue group), so events there would each
 *                     be delivered to a node as a request; and clients, which may publish on
 *                     `kv.>`, could forge events there.
 *
 * Replies: clients' on `_INBOX.…` (nats.js's default); nodes' on `_INBOX_GOD.<node-id>.…`
 * (nodeInboxPrefix), which the NATS client role may not subscribe to (nats-server.conf).
 *
 * Between nodes (god.<cluster>.…; <id> is a node id, itself a subject token):
 *   god.<cluster>.gossip              heartbeats and announcements (publish)
 *   god.<cluster>.node.<id>.get       replica read   (request: ReplicaGet, reply: ReplicaGetReply)
 *   god.<cluster>.node.<id>.put       replica write  (request: ReplicaPut, reply: ReplicaPutReply)
 *   god.<cluster>.node.<id>.probe     "who are you": a member is admitted only when it answers here
 *                                     itself (request: Probe, reply: ProbeReply)
 *   god.<cluster>.node.<id>.purge     tombstone and TTL purge (request: ReplicaPurge, reply: ReplicaPurgeReply)
 *   god.<cluster>.node.<id>.aae       anti-entropy (request: AaeTreeRequest, reply: AaeTreeReply;
 *                                     request: AaeKeysRequest, reply: AaeKeysReply)
 *   god.<cluster>.node.<id>.paxos     conditional writes (PaxosPrepare, PaxosPropose, PaxosCommit and
 *                                     their replies, one key each: node/paxos)
 *   god.<cluster>.node.<id>.keys      key listing (request: KeysRequest, reply: KeysReply: node/keys)
 */
import { limits } from '../core/limits.js';

export const apiPrefix = 'kv';

/** The NATS micro-service name every node registers the client API under. */
export const serviceName = 'goddb';

/** The one endpoint of that service: the whole client namespace, so that every request under it gets an answer. */
export const clientEndpoint = { name: apiPrefix, subject: `${apiPrefix}.>` } as const;

/** Every node's micro-service statistics answer here ($SRV.PING.<name> and $SRV.INFO.<name> likewise). */
export function serviceStatsSubject(): string {
  return `$SRV.STATS.${serviceName}`;
}

export function servicePingSubject(): string {
  return `$SRV.PING.${serviceName}`;
}

/** The first token of the change feed's subjects (outside `kv.>`: see the grammar above). */
export const changesPrefix = 'kvchanges';

/**
 * Where the change event of `key` is published: `kvchanges.<key>` when the
 * key may be the tail of a subject, else the bare `kvchanges` with the key in
 * KV-Key or KV-Key-B64 (the same choice as clientRequest).
 */
export function changeSubject(key: string): ClientRequest {
  const r = clientRequest(ClientOp.Get, key);
  return { ...r, subject: r.subject === `${apiPrefix}.${ClientOp.Get}` ? changesPrefix : `${changesPrefix}.${r.subject.slice(`${apiPrefix}.${ClientOp.Get}.`.length)}` };
}

/**
 * The subjects that carry every change of a key starting with `prefix`: the
 * subject filter of its whole tokens (`kvchanges.user.>` for `user.` or
 * `user.4`) and the bare `kvchanges` (keys in headers). Events of keys that
 * match the filter but not the prefix are left to the watcher to skip.
 */
export function changeFilters(prefix: string): string[] {
  const dot = prefix.lastIndexOf('.');
  const whole = dot === -1 ? '' : prefix.slice(0, dot);
  // Keys longer than subjectKeyBytesMax travel in a header: with such a prefix, all of them do.
  if (Buffer.byteLength(whole, 'utf8') >= limits.subjectKeyBytesMax) return [changesPrefix];
  const tokens = whole !== '' && isSubjectSafeKey(whole) ? `${changesPrefix}.${whole}.>` : `${changesPrefix}.>`;
  return [tokens, changesPrefix];
}

/** The key of a change event's subject, or undefined for the bare subject (the key is in a header) or another subject. */
export function keyOfChangeSubject(subject: string): string | undefined {
  return subject.startsWith(`${changesPrefix}.`) ? subject.slice(changesPrefix.length + 1) : undefined;
}

/** The first token of the client requests addressed to one node. */
export const nodeAddressedPrefix = 'kvn';

/** `kv.<op>.<key>` as addressed to `nodeId` alone: `kvn.<node-id>.<op>.<key>`. */
export function nodeAddressedSubject(nodeId: string, subject: string): string {
  if (!subject.startsWith(`${apiPrefix}.`)) throw new Error(`assertion: ${subject} is not a client subject`);
  return `${nodeAddressedPrefix}.${nodeId}.${subject.slice(apiPrefix.length + 1)}`;
}

/** The subject a node serves for requests addressed to it alone. */
export function nodeAddressedFilter(nodeId: string): string {
  return `${nodeAddressedPrefix}.${nodeId}.>`;
}

/** A request addressed to `nodeId` (`kvn.<node-id>.…`) as the client subject it stands for (`kv.…`); others unchanged. */
export function unaddressed(subject: string, nodeId: string): string {
  const prefix = `${nodeAddressedPrefix}.${nodeId}.`;
  return subject.startsWith(prefix) ? `${apiPrefix}.${subject.slice(prefix.length)}` : subject;
}

export const ClientOp = {
  Get: 'get',
  Put: 'put',
  Del: 'del',
  /** Where a key lives (`goddb owners`): answered by the node itself, no replica is asked. */
  Owners: 'owners',
  /** A live member hands its ranges to their next owners and exits (`goddb leave`); the key is its node id. */
  Leave: 'leave',
  /** A down member is removed and its ranges re-replicated (`goddb remove`); the key is its node id. */
  Remove: 'remove',
} as const;
export type ClientOp = (typeof ClientOp)[keyof typeof ClientOp];

/** The membership operations: their key is a node id, not a stored key. */
export type AdminOp = typeof ClientOp.Leave | typeof ClientOp.Remove;

export function isAdminOp(op: ClientOp): op is AdminOp {
  return op === ClientOp.Leave || op === ClientOp.Remove;
}

export const ReplicaOp = {
  Get: 'get',
  Put: 'put',
  Probe: 'probe',
  /** A page of an arc in key-hash order (issue 9: range moves pull from the members that hold it). */
  Range: 'range',
  /** Member records newer than the asker's digest (gossip's exchange with a few random peers each round). */
  Members: 'members',
  /** "Leave the cluster": `goddb leave` forwarded to the member itself. */
  Leave: 'leave',
  /** Delete keys still holding exactly the given dead versions (node/gc: tombstone and TTL purge). */
  Purge: 'purge',
  /** Anti-entropy (node/aae): tree hashes of an arc (AaeTreeRequest) and key digests of its segments (AaeKeysRequest). */
  Aae: 'aae',
  /** Conditional writes (node/paxos): prepare, propose and commit of one key's Paxos round. */
  Paxos: 'paxos',
  /** Key listing (node/keys): a page of a span's keys, with their versions less the values (KeysRequest). */
  Keys: 'keys',
} as const;
export type ReplicaOp = (typeof ReplicaOp)[keyof typeof ReplicaOp];

/** The subject of a key listing (`kv.keys`): no key; the prefix travels in KV-Prefix. */
export const keysSubject = `${apiPrefix}.keys`;

/** The serving ring as clients place keys with it (`kv.ring`, protocol/ring_map.ts): any node answers from memory. */
export const ringSubject = `${apiPrefix}.ring`;

export const Header = {
  Key: 'KV-Key',
  KeyB64: 'KV-Key-B64',
  R: 'KV-R',
  W: 'KV-W',
  Context: 'KV-Context',
  /** A put only when the key has no live value (create only): linearizable, through Paxos. */
  IfAbsent: 'KV-If-Absent',
  /** A put or delete only when the current context is exactly this one (a context a read returned). */
  IfMatch: 'KV-If-Match',
  /** A get through Paxos: linearizable with conditional writes (finishes one in progress first). */
  Serial: 'KV-Serial',
  Ttl: 'KV-TTL',
  Siblings: 'KV-Siblings',
  /**
   * A get under the `siblings` policy with several live values: their lengths in bytes, comma
   * separated, newest first; the payload is the values one after another (protocol/siblings_reply.ts).
   */
  SiblingLengths: 'KV-Sibling-Lengths',
  Acks: 'KV-Acks',
  /** Per-request sloppy quorum: 1/true or 0/false (strict: 503 rather than hints on fallbacks). */
  Sloppy: 'KV-Sloppy',
  /** Key listing (`kv.keys`): only keys that start with this. */
  Prefix: 'KV-Prefix',
  /** Key listing: the cursor a page answered, sent back for the next page; absent on the first. */
  KeysAfter: 'KV-Keys-After',
  /** Key listing: at most this many keys in the page (1 to limits.keysPageItemsMax). */
  KeysLimit: 'KV-Keys-Limit',
  /** Key listing: how many keys this page holds. */
  KeysCount: 'KV-Keys-Count',
  /** Key listing: on the last page, the keys listed in all. */
  KeysDone: 'KV-Keys-Done',
  /** Key listing: `base64url` when this page's keys are base64url (some key holds CR or LF). */
  KeysEncoding: 'KV-Keys-Encoding',
  /** Change feed: `put` or `del`. */
  Op: 'KV-Op',
  /** Change feed: the version's HLC timestamp (ms x 1000 + logical, decimal). */
  Hlc: 'KV-HLC',
  /** Change feed: the node that coordinated the write (breaks HLC ties, as last-writer-wins does). */
  Writer: 'KV-Writer',
  /** Change feed: the HLC time a put with a TTL expires at. */
  ExpiresHlc: 'KV-Expires-HLC',
  /** Change feed: the value's size in bytes when it was left out of the event (too large for max_payload). */
  ValueOmitted: 'KV-Value-Omitted',
  /**
   * The fingerprint of the serving ring the client holds: on `kv.ring`, the
   * answer leaves the tokens out when it is the node's; on a request the SDK
   * routed by it, a node whose ring differs puts its own in the reply.
   */
  Ring: 'KV-Ring',
} as const;

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
 * Why `key` is not a key, or undefined: empty, too long, or not valid UTF-8
 * text (see invalidUtf8KeyMessage). Any other key can be sent: in the
 * subject, in KV-Key, or else in KV-Key-B64 (see clientRequest).
 */
export function unsendableKey(key: string, keyBytesMax: number): string | undefined {
  if (key.length === 0) return 'the key is empty';
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > keyBytesMax) return `key of ${bytes} bytes is over the maximum of ${keyBytesMax}`;
  if (replacementOrLoneSurrogate.test(key)) return invalidUtf8KeyMessage;
  return undefined;
}

/**
 * True when a KV-Key header carries `key` exactly: nats.js trims header
 * values (all Unicode white space) and refuses CR and LF, and other clients
 * may handle control characters differently, so none of those.
 */
export function isHeaderSafeKey(key: string): boolean {
  return key.length > 0 && key.trim() === key && !/[\u0000-\u001f\u007f]/.test(key);
}

export interface ClientRequest {
  subject: string;
  /** The key as a KV-Key header, when it travels there. */
  keyHeader?: string;
  /** The key as a KV-Key-B64 header, when it travels there. */
  keyB64Header?: string;
}

/**
 * The subject and key header a client uses for `op` on `key`: the subject
 * when the key is subject-safe and short, else KV-Key when a header carries
 * it exactly, else KV-Key-B64.
 */
export function clientRequest(op: ClientOp, key: string): ClientRequest {
  if (isSubjectSafeKey(key) && Buffer.byteLength(key, 'utf8') <= limits.subjectKeyBytesMax) return { subject: `${apiPrefix}.${op}.${key}` };
  if (isHeaderSafeKey(key)) return { subject: `${apiPrefix}.${op}`, keyHeader: key };
  return { subject: `${apiPrefix}.${op}`, keyB64Header: Buffer.from(key, 'utf8').toString('base64url') };
}

/** Characters of a KV-Key-B64 value: base64 of the largest key, with padding. */
const keyB64CharsMax = 4 * Math.ceil(limits.keyBytesMax / 3);
const base64url = /^[A-Za-z0-9_-]*={0,2}$/;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The key a KV-Key-B64 value carries, or why it carries none. */
export function decodeKeyB64(value: string): string | { error: string } {
  const name = Header.KeyB64;
  if (value.length > keyB64CharsMax) return { error: `${name} holds ${value.length} characters: more than any key of at most ${limits.keyBytesMax} bytes needs` };
  const digits = value.replace(/=+$/, '');
  if (!base64url.test(value) || digits.length % 4 === 1) return { error: `${name} is not base64url (A-Z a-z 0-9 - _, padding optional)` };
  try {
    return utf8.decode(Buffer.from(digits, 'base64url'));
  } catch {
    return { error: `${name} does not decode to valid UTF-8: keys are UTF-8 text` };
  }
}

/**
 * The op and key of a client request, or a reason it is malformed. A key
 * header (KV-Key or KV-Key-B64) is read only on the bare subject; a key
 * given twice is an error.
 */
export function parseClientSubject(
  subject: string,
  keyHeader: string | undefined,
  keyB64Header?: string,
): { op: ClientOp; key: string } | { error: string } {
  const prefix = `${apiPrefix}.`;
  if (!subject.startsWith(prefix)) return { error: `not a client subject: ${subject}` };
  const rest = subject.slice(prefix.length);
  const dot = rest.indexOf('.');
  const opToken = dot === -1 ? rest : rest.slice(0, dot);
  if (!(Object.values(ClientOp) as string[]).includes(opToken)) {
    return { error: `unknown operation: ${opToken} (the operations are ${Object.values(ClientOp).join(', ')})` };
  }
  const op = opToken as ClientOp;
  const missing = { error: `the key is missing: use ${prefix}${op}.<key>, the ${Header.Key} header or the ${Header.KeyB64} header` };
  if (dot === -1) {
    if (keyHeader !== undefined && keyB64Header !== undefined) return { error: `the key is given twice: in ${Header.Key} and in ${Header.KeyB64}` };
    if (keyB64Header !== undefined) {
      if (keyB64Header.length === 0) return missing;
      const key = decodeKeyB64(keyB64Header);
      return typeof key === 'string' ? checkedNodeId(op, key) : key;
    }
    if (keyHeader === undefined || keyHeader.length === 0) return missing;
    return checkedNodeId(op, keyHeader);
  }
  if (keyHeader !== undefined) return { error: `the key is given twice: in the subject and in ${Header.Key}` };
  if (keyB64Header !== undefined) return { error: `the key is given twice: in the subject and in ${Header.KeyB64}` };
  const key = rest.slice(dot + 1);
  if (key.length === 0) return missing;
  return checkedNodeId(op, key);
}

/** A leave or remove names a node: one token, as node ids are (isValidToken). */
function checkedNodeId(op: ClientOp, key: string): { op: ClientOp; key: string } | { error: string } {
  if (!isAdminOp(op) || isValidToken(key)) return { op, key };
  const shown = key.length > 64 ? `${key.slice(0, 64)}...` : key;
  return { error: `not a node id: ${JSON.stringify(shown)} (${op} takes a node id: 1 to 64 letters, digits, '-' or '_')` };
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

/**
 * True for subjects a node must never reply on: its own namespace (isNodeSubject) and the change
 * feed, where a node publishes with rights a client lacks. A reply there would carry a value the
 * client chose as a forged change event.
 */
export function isNodeOnlySubject(subject: string): boolean {
  return isNodeSubject(subject) || subject === changesPrefix || subject.startsWith(`${changesPrefix}.`);
}

/**
 * The first tokens of a node's reply subjects (nats.js `inboxPrefix`): outside `_INBOX.>`, which
 * the NATS client role may subscribe to, so no client reads what replicas answer each other.
 */
export const nodeInboxRoot = '_INBOX_GOD';

export function nodeInboxPrefix(nodeId: string): string {
  return `${nodeInboxRoot}.${nodeId}`;
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
