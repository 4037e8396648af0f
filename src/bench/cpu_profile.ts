/**
 * Reads a V8 CPU profile (`node --cpu-prof`, a `.cpuprofile` file: the
 * bench's workers write one each with GODDB_BENCH_WORKER_NODE_OPTIONS) and
 * says where the busy time went: self time by module and by function, and
 * inclusive time of GoD-DB's own functions, over the whole profile or a
 * window of it (seconds from its start), so that a profile of a bench run
 * can be read over one measurement's window alone. Samples of `(idle)` are
 * not busy time; V8 samples the main thread only, and a native function's
 * samples include the waits of the system calls it makes (see the README's
 * "on-CPU" notes). Pure: scripts/cpu-profile.js reads the files.
 */

export interface CallFrame {
  functionName: string;
  url: string;
  /** 0-based. */
  lineNumber: number;
}

export interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  /** The node id of each sample, in time order. */
  samples: number[];
  /** µs since the previous sample (the first: since startTime). */
  timeDeltas: number[];
}

export interface Share {
  name: string;
  samples: number;
  /** Of the busy samples in the window, 0 to 100. */
  percent: number;
}

export interface ProfileSummary {
  /** Samples in the window, idle ones included. */
  samples: number;
  busy: number;
  byModule: Share[];
  byFunction: Share[];
  /** GoD-DB's own functions (under src/), each counted once per sample however deep it recurses. */
  inclusive: Share[];
  /** Busy samples in each whole second of the profile (the whole profile, whatever the window): where the load was. */
  busyPerSecond: number[];
}

export interface ProfileWindow {
  /** Seconds from the profile's start; samples before are left out. */
  fromS?: number;
  /** Seconds from the profile's start; samples after are left out. */
  toS?: number;
}

const idleName = '(idle)';

/** Where a frame's code lives: the npm package, GoD-DB's module (src/...), a node: module, or (native). */
export function moduleOf(url: string): string {
  if (url === '') return '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg) return pkg[1]!;
  const own = /\/dist\/(src\/.*)\.js$/.exec(url);
  if (own) return own[1]!;
  return url.replace(/^file:\/\//, '');
}

function frameName(f: CallFrame): string {
  return `${f.functionName === '' ? '(anonymous)' : f.functionName} ${moduleOf(f.url)}${f.url === '' ? '' : `:${f.lineNumber + 1}`}`;
}

/** Checks the fields this module reads, so a wrong file is a clear error and not a crash later. */
export function asCpuProfile(raw: unknown): CpuProfile {
  const p = raw as Partial<CpuProfile> | null;
  if (p === null || typeof p !== 'object' || !Array.isArray(p.nodes) || !Array.isArray(p.samples) || !Array.isArray(p.timeDeltas)) {
    throw new Error('not a V8 CPU profile: expected nodes, samples and timeDeltas');
  }
  if (p.samples.length !== p.timeDeltas.length) throw new Error(`not a V8 CPU profile: ${p.samples.length} samples but ${p.timeDeltas.length} time deltas`);
  const ids = new Set<number>();
  for (const n of p.nodes) {
    if (typeof n?.id !== 'number' || typeof n.callFrame?.functionName !== 'string' || typeof n.callFrame.url !== 'string') {
      throw new Error('not a V8 CPU profile: a node without an id or a call frame');
    }
    ids.add(n.id);
  }
  const unknown = p.samples.find((s) => !ids.has(s));
  if (unknown !== undefined) throw new Error(`not a V8 CPU profile: a sample of node ${String(unknown)}, which it does not hold`);
  return p as CpuProfile;
}

export function summarizeProfile(profile: CpuProfile, window: ProfileWindow = {}): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const fromUs = (window.fromS ?? 0) * 1e6;
  const toUs = (window.toS ?? Number.POSITIVE_INFINITY) * 1e6;

  const selfById = new Map<number, number>();
  const busyPerSecond: number[] = [];
  let atUs = 0;
  let samples = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    atUs += profile.timeDeltas[i]!;
    const id = profile.samples[i]!;
    const idle = byId.get(id)!.callFrame.functionName === idleName;
    if (!idle) {
      const second = Math.floor(atUs / 1e6);
      while (busyPerSecond.length <= second) busyPerSecond.push(0);
      busyPerSecond[second]!++;
    }
    if (atUs < fromUs || atUs > toUs) continue;
    samples++;
    if (!idle) selfById.set(id, (selfById.get(id) ?? 0) + 1);
  }

  const byModule = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let busy = 0;
  const add = (m: Map<string, number>, key: string, n: number) => m.set(key, (m.get(key) ?? 0) + n);
  for (const [id, count] of selfById) {
    busy += count;
    const frame = byId.get(id)!.callFrame;
    add(byModule, moduleOf(frame.url), count);
    add(byFunction, frameName(frame), count);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const f = byId.get(at)!.callFrame;
      if (!moduleOf(f.url).startsWith('src/')) continue;
      const name = frameName(f);
      if (seen.has(name)) continue; // recursion counts once
      seen.add(name);
      add(inclusive, name, count);
    }
  }
  const shares = (m: Map<string, number>): Share[] =>
    [...m].map(([name, n]) => ({ name, samples: n, percent: busy === 0 ? 0 : (100 * n) / busy })).sort((a, b) => b.samples - a.samples || (a.name < b.name ? -1 : 1));
  return { samples, busy, byModule: shares(byModule), byFunction: shares(byFunction), inclusive: shares(inclusive), busyPerSecond };
}

export function formatSummary(s: ProfileSummary, top = 25): string {
  const rows = (list: Share[]) => list.slice(0, top).map((x) => `${x.percent.toFixed(1).padStart(5)}%  ${x.name}`);
  const busyPercent = s.samples === 0 ? 0 : (100 * s.busy) / s.samples;
  return [
    `${s.samples} samples, ${s.busy} busy (${busyPercent.toFixed(1)}%); busy samples per second: ${s.busyPerSecond.join(' ')}`,
    '-- self time by module (% of busy)',
    ...rows(s.byModule),
    '-- self time by function',
    ...rows(s.byFunction),
    '-- inclusive time of GoD-DB functions',
    ...rows(s.inclusive),
  ].join('\n');
}
