/**
 * A child process for the lmdb sync tests (test/integration/lmdb_sync.test.ts):
 * opens an LmdbEngine on argv[2] in the sync mode argv[3] and puts key w<i>
 * (value "v<i>") one at a time, printing "acked <i>" after each put resolves,
 * until it is killed. Nothing here closes the engine: the test SIGKILLs it.
 */
import { writeSync } from 'node:fs';
import { LmdbEngine } from '../../src/storage/lmdb.js';
import { SyncMode } from '../../src/storage/engine.js';

const [path, mode] = process.argv.slice(2);
if (path === undefined || (mode !== SyncMode.Always && mode !== SyncMode.Periodic)) {
  writeSync(2, 'usage: lmdb_writer.js <path> always|periodic\n');
  process.exit(2);
}
// A sync interval far longer than the test: the only fsync that could happen is the one a clean close does.
const engine = new LmdbEngine({ path, mapSizeBytes: 64 * 1024 * 1024, sync: mode, syncIntervalMs: 600_000 });
await engine.open();
for (let i = 0; ; i++) {
  await engine.put(`w${i}`, Buffer.from(`v${i}`));
  writeSync(1, `acked ${i}\n`);
}
