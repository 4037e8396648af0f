/**
 * Issue 9, the operator surface: membership state and moving ranges in
 * `goddb status` (client/ring_status.ts), and how far a leave or a remove
 * has got (client/membership_progress.ts, cli/membership_change.ts), from
 * NodeInfo values, without a cluster.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NodeInfo } from '../../src/client/index.js';
import { changeProgress } from '../../src/client/membership_progress.js';
import { clusterStatus, formatBytes, movingCell, stateCell } from '../../src/client/ring_status.js';
import { parseDurationMs, progressLine, watchChange } from '../../src/cli/membership_change.js';
import { statusColumns, statusTable } from '../../src/cli/one_shot.js';
import { parseRingReport, type RingMemberReport, type TransferReport } from '../../src/protocol/placement_report.js';

const mib = 1024 * 1024;

function transfer(source: string, target: string, f: Partial<TransferReport> = {}): TransferReport {
  return { kind: 'ownership', source, target, state: 'running', keysSent: 10, bytesSent: mib, keysTotal: null, bytesTotal: null, startedMs: 5, ...f };
}

/** A node's statistics: its ring with each member's state (absent when `states` lacks it), settled unless transfers run. */
function node(nodeId: string, states: Record<string, string | undefined>, transfers: TransferReport[] = [], settled = transfers.length === 0): NodeInfo {
  const members: RingMemberReport[] = Object.entries(states).map(([id, state]) => ({ id, status: 'up', virtualNodes: 8, owns: 75, ...(state === undefined ? {} : { state }) }));
  return { nodeId, cluster: 'c', version: '0.1.0', started: 't', requests: {}, ring: { replication: 3, settled, members, transfers, keys: 1 } };
}

describe('goddb status - membership state and moving ranges', () => {
  it('status - the state is agreed like liveness: one value, disputed with each view, null from nodes of an earlier version', () => {
    const nodes = [
      node('n1', { n1: 'up', n2: 'leaving', n3: 'up', n4: undefined }),
      node('n2', { n1: 'up', n2: 'leaving', n3: 'joining', n4: undefined }),
    ];
    const status = clusterStatus(nodes);
    assert.deepEqual(status.members.map((m) => [m.id, m.state, stateCell(m)]), [
      ['n1', 'up', 'up'],
      ['n2', 'leaving', 'leaving'],
      ['n3', 'disputed', 'up:n1;joining:n2'],
      ['n4', null, '-'],
    ]);
    assert.deepEqual(status.members[2]!.stateSeenBy, { n1: 'up', n2: 'joining' });
    const json = JSON.parse(JSON.stringify(status)) as { members: Record<string, unknown>[] };
    for (const key of ['id', 'status', 'seenBy', 'virtualNodes', 'owns', 'keys', 'answered', 'state', 'moving']) assert.ok(key in json.members[0]!, `--json members keep ${key}`);
  });

  it('status - a member moves the sum of the transfers it sends or receives, each counted once; bytes total is null until every fold ends', () => {
    const out = transfer('n2', 'n1', { rangesDone: 2, rangesTotal: 5, bytesSent: 1.5 * mib });
    const out2 = transfer('n2', 'n3', { rangesDone: 0, rangesTotal: 3, bytesSent: 512, bytesTotal: 4096 });
    const other = transfer('n3', 'n4', { rangesDone: 1, rangesTotal: 1, bytesSent: 100, bytesTotal: 100 });
    // n1 reports n2's transfer too (as a receiver might): still one.
    const nodes = [node('n1', { n1: 'up', n2: 'leaving', n3: 'up', n4: 'up' }, [out]), node('n2', { n2: 'leaving' }, [out, out2]), node('n3', { n3: 'up' }, [other])];
    const byId = new Map(clusterStatus(nodes).members.map((m) => [m.id, m.moving]));
    assert.deepEqual(byId.get('n2'), { rangesDone: 2, rangesTotal: 8, bytesDone: 1.5 * mib + 512, bytesTotal: null });
    assert.deepEqual(byId.get('n1'), { rangesDone: 2, rangesTotal: 5, bytesDone: 1.5 * mib, bytesTotal: null });
    assert.deepEqual(byId.get('n4'), { rangesDone: 1, rangesTotal: 1, bytesDone: 100, bytesTotal: 100 });
    assert.equal(clusterStatus([node('n1', { n1: 'up' })]).members[0]!.moving, null, 'nothing moving: null');
    assert.equal(movingCell(byId.get('n1')!), '2/5 ranges 1.5 MiB');
    assert.equal(movingCell(byId.get('n4')!), '1/1 ranges 100 B/100 B');
    assert.equal(movingCell({ rangesDone: 0, rangesTotal: 0, bytesDone: 2048, bytesTotal: null }), '2.0 KiB', 'a node of an earlier version reports no ranges');
    assert.equal(movingCell(null), '-');
    assert.equal(formatBytes(3 * 1024 * mib), '3.0 GiB');
  });

  it('status - the table shows state before liveness and moving last', () => {
    const nodes = [node('n1', { n1: 'up', n2: 'leaving' }, [transfer('n2', 'n1', { rangesDone: 2, rangesTotal: 5 })], false), node('n2', { n1: 'up', n2: 'leaving' })];
    const lines = statusTable(nodes).trim().split('\n');
    assert.deepEqual(lines[0]!.split(/\s+/), [...statusColumns]);
    assert.deepEqual(statusColumns.slice(10), ['state', 'liveness', 'vnodes', 'owns', 'keys', 'moving', 'hints', 'aae']);
    assert.deepEqual(lines.slice(1).map((l) => l.split(/\s+/).slice(10)), [
      ['up', 'up', '8', '75.0%', '1', '2/5', 'ranges', '1.0', 'MiB', '-', '-'],
      ['leaving', 'up', '8', '75.0%', '1', '2/5', 'ranges', '1.0', 'MiB', '-', '-'],
    ]);
  });

  it('status - a ring report\'s state and range counts are parsed defensively', () => {
    const parsed = parseRingReport({
      replication: 3,
      settled: false,
      members: [{ id: 'a', status: 'up', virtualNodes: 8, owns: 50, state: 'leaving' }, { id: 'b', status: 'up', virtualNodes: 8, owns: 50, state: 7 }],
      transfers: [transfer('a', 'b', { rangesDone: 1, rangesTotal: 4 }), transfer('a', 'c', { rangesDone: 5, rangesTotal: 4 }), { ...transfer('a', 'd'), rangesDone: '1', rangesTotal: 2 }],
    });
    assert.deepEqual(parsed?.members.map((m) => m.state), ['leaving', undefined]);
    assert.deepEqual(parsed?.transfers?.map((t) => [t.target, t.rangesDone, t.rangesTotal]), [['b', 1, 4], ['c', undefined, undefined], ['d', undefined, undefined]]);
  });
});

describe('goddb leave and remove - progress', () => {
  it('progress - a leave counts the transfers to or from the member and is done when it is left, or gone from every ring', () => {
    const mine = transfer('n2', 'n1', { rangesDone: 1, rangesTotal: 4, bytesSent: 2048 });
    const others = transfer('n3', 'n4', { rangesDone: 3, rangesTotal: 3 });
    const leaving = changeProgress([node('n1', { n1: 'up', n2: 'leaving' }, [mine, others])], 'leave', 'n2');
    assert.deepEqual([leaving.state, leaving.done, leaving.transfers, leaving.figures], ['leaving', false, 1, { rangesDone: 1, rangesTotal: 4, bytesDone: 2048, bytesTotal: null }]);
    assert.equal(progressLine(leaving), 'n2 leaving: 1/4 ranges 2.0 KiB');
    const disputed = changeProgress([node('n1', { n2: 'left' }), node('n3', { n2: 'leaving' })], 'leave', 'n2');
    assert.deepEqual([disputed.state, disputed.done], ['disputed', false], 'not done while any node still sees it leaving');
    const left = changeProgress([node('n1', { n2: 'left' }), node('n3', { n2: 'left' })], 'leave', 'n2');
    assert.deepEqual([left.state, left.done, left.figures.rangesTotal], ['left', true, 0]);
    assert.equal(progressLine(left), 'n2 left: nothing moving');
    const gone = changeProgress([node('n1', { n1: 'up' })], 'leave', 'n2');
    assert.deepEqual([gone.gone, gone.done], [true, true]);
    assert.equal(changeProgress([], 'leave', 'n2').done, false, 'nobody answering proves nothing');
    assert.equal(changeProgress([{ ...node('n1', {}), ring: undefined } as NodeInfo], 'leave', 'n2').done, false, 'nor does a node without a ring');
  });

  it('progress - a remove counts every transfer (the removed member sends nothing) and is done once removed and every node is settled', () => {
    const copies = [transfer('n1', 'n4', { rangesDone: 1, rangesTotal: 2 }), transfer('n3', 'n4', { rangesDone: 0, rangesTotal: 2 })];
    const moving = changeProgress([node('n1', { n2: 'removed' }, [copies[0]!]), node('n3', { n2: 'removed' }, [copies[1]!])], 'remove', 'n2');
    assert.deepEqual([moving.state, moving.settled, moving.done, moving.figures.rangesDone, moving.figures.rangesTotal], ['removed', false, false, 1, 4]);
    assert.equal(progressLine(moving), 'n2 removed: 1/4 ranges 2.0 MiB, not settled');
    assert.equal(changeProgress([node('n1', { n2: 'removed' }), node('n3', { n2: 'removed' })], 'remove', 'n2').done, true);
    assert.equal(changeProgress([node('n1', { n2: 'up' })], 'remove', 'n2').done, false);
    assert.equal(changeProgress([node('n1', { n1: 'up' })], 'remove', 'n2').done, true, 'gone from every ring and settled');
  });

  it('progress - watching polls until done, reporting each look; past the deadline it stops, not done', async () => {
    const looks = [[node('n1', { n2: 'leaving' }, [transfer('n2', 'n1', { rangesDone: 0, rangesTotal: 2 })])], [node('n1', { n2: 'leaving' }, [transfer('n2', 'n1', { rangesDone: 1, rangesTotal: 2 })])], [node('n1', { n2: 'left' })]];
    let now = 0;
    const waits: number[] = [];
    const seen: string[] = [];
    const poll = async (waitMs: number) => {
      waits.push(waitMs);
      now += waitMs;
      return looks[Math.min(waits.length - 1, looks.length - 1)]!;
    };
    const done = await watchChange('leave', 'n2', { poll, nowMs: () => now, deadlineMs: 10_000, onProgress: (p) => seen.push(progressLine(p)) });
    assert.equal(done.progress?.done, true);
    assert.deepEqual(seen, ['n2 leaving: 0/2 ranges 1.0 MiB', 'n2 leaving: 1/2 ranges 1.0 MiB', 'n2 left: nothing moving']);
    assert.deepEqual(waits, [500, 500, 500]);

    now = 0;
    waits.length = 0;
    const stuck = await watchChange('leave', 'n2', { poll: async (w) => (waits.push(w), (now += w), looks[0]!), nowMs: () => now, deadlineMs: 1200, onProgress: () => undefined });
    assert.equal(stuck.progress?.done, false);
    assert.deepEqual(waits, [500, 500, 200], 'the last look ends at the deadline');
  });

  it('progress - --timeout takes ms or a unit', () => {
    assert.equal(parseDurationMs('10m'), 600_000);
    assert.equal(parseDurationMs('90s'), 90_000);
    assert.equal(parseDurationMs('1h'), 3_600_000);
    assert.equal(parseDurationMs('2500'), 2500);
    assert.equal(parseDurationMs('250ms'), 250);
    for (const bad of ['', '0', '-1s', '1.5m', '10 minutes', 'm']) assert.equal(parseDurationMs(bad), undefined, bad);
  });
});
