/**
 * The integration tests' startWorkers (test/helpers/workers.ts): when one
 * worker of a cluster fails to start, the ones that did are killed before the
 * failure is thrown, since the caller never gets hold of them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startNatsServer } from '../../src/devtools/servers.js';
import { killLiveWorkers, liveWorkerCount, startWorkers, tempDir } from '../helpers/workers.js';

describe('test helpers: startWorkers', () => {
  it('workers helper - one worker that cannot start fails the call, and the one that started is killed', async () => {
    const nats = await startNatsServer();
    const dir = tempDir('helper');
    try {
      const args = (id: string) => ['--cluster', 'helper', '-discovery', nats.url, '--engine', id === 'w2' ? 'no-such-engine' : 'memory', '--data-dir', `${dir.path}/${id}`, '--port', '0'];
      await assert.rejects(startWorkers(['w1', 'w2'], args), /worker w2 exited with/);
      assert.equal(liveWorkerCount(), 0, 'w1 started and was killed');
      const [w] = await startWorkers(['w3'], args);
      assert.equal(w!.id, 'w3');
      assert.equal(liveWorkerCount(), 1);
      await w!.kill('SIGKILL');
      assert.equal(liveWorkerCount(), 0);
    } finally {
      killLiveWorkers(); // what a failed assertion above left running
      await nats.stop();
      dir.remove();
    }
  });
});
