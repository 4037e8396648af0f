import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { asCpuProfile, formatSummary, moduleOf, summarizeProfile, type CpuProfile } from '../../src/bench/cpu_profile.js';

const src = (file: string) => `file:///repo/dist/src/${file}.js`;
const lmdb = 'file:///repo/node_modules/lmdb/read.js';

/**
 * root -> (idle) 2, (program) 3
 * root -> handle (src/node/api/client_api) 4 -> get (src/storage/lmdb) 5 -> getBinary (lmdb) 6
 *                                          -> handle again (recursion) 7 -> getBinary (lmdb) 8
 */
function profile(): CpuProfile {
  const frame = (functionName: string, url: string, lineNumber = 9) => ({ functionName, url, lineNumber });
  return {
    nodes: [
      { id: 1, callFrame: frame('(root)', ''), children: [2, 3, 4] },
      { id: 2, callFrame: frame('(idle)', '') },
      { id: 3, callFrame: frame('(program)', '') },
      { id: 4, callFrame: frame('handle', src('node/api/client_api')), children: [5, 7] },
      { id: 5, callFrame: frame('get', src('storage/lmdb')), children: [6] },
      { id: 6, callFrame: frame('getBinary', lmdb) },
      { id: 7, callFrame: frame('handle', src('node/api/client_api')), children: [8] },
      { id: 8, callFrame: frame('getBinary', lmdb) },
    ],
    // One sample every 0.5 s: seconds 0.5 .. 5.0.
    samples: [2, 6, 6, 4, 8, 3, 2, 6, 5, 2],
    timeDeltas: Array.from({ length: 10 }, () => 500_000),
  };
}

describe('bench cpu profile', () => {
  it('moduleOf - npm packages (scoped too), GoD-DB modules, node internals, native', () => {
    assert.equal(moduleOf(lmdb), 'lmdb');
    assert.equal(moduleOf('file:///repo/node_modules/@nats-io/nats-core/lib/core.js'), '@nats-io/nats-core');
    assert.equal(moduleOf(src('node/replica/replica')), 'src/node/replica/replica');
    assert.equal(moduleOf('node:internal/buffer'), 'node:internal/buffer');
    assert.equal(moduleOf(''), '(native)');
  });

  it('summary - self time by module and function over busy samples, idle left out, recursion counted once inclusive', () => {
    const s = summarizeProfile(profile());
    assert.equal(s.samples, 10);
    assert.equal(s.busy, 7, 'three idle samples');
    assert.deepEqual(s.byModule.map((m) => [m.name, m.samples]), [['lmdb', 4], ['(native)', 1], ['src/node/api/client_api', 1], ['src/storage/lmdb', 1]]);
    assert.deepEqual(s.byFunction[0], { name: 'getBinary lmdb:10', samples: 4, percent: (100 * 4) / 7 });
    const inclusive = Object.fromEntries(s.inclusive.map((x) => [x.name, x.samples]));
    // handle: samples under node 4 (6, 6, 4, 8, 6, 5) = 6, the recursive 7 -> 8 counted once.
    assert.deepEqual(inclusive, { 'handle src/node/api/client_api:10': 6, 'get src/storage/lmdb:10': 4 });
    assert.deepEqual(s.busyPerSecond, [0, 2, 2, 1, 2], 'busy samples of each whole second (the idle ones at 0.5, 3.5 and 5.0 s not)');
  });

  it('summary - a window keeps the samples between its bounds only, the per-second line stays whole', () => {
    const s = summarizeProfile(profile(), { fromS: 1, toS: 2.5 }); // the samples at 1.0, 1.5, 2.0 and 2.5 s: nodes 6, 6, 4, 8
    assert.equal(s.samples, 4);
    assert.equal(s.busy, 4);
    assert.deepEqual(s.byFunction.map((f) => [f.name, f.samples]), [['getBinary lmdb:10', 3], ['handle src/node/api/client_api:10', 1]]);
    assert.deepEqual(s.busyPerSecond, [0, 2, 2, 1, 2]);
    const empty = summarizeProfile(profile(), { fromS: 60 });
    assert.equal(empty.busy, 0);
    assert.match(formatSummary(empty), /^0 samples, 0 busy \(0\.0%\)/);
  });

  it('asCpuProfile - a file that is not a profile is a clear error', () => {
    assert.throws(() => asCpuProfile({ nodes: [] }), /expected nodes, samples and timeDeltas/);
    assert.throws(() => asCpuProfile(null), /not a V8 CPU profile/);
    assert.throws(() => asCpuProfile({ ...profile(), timeDeltas: [1] }), /10 samples but 1 time deltas/);
    assert.throws(() => asCpuProfile({ ...profile(), samples: [...profile().samples.slice(1), 99] }), /node 99/);
    assert.throws(() => asCpuProfile({ ...profile(), nodes: [{ id: 1 }] }), /without an id or a call frame/);
    assert.equal(asCpuProfile(profile()).samples.length, 10);
  });

  it('format - the three lists, top N of each', () => {
    const text = formatSummary(summarizeProfile(profile()), 1);
    assert.deepEqual(text.split('\n').slice(1), [
      '-- self time by module (% of busy)',
      ' 57.1%  lmdb',
      '-- self time by function',
      ' 57.1%  getBinary lmdb:10',
      '-- inclusive time of GoD-DB functions',
      ' 85.7%  handle src/node/api/client_api:10',
    ]);
  });
});
