/**
 * `goddb leave <node-id>` and `goddb remove <node-id>`: ask for the change
 * (kv.leave / kv.remove), then watch it through the nodes' statistics
 * (listNodes, about every 500 ms) until it is done (client/membership_progress.ts):
 * a cli-progress bar of ranges done/total with the bytes moved on a
 * terminal, one plain line per change of the figures otherwise, both on
 * stderr so that stdout holds only the result (`--json`: the final
 * `goddb status --json`). `--no-wait` prints the member's state once the
 * request is accepted. Exit 0 when done; 1 when refused (`error <code>: ...`)
 * or not done within --timeout (504); 2 and 3 as for every client command.
 */
import cliProgress from 'cli-progress';
import { clusterStatus, type GodDbClient, type NodeInfo } from '../client/index.js';
import { changeProgress, finalState, type ChangeProgress, type MembershipChangeKind } from '../client/membership_progress.js';
import { formatBytes, movingCell } from '../client/ring_status.js';
import { ErrorCode } from '../core/errors.js';
import { CliError, ExitCode, formatError, openClient, type ClientFlags } from './client_options.js';

export interface MembershipChangeFlags extends Omit<ClientFlags, 'timeout'> {
  json?: boolean;
  /** False with --no-wait. */
  wait: boolean;
  /** How long to watch the change: ms, or with a unit ('90s', '10m'). */
  timeout: string;
}

/** How long one poll collects the nodes' answers, in ms: also the interval between polls. */
export const pollWaitMs = 500;
/** The bound on connecting and on the leave/remove request itself, in ms (the client commands' --timeout default). */
const requestTimeoutMsMax = 5000;

const durationUnitsMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A duration in ms: a whole number of ms, or of a unit ('90s', '10m', '1h'); undefined when it is none or 0. */
export function parseDurationMs(text: string): number | undefined {
  const m = /^\s*(\d+)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!m) return undefined;
  const ms = Number(m[1]) * durationUnitsMs[m[2] ?? 'ms']!;
  return Number.isSafeInteger(ms) && ms > 0 ? ms : undefined;
}

/** A line for people: where the change is ('n3 leaving: 2/5 ranges 1.2 MiB'). */
export function progressLine(p: ChangeProgress): string {
  const state = p.gone ? 'gone from the ring' : (p.state ?? 'state unknown');
  const moving = p.transfers === 0 ? 'nothing moving' : movingCell(p.figures);
  const settled = p.kind === 'remove' && p.settled === false ? ', not settled' : '';
  return `${p.node} ${state}: ${moving}${settled}`;
}

export interface WatchOptions {
  /** One look at the cluster; it may take up to `waitMs`. */
  poll: (waitMs: number) => Promise<NodeInfo[]>;
  nowMs: () => number;
  deadlineMs: number;
  onProgress: (p: ChangeProgress) => void;
}

/** Polls until the change is done (its last progress and nodes) or the deadline passes (done: false). */
export async function watchChange(kind: MembershipChangeKind, nodeId: string, opts: WatchOptions): Promise<{ progress: ChangeProgress | undefined; nodes: NodeInfo[] }> {
  let last: { progress: ChangeProgress | undefined; nodes: NodeInfo[] } = { progress: undefined, nodes: [] };
  for (;;) {
    const leftMs = opts.deadlineMs - opts.nowMs();
    if (leftMs <= 0) return last;
    const nodes = await opts.poll(Math.min(pollWaitMs, leftMs));
    const progress = changeProgress(nodes, kind, nodeId);
    last = { progress, nodes };
    opts.onProgress(progress);
    if (progress.done) return last;
  }
}

interface ProgressView {
  show(p: ChangeProgress): void;
  stop(): void;
}

/** A bar on a terminal; a line per change of the figures otherwise. */
function progressView(kind: MembershipChangeKind, nodeId: string, stream: NodeJS.WriteStream): ProgressView {
  if (stream.isTTY !== true) {
    let shown = '';
    return {
      show: (p) => {
        const line = progressLine(p);
        if (line !== shown) stream.write(`${line}\n`);
        shown = line;
      },
      stop: () => undefined,
    };
  }
  const bar = new cliProgress.SingleBar(
    { stream, format: `${kind} ${nodeId} [{bar}] {value}/{total} ranges | {bytes} | {state}`, hideCursor: true, fps: 5 },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    show: (p) => {
      const payload = { bytes: formatBytes(p.figures.bytesDone), state: p.gone ? 'gone' : (p.state ?? '?') };
      if (!started) {
        started = true;
        bar.start(p.figures.rangesTotal, p.figures.rangesDone, payload);
        return;
      }
      if (bar.getTotal() !== p.figures.rangesTotal) bar.setTotal(p.figures.rangesTotal);
      bar.update(p.figures.rangesDone, payload);
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}

export async function runMembershipChange(kind: MembershipChangeKind, nodeId: string, flags: MembershipChangeFlags): Promise<number> {
  const timeoutMs = parseDurationMs(flags.timeout);
  if (timeoutMs === undefined) {
    process.stderr.write(`${formatError(new CliError(ErrorCode.BadRequest, `--timeout must be a positive duration: ms, or like 90s, 10m, 1h; got ${flags.timeout}`))}\n`);
    return ExitCode.Failed;
  }
  const deadlineMs = Date.now() + timeoutMs;
  const opened = await openClient({ ...flags, timeout: String(Math.min(requestTimeoutMsMax, timeoutMs)) });
  if ('exitCode' in opened) return opened.exitCode;
  const { client } = opened;
  try {
    const change = kind === 'leave' ? await client.leave(nodeId) : await client.remove(nodeId);
    if (!flags.wait) {
      process.stdout.write(flags.json ? `${JSON.stringify(change, null, 2)}\n` : `${change.node} ${change.state}\n`);
      return ExitCode.Ok;
    }
    return await watchAndReport(client, kind, nodeId, flags, deadlineMs, timeoutMs);
  } catch (err) {
    process.stderr.write(`${formatError(err)}\n`);
    return ExitCode.Failed;
  } finally {
    await client.close().catch(() => undefined);
  }
}

async function watchAndReport(client: GodDbClient, kind: MembershipChangeKind, nodeId: string, flags: MembershipChangeFlags, deadlineMs: number, timeoutMs: number): Promise<number> {
  const view = progressView(kind, nodeId, process.stderr);
  let result: Awaited<ReturnType<typeof watchChange>>;
  try {
    result = await watchChange(kind, nodeId, { poll: (waitMs) => client.nodes({ waitMs }), nowMs: Date.now, deadlineMs, onProgress: (p) => view.show(p) });
  } finally {
    view.stop();
  }
  const { progress, nodes } = result;
  if (progress?.done !== true) {
    const where = progress === undefined ? 'no node answered' : progressLine(progress);
    const message = `${kind} of ${nodeId} not done within ${timeoutMs}ms (${where}); it goes on: watch it with goddb status`;
    process.stderr.write(`${formatError(new CliError(ErrorCode.Timeout, message))}\n`);
    return ExitCode.Failed;
  }
  const settled = kind === 'remove' ? ', every node settled' : '';
  process.stdout.write(flags.json ? `${JSON.stringify(clusterStatus(nodes), null, 2)}\n` : `${nodeId} ${progress.gone ? finalState[kind] : progress.state}${settled}\n`);
  return ExitCode.Ok;
}
