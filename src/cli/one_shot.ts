/**
 * `goddb get|put|del|owners|status`: one request, for scripts. Exit 0 on success;
 * exit 1 with `error <code>: <message>` on stderr when the request fails (a
 * missing key is 404); 3 when NATS cannot be reached (see ExitCode).
 */
import { clusterStatus, summarizeRequests, type GodDbClient, type NodeInfo, type OwnersReport } from '../client/index.js';
import { movingCell, stateCell, statusCell } from '../client/ring_status.js';
import type { AaeReport } from '../protocol/placement_report.js';
import { ConditionFailedError, ErrorCode } from '../core/errors.js';
import { limits } from '../core/limits.js';
import { ttlSecondsOf } from '../protocol/ttl.js';
import { CliError, ExitCode, formatError, openClient, type ClientFlags } from './client_options.js';

export interface QuorumFlags extends ClientFlags {
  readQuorum?: string;
  writeQuorum?: string;
  context?: string;
  /** `goddb put --ttl`: seconds or a duration ('30s', '5m'). */
  ttl?: string;
  /** `goddb get --serial`: through Paxos (KV-Serial). */
  serial?: boolean;
  /** `goddb get --print-context`: the context on stderr, for a later --if-match or --context. */
  printContext?: boolean;
  /** `goddb put --if-absent`: create only (KV-If-Absent). */
  ifAbsent?: boolean;
  /** `goddb put|del --if-match <context>` (KV-If-Match). */
  ifMatch?: string;
}

function quorum(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1) throw new CliError(ErrorCode.BadRequest, `${flag} must be a positive integer, got ${value}`);
  return n;
}

/** Connects, runs `action`, closes; returns the exit code. */
async function withClient(flags: ClientFlags, action: (client: GodDbClient) => Promise<void>): Promise<number> {
  const opened = await openClient(flags);
  if ('exitCode' in opened) return opened.exitCode;
  const { client } = opened;
  try {
    await action(client);
    return ExitCode.Ok;
  } catch (err) {
    process.stderr.write(`${formatError(err)}\n`);
    // A failed condition: what the key holds now, for the next --if-match.
    if (err instanceof ConditionFailedError && err.context !== undefined) process.stderr.write(`context ${err.context}\n`);
    return ExitCode.Failed;
  } finally {
    await client.close().catch(() => undefined);
  }
}

export function runGet(key: string, flags: QuorumFlags): Promise<number> {
  return withClient(flags, async (client) => {
    const r = quorum(flags.readQuorum, '-r');
    const got = await client.get(key, { ...(r === undefined ? {} : { r }), ...(flags.serial === true ? { serial: true } : {}) });
    if (got === null) throw new CliError(ErrorCode.NotFound, 'not found');
    if (flags.printContext === true) process.stderr.write(`context ${got.context}\n`);
    // conflictPolicy siblings: the newest value is printed; all of them are in the SDK's values (README "Siblings").
    if (got.siblings > 1) process.stderr.write(`siblings ${got.siblings}: printed the newest; a put with --context ${got.context} resolves them\n`);
    await write(got.value);
    // A newline only for people; scripts get the bytes exactly.
    if (process.stdout.isTTY) await write(new Uint8Array([0x0a]));
  });
}

export function runPut(key: string, value: string, flags: QuorumFlags): Promise<number> {
  return withClient(flags, async (client) => {
    const w = quorum(flags.writeQuorum, '-w');
    const ttl = flags.ttl === undefined ? undefined : ttlSecondsOf(flags.ttl);
    if (flags.ttl !== undefined && ttl === undefined) {
      throw new CliError(ErrorCode.BadRequest, `--ttl must be whole seconds from 1 to ${limits.ttlSecondsMax}, as seconds or like 30s, 5m, 1h, 2d; got ${flags.ttl}`);
    }
    const data = value === '-' ? await readStdin() : value;
    await client.put(key, data, { ...(w === undefined ? {} : { w }), ...(flags.context ? { context: flags.context } : {}), ...(ttl === undefined ? {} : { ttl }), ...conditionOf(flags) });
  });
}

export function runDel(key: string, flags: QuorumFlags): Promise<number> {
  return withClient(flags, async (client) => {
    const w = quorum(flags.writeQuorum, '-w');
    await client.del(key, { ...(w === undefined ? {} : { w }), ...(flags.context ? { context: flags.context } : {}), ...conditionOf(flags) });
  });
}

/** --if-absent / --if-match as SDK options; 400 for both at once (the node would refuse them too). */
function conditionOf(flags: QuorumFlags): { ifAbsent?: boolean; ifMatch?: string } {
  if (flags.ifAbsent === true && flags.ifMatch !== undefined) throw new CliError(ErrorCode.BadRequest, '--if-absent and --if-match exclude each other');
  if (flags.ifAbsent === true) return { ifAbsent: true };
  return flags.ifMatch === undefined ? {} : { ifMatch: flags.ifMatch };
}

function write(bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(bytes, (err) => (err ? reject(err) : resolve()));
  });
}

async function readStdin(): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Where a key lives, as the answering node's coordinator sees it: a small table, or the JSON with --json. */
export function runOwners(key: string, flags: ClientFlags & { json?: boolean }): Promise<number> {
  return withClient(flags, async (client) => {
    const report = await client.owners(key);
    process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : ownersTable(report));
  });
}

export function ownersTable(r: OwnersReport): string {
  const head = `key   ${r.key}\nhash  ${r.hash}\nseen  by ${r.node} (N=${r.replication})\n\n`;
  const rows: string[][] = [['#', 'node', 'role', 'status', 'stands-in-for']];
  r.replicas.forEach((p, i) => rows.push([String(i + 1), p.node, 'replica', p.up ? 'up' : 'down', '-']));
  for (const f of r.fallbacks) rows.push(['-', f.node, 'fallback', 'up', f.standsInFor]);
  for (const p of r.pending) rows.push(['-', p, 'pending', '-', '-']);
  return head + table(rows);
}

/**
 * One line per member of the ring and per node that answers: id, cluster,
 * version, start time and the requests it answered, from its own counts
 * (the ones its /metrics shows): per operation, then 404s (a normal answer),
 * other 4xx (refused: the request was wrong) and 5xx (errors: the cluster
 * could not answer); then its membership state, liveness, virtual nodes and
 * share of the ring as the answering nodes see it, the keys it holds by its
 * own count, and the ranges and bytes moving to or from it (last, since
 * that cell holds spaces). '-' where nobody reported a value (a member that
 * is down does not answer; a node of an earlier version reports no ring,
 * no state, or no keys).
 */
export function runStatus(flags: ClientFlags & { wait: string; json?: boolean }): Promise<number> {
  return withClient(flags, async (client) => {
    const waitMs = Number(flags.wait);
    if (!Number.isInteger(waitMs) || waitMs < 1) throw new CliError(ErrorCode.BadRequest, `--wait must be a positive integer, got ${flags.wait}`);
    const nodes = await client.nodes({ waitMs });
    if (nodes.length === 0) throw new CliError(ErrorCode.QuorumNotMet, `no GoD-DB node answered within ${waitMs}ms`);
    process.stdout.write(flags.json ? `${JSON.stringify(clusterStatus(nodes), null, 2)}\n` : statusTable(nodes));
  });
}

export const statusColumns = ['id', 'cluster', 'version', 'started', 'gets', 'puts', 'dels', 'not-found-404', 'refused-4xx', 'errors-5xx', 'state', 'liveness', 'vnodes', 'owns', 'keys', 'moving', 'hints', 'aae'] as const;

export function statusTable(nodes: readonly NodeInfo[]): string {
  const rows: string[][] = [[...statusColumns]];
  const answered = new Map(nodes.map((n) => [n.cluster + '\0' + n.nodeId, n]));
  for (const m of clusterStatus(nodes).members) {
    const n = answered.get(m.cluster + '\0' + m.id);
    const s = n === undefined ? undefined : summarizeRequests(n.requests);
    const counts = s === undefined ? Array(6).fill('-') : [s.byOp['get'] ?? 0, s.byOp['put'] ?? 0, s.byOp['del'] ?? 0, s.notFound, s.refused, s.errors].map(String);
    const ring = [stateCell(m), statusCell(m), m.virtualNodes === null ? '-' : String(m.virtualNodes), m.owns === null ? '-' : `${m.owns.toFixed(1)}%`, m.keys === null ? '-' : String(m.keys), movingCell(m.moving), m.hints === null ? '-' : String(m.hints), aaeCell(m.aae)];
    rows.push([m.id, m.cluster, n?.version ?? '-', n?.started ?? '-', ...counts, ...ring]);
  }
  return table(rows);
}

/** Anti-entropy for a table cell: keys repaired, with the trees built so far while some are not ('12(5/30)'); 'off' when disabled. */
function aaeCell(a: AaeReport | null): string {
  if (a === null) return '-';
  if (!a.enabled) return 'off';
  return a.treesReady < a.treesTotal ? `${a.keysRepaired}(${a.treesReady}/${a.treesTotal})` : String(a.keysRepaired);
}

/** Columns padded to their widest cell, two spaces apart. */
function table(rows: readonly string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}
