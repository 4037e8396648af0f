/**
 * What a node says about placement, as JSON: the answer to `kv.owners.<key>`
 * (`goddb owners`) and the `ring` in its $SRV.STATS endpoint data (`goddb
 * status`). Built from core/placement.ts; parsed defensively on the client,
 * since it is another program's JSON (a node of another version may send
 * less, or nothing).
 */
import type { Transfer } from '../core/handoff.js';
import type { Placement } from '../core/placement.js';
import { limits } from '../core/limits.js';

export interface OwnersReport {
  key: string;
  /** The key's 64-bit ring position, 16 hex digits. */
  hash: string;
  /** The node that answered: this is its coordinator's view. */
  node: string;
  /** N, the replicas a key has. */
  replication: number;
  /** The preference list in order, with each replica's liveness. */
  replicas: { node: string; up: boolean }[];
  /** Healthy members beyond the list, each with the down replica it stands in for. */
  fallbacks: { node: string; standsInFor: string }[];
  /** Members that will own the key once a range move ends (writes reach them meanwhile). */
  pending: string[];
}

export interface RingMemberReport {
  id: string;
  /** Liveness as the reporting node's failure detector sees it: 'up' or 'down'. */
  status: string;
  /**
   * Membership state as the reporting node sees it: 'joining', 'up',
   * 'leaving', 'left' or 'removed' (apart from liveness). Absent from a node
   * of an earlier version, and from a parsed report whose value is not a string.
   */
  state?: string;
  virtualNodes: number;
  /** Share of the keys held as one of their N replicas, in percent (all members sum to N x 100). */
  owns: number;
}

/** A pull under way on the reporting node, from one source (core/handoff.ts Transfer; null where not known yet). */
export interface TransferReport {
  kind: string;
  source: string;
  target: string;
  state: string;
  keysSent: number;
  bytesSent: number;
  keysTotal: number | null;
  bytesTotal: number | null;
  /** Wall-clock ms when it started. */
  startedMs: number;
  /** Ranges of the ring this transfer has finished and has to move in all (absent from a node of an earlier version). */
  rangesDone?: number;
  rangesTotal?: number;
}

export function transferReport(t: Transfer & { rangesDone?: number; rangesTotal?: number }): TransferReport {
  const report: TransferReport = { kind: t.kind, source: t.source, target: t.target, state: t.state, keysSent: t.keysSent, bytesSent: t.bytesSent, keysTotal: t.keysTotal ?? null, bytesTotal: t.bytesTotal ?? null, startedMs: t.startedMs };
  if (t.rangesDone !== undefined && t.rangesTotal !== undefined) Object.assign(report, { rangesDone: t.rangesDone, rangesTotal: t.rangesTotal });
  return report;
}

export interface RingReport {
  replication: number;
  /** False while a range is moving as the reporting node sees it (node/handoff/moves.ts). */
  settled: boolean;
  members: RingMemberReport[];
  /** Transfers under way from the reporting node (absent from a node of an earlier version). */
  transfers?: TransferReport[];
  /** Keys the reporting node holds (its engine's count, cached); absent from a node of an earlier version or before the first count. */
  keys?: number;
  /** Hints the reporting node keeps, per member they are for (sloppy quorum, node/hints); absent from a node of an earlier version. */
  hints?: Record<string, number>;
  /** Anti-entropy on the reporting node (node/aae); absent from a node of an earlier version. */
  aae?: AaeReport;
}

/** Anti-entropy progress of one node: its trees (ready of all), comparisons, keys repaired, segments differing in the last round. */
export interface AaeReport {
  enabled: boolean;
  treesReady: number;
  treesTotal: number;
  treesCompared: number;
  keysRepaired: number;
  /** Segments that differed in the last comparison of each arc, summed. */
  segmentsDiffering: number;
}

export function hashHex(hash: bigint): string {
  return hash.toString(16).padStart(16, '0');
}

export function ownersReport(key: string, node: string, replication: number, p: Placement): OwnersReport {
  return {
    key,
    hash: hashHex(p.keyHash),
    node,
    replication,
    replicas: p.replicas.map((r) => ({ node: r.node, up: r.up })),
    fallbacks: p.fallbacks.map((f) => ({ node: f.node, standsInFor: f.standsInFor })),
    pending: [...p.pending],
  };
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function objects(v: unknown): Json[] | undefined {
  return Array.isArray(v) && v.every(isObject) ? (v as Json[]) : undefined;
}

function str(v: unknown): v is string {
  return typeof v === 'string';
}

/** An owners answer, or undefined when `raw` is not one. */
export function parseOwnersReport(raw: unknown): OwnersReport | undefined {
  if (!isObject(raw)) return undefined;
  const replicas = objects(raw['replicas']);
  const fallbacks = objects(raw['fallbacks']);
  const pending = raw['pending'];
  if (!str(raw['key']) || !str(raw['hash']) || !str(raw['node']) || typeof raw['replication'] !== 'number') return undefined;
  if (!replicas?.every((r) => str(r['node']) && typeof r['up'] === 'boolean')) return undefined;
  if (!fallbacks?.every((f) => str(f['node']) && str(f['standsInFor']))) return undefined;
  if (!Array.isArray(pending) || !pending.every(str)) return undefined;
  return {
    key: raw['key'],
    hash: raw['hash'],
    node: raw['node'],
    replication: raw['replication'],
    replicas: replicas.map((r) => ({ node: r['node'] as string, up: r['up'] as boolean })),
    fallbacks: fallbacks.map((f) => ({ node: f['node'] as string, standsInFor: f['standsInFor'] as string })),
    pending: [...pending],
  };
}

/** A node's ring report, or undefined (a node of an earlier version reports none). */
export function parseRingReport(raw: unknown): RingReport | undefined {
  if (!isObject(raw) || typeof raw['replication'] !== 'number' || typeof raw['settled'] !== 'boolean') return undefined;
  const members = objects(raw['members']);
  if (!members) return undefined;
  const out: RingMemberReport[] = [];
  for (const m of members) {
    if (!str(m['id']) || !str(m['status']) || typeof m['virtualNodes'] !== 'number' || typeof m['owns'] !== 'number') continue;
    const member: RingMemberReport = { id: m['id'], status: m['status'], virtualNodes: m['virtualNodes'], owns: m['owns'] };
    if (str(m['state'])) member.state = m['state'];
    out.push(member);
  }
  const report: RingReport = { replication: raw['replication'], settled: raw['settled'], members: out };
  const transfers = objects(raw['transfers']);
  if (transfers) report.transfers = transfers.filter(isTransferReport).map(transferOf);
  if (count(raw['keys'])) report.keys = raw['keys'] as number;
  const hints = hintCounts(raw['hints']);
  if (hints !== undefined) report.hints = hints;
  const aae = aaeReportOf(raw['aae']);
  if (aae !== undefined) report.aae = aae;
  return report;
}

/** An anti-entropy report when every field is there and a count; undefined otherwise. */
function aaeReportOf(v: unknown): AaeReport | undefined {
  if (!isObject(v) || typeof v['enabled'] !== 'boolean') return undefined;
  const fields = ['treesReady', 'treesTotal', 'treesCompared', 'keysRepaired', 'segmentsDiffering'] as const;
  if (!fields.every((f) => count(v[f]))) return undefined;
  const out = { enabled: v['enabled'] } as AaeReport;
  for (const f of fields) out[f] = v[f] as number;
  return out;
}

const count = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** Hint counts per member id: the entries that are counts, at most membersMax of them; undefined when not a map. */
function hintCounts(v: unknown): Record<string, number> | undefined {
  if (!isObject(v)) return undefined;
  const out: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const [id, n] of Object.entries(v).slice(0, limits.membersMax)) if (count(n)) out[id] = n as number;
  return { ...out };
}

function isTransferReport(t: Json): t is Json & TransferReport {
  if (![t['kind'], t['source'], t['target'], t['state']].every(str)) return false;
  if (![t['keysSent'], t['bytesSent'], t['startedMs']].every(count)) return false;
  return [t['keysTotal'], t['bytesTotal']].every((v) => v === null || count(v));
}

/** The fields of a transfer report and nothing else; range counts only when both are counts and done <= total. */
function transferOf(t: Json & TransferReport): TransferReport {
  const out: TransferReport = { kind: t.kind, source: t.source, target: t.target, state: t.state, keysSent: t.keysSent, bytesSent: t.bytesSent, keysTotal: t.keysTotal, bytesTotal: t.bytesTotal, startedMs: t.startedMs };
  const done = t['rangesDone'];
  const total = t['rangesTotal'];
  if (count(done) && count(total) && (done as number) <= (total as number)) {
    out.rangesDone = done as number;
    out.rangesTotal = total as number;
  }
  return out;
}
