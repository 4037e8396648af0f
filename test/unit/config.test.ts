/**
 * The convict schema, loadConfig and the seed's worker flags
 * (src/config/schema.ts, src/cli/worker_flags.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { legacyWorkerFlags, normalizeLegacyFlags, workerFlagMap } from '../../src/config/flags.js';
import { parseDurationMs, parseSizeBytes } from '../../src/config/formats.js';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { limits } from '../../src/core/limits.js';
import { parseWorkerArgs } from '../../src/cli/worker_flags.js';

/** loadConfig from worker arguments, with an empty environment so the host's GODDB_* cannot leak in. */
function fromArgs(args: string[], env: NodeJS.ProcessEnv = {}) {
  return loadConfig({ flags: parseWorkerArgs(args), env });
}

function get(obj: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], obj);
}

function withTempDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'goddb-config-test-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('config - defaults', () => {
  it('config - the defaults (and config/default.json) validate', () => {
    const cfg = loadConfig({ env: {} });
    assert.equal(cfg.cluster, 'goddb');
    assert.deepEqual(cfg.http, { host: '127.0.0.1', port: 0 });
    assert.deepEqual(cfg.nats.servers, ['nats://127.0.0.1:4222']);
    assert.equal(cfg.nats.connectWaitMs, 60_000);
    assert.equal(cfg.storage.engine, 'lmdb');
    assert.deepEqual(cfg.storage.redis, { host: '127.0.0.1', port: 6379, db: 0, password: '' });
    assert.equal(cfg.storage.lmdb.mapSizeBytes, 1024 ** 3);
    assert.equal(cfg.ring.virtualNodes, 10);
    assert.deepEqual(cfg.quorum, { replication: 3, readQuorum: 2, writeQuorum: 2 });
    assert.deepEqual(cfg.hints, { sloppyQuorum: false, windowMs: 3 * 3600 * 1000, bytesMax: 256 * 1024 * 1024 });
    assert.deepEqual(cfg.antiEntropy, { enabled: true, intervalMs: 5_000, keysPerSecond: 10_000, bytesPerSecond: 16 * 1024 * 1024, keysPerExchange: limits.aaeKeysPerExchangeMax });
    assert.deepEqual(cfg.gossip, { enabled: true, intervalMs: 1000, failureTimeoutMs: 3000, phiConvictThreshold: 8, peers: [], fanout: 3, startupWaitMs: 5000 });
    assert.equal(cfg.requestTimeoutMs, 2000);
    assert.equal(cfg.conflictPolicy, 'lww');
    assert.deepEqual(cfg.limits, { keyBytesMax: 1024, valueBytesMax: 1024 * 1024 - 8 * 1024 });
    assert.equal(cfg.log.level, 'info');
  });

  it('config - an empty node id is generated as n- and 8 hex digits, and dataDir follows it', () => {
    const a = loadConfig({ env: {} });
    const b = loadConfig({ env: {} });
    assert.match(a.nodeId, /^n-[0-9a-f]{8}$/);
    assert.notEqual(a.nodeId, b.nodeId);
    assert.equal(a.dataDir, resolve('data', a.nodeId));
  });

  it('config - a given dataDir is resolved to an absolute path', () => {
    assert.equal(fromArgs(['--data-dir', 'x/y']).dataDir, resolve('x/y'));
  });

  it('config - a dataDir without a node id leaves the id to the identity file in it', () => {
    assert.equal(fromArgs(['--data-dir', 'x/y']).nodeId, '');
    assert.equal(fromArgs(['--data-dir', 'x/y', '--node-id', 'n7']).nodeId, 'n7');
  });

  it('config - the result is deeply frozen', () => {
    const cfg = loadConfig({ env: {} });
    assert.ok(Object.isFrozen(cfg));
    assert.ok(Object.isFrozen(cfg.nats.tls));
    assert.ok(Object.isFrozen(cfg.gossip.peers));
    assert.throws(() => {
      (cfg as { cluster: string }).cluster = 'x';
    }, TypeError);
    assert.throws(() => {
      (cfg.nats.servers as string[]).push('nats://x');
    }, TypeError);
  });
});

describe('config - the seed worker flags', () => {
  const cases: [string, string, string, unknown][] = [
    ['port', '8081', 'http.port', 8081],
    ['redisport', '6390', 'storage.redis.port', 6390],
    ['virtualnodes', '64', 'ring.virtualNodes', 64],
    ['replication', '5', 'quorum.replication', 5],
    ['writequorum', '3', 'quorum.writeQuorum', 3],
    ['readquorum', '1', 'quorum.readQuorum', 1],
    ['gossip', '500ms', 'gossip.intervalMs', 500],
    ['peers', 'node1,node2,node3', 'gossip.peers', ['node1', 'node2', 'node3']],
    ['enablegossip', 'false', 'gossip.enabled', false],
    ['discovery', 'nats://10.0.0.1:4222', 'nats.servers', ['nats://10.0.0.1:4222']],
  ];

  it('config - every seed flag is in the table', () => {
    assert.deepEqual(cases.map((c) => c[0]).sort(), [...legacyWorkerFlags].sort());
    for (const [flag, , path] of cases) {
      assert.equal(workerFlagMap[flag]?.path, path, flag);
      assert.equal(workerFlagMap[flag]?.legacy, true, flag);
    }
  });

  for (const [flag, value, path, expected] of cases) {
    // -replication 5 needs room: R and W stay 2, which is fine; W=3 needs N=3 (the default).
    it(`config - -${flag} ${value} and -${flag}=${value} set ${path}`, () => {
      for (const args of [[`-${flag}`, value], [`-${flag}=${value}`], [`--${flag}`, value], [`--${flag}=${value}`]]) {
        assert.deepEqual(get(fromArgs(args), path), expected, args.join(' '));
      }
    });
  }

  it('config - -gossip 1s is 1000 ms', () => {
    assert.equal(fromArgs(['-gossip', '1s']).gossip.intervalMs, 1000);
  });

  it('config - -discovery a,b gives two servers', () => {
    assert.deepEqual(fromArgs(['-discovery', 'nats://a:4222,nats://b:4222']).nats.servers, ['nats://a:4222', 'nats://b:4222']);
  });

  it('config - a bare -enablegossip means true', () => {
    assert.equal(fromArgs(['-enablegossip=false', '-enablegossip']).gossip.enabled, true);
    assert.equal(fromArgs(['-enablegossip', '-port', '9000']).gossip.enabled, true);
    assert.equal(fromArgs(['-enablegossip', '-port', '9000']).http.port, 9000);
  });

  it('config - -redisport selects the redis engine unless --engine is given', () => {
    assert.equal(fromArgs(['-redisport', '6390']).storage.engine, 'redis');
    assert.equal(fromArgs(['-redisport', '6390', '--engine', 'memory']).storage.engine, 'memory');
    assert.equal(fromArgs([]).storage.engine, 'lmdb');
  });

  it('config - a seed command line works as written', () => {
    const cfg = fromArgs(['-port', '8080', '-redisport', '6380', '-virtualnodes', '10', '-replication', '3', '-writequorum', '2', '-readquorum', '2', '-gossip', '1s', '-peers', 'a,b,c', '-enablegossip', '-discovery', 'nats://127.0.0.1:4250']);
    assert.equal(cfg.http.port, 8080);
    assert.equal(cfg.storage.engine, 'redis');
    assert.equal(cfg.storage.redis.port, 6380);
    assert.deepEqual(cfg.gossip.peers, ['a', 'b', 'c']);
  });

  it('config - modern flags map to their keys', () => {
    const cfg = fromArgs([
      '--node-id', 'node7', '--cluster', 'c1', '--engine', 'memory', '--redis-host', 'redis.local',
      '--lmdb-map-size', '256MiB', '--request-timeout', '1.5s', '--log-level', 'debug',
      '--nats-user', 'u', '--nats-pass', 'p', '--nats-token', 't', '--nats-nkey', 'seed.nk', '--nats-creds', 'x.creds',
      '--nats-tls-ca', 'ca.pem', '--nats-tls-cert', 'c.pem', '--nats-tls-key', 'k.pem', '--nats-tls', '--nats-connect-wait', '2s',
    ]);
    assert.equal(cfg.nodeId, 'node7');
    assert.equal(cfg.cluster, 'c1');
    assert.equal(cfg.storage.engine, 'memory');
    assert.equal(cfg.storage.redis.host, 'redis.local');
    assert.equal(cfg.storage.lmdb.mapSizeBytes, 256 * 1024 * 1024);
    assert.equal(cfg.requestTimeoutMs, 1500);
    assert.equal(cfg.log.level, 'debug');
    assert.deepEqual(
      { ...cfg.nats, servers: undefined },
      { servers: undefined, user: 'u', pass: 'p', token: 't', nkeySeedFile: 'seed.nk', credsFile: 'x.creds', tls: { caFile: 'ca.pem', certFile: 'c.pem', keyFile: 'k.pem', enabled: true }, connectWaitMs: 2000 },
    );
  });

  it('config - an unknown flag is an error', () => {
    assert.throws(() => fromArgs(['--bogus', '1']), /unknown option/);
    assert.throws(() => loadConfig({ flags: { noSuchFlag: 1 }, env: {} }), /unknown flag --no-such-flag/);
  });

  it('config - flags as loadConfig takes them: kebab or camel case, typed or string values', () => {
    const cfg = loadConfig({ flags: { 'node-id': 'a', requestTimeout: 700, enablegossip: false, peers: ['x', 'y'] }, env: {} });
    assert.equal(cfg.nodeId, 'a');
    assert.equal(cfg.requestTimeoutMs, 700);
    assert.equal(cfg.gossip.enabled, false);
    assert.deepEqual(cfg.gossip.peers, ['x', 'y']);
  });
});

describe('config - normalizeLegacyFlags', () => {
  it('normalizeLegacyFlags - rewrites single-dash worker flags, with and without =', () => {
    assert.deepEqual(normalizeLegacyFlags(['-port', '8080', '-gossip=1s', '-node-id', 'n1']), ['--port', '8080', '--gossip=1s', '--node-id', 'n1']);
  });

  it('normalizeLegacyFlags - leaves values, short flags, unknown flags and everything after -- alone', () => {
    assert.deepEqual(
      normalizeLegacyFlags(['node', 'main.js', 'worker', '--nats-pass', '-port', '-h', '-x', '-1', '--', '-port']),
      ['node', 'main.js', 'worker', '--nats-pass', '-port', '-h', '-x', '-1', '--', '-port'],
    );
  });

  it('normalizeLegacyFlags - a bare boolean does not swallow the next flag', () => {
    assert.deepEqual(normalizeLegacyFlags(['-enablegossip', '-port', '1']), ['--enablegossip', '--port', '1']);
  });

  it('normalizeLegacyFlags - -config is a flag too', () => {
    assert.deepEqual(normalizeLegacyFlags(['-config', 'a.json']), ['--config', 'a.json']);
  });
});

describe('config - invalid settings are clear errors', () => {
  const bad: [string, string[], RegExp][] = [
    ['R > N', ['-readquorum', '4'], /read quorum must be an integer from 1 to N=3, got 4/],
    ['W = 0', ['-writequorum', '0'], /write quorum must be an integer from 1 to N=3, got 0/],
    ['N over the maximum', ['-replication', '17'], /quorum\.replication: must be an integer from 0 to 16/],
    ['a bad duration', ['-gossip', '1x'], /gossip\.intervalMs: must be a duration .*value was "1x"/],
    ['an unknown engine', ['--engine', 'rocks'], /storage\.engine: must be one of the possible values: \["memory","redis","lmdb"\]/],
    ['a bad node id', ['--node-id', 'a.b'], /nodeId: must be empty \(generated\) or 1 to 64 letters/],
    ['a bad cluster name', ['--cluster', 'x y'], /cluster: must be 1 to 64 letters/],
    ['a bad peer id', ['-peers', 'a,b*'], /gossip\.peers: must be a list of node ids/],
    ['a port out of range', ['-port', '70000'], /http\.port: must be an integer from 0 to 65535/],
    ['a non-numeric port', ['-port', '80a'], /http\.port: must be an integer .*value was "80a"/],
    ['too many virtual nodes', ['-virtualnodes', '1025'], /ring\.virtualNodes: must be an integer from 1 to 1024/],
    ['a failure timeout not above the gossip interval', ['-gossip', '3s'], /gossip\.failureTimeoutMs \(3000\) must be greater than gossip\.intervalMs \(3000\)/],
    ['a bad boolean', ['-enablegossip=maybe'], /gossip\.enabled: must be true or false/],
    ['a bad size', ['--lmdb-map-size', '1GB'], /storage\.lmdb\.mapSizeBytes: must be a size/],
    ['an unknown sync mode', ['--sync', 'sometimes'], /storage\.sync: must be one of the possible values: \["always","periodic"\]/],
    ['a sync interval below 10 ms', ['--sync-interval', '5ms'], /storage\.syncIntervalMs: must be a duration from 10ms to 600000ms/],
    ['a sync interval above 10 minutes', ['--sync-interval', '11m'], /storage\.syncIntervalMs: must be a duration from 10ms to 600000ms/],
    ['a bad log level', ['--log-level', 'loud'], /log\.level: must be one of/],
    ['a TLS key without a certificate', ['--nats-tls-key', 'k.pem'], /certFile and nats\.tls\.keyFile must be given together/],
  ];
  for (const [what, args, message] of bad) {
    it(`config - ${what} is rejected`, () => {
      assert.throws(() => fromArgs(args), (err: unknown) => {
        assert.ok(err instanceof ConfigError, String(err));
        assert.match(err.message, message);
        return true;
      });
    });
  }

  it('config - a value above 1 MiB - 8 KiB is rejected', () => {
    assert.throws(
      () => loadConfig({ env: { GODDB_VALUE_BYTES_MAX: String(limits.valueBytesMaxDefault + 1) } }),
      /limits\.valueBytesMax must be at most 1040384/,
    );
  });
});

describe('config - environment', () => {
  it('config - GODDB_* variables map to their keys', () => {
    const cfg = loadConfig({
      env: {
        GODDB_NODE_ID: 'env-node',
        GODDB_HTTP_PORT: '8088',
        GODDB_NATS_SERVERS: 'nats://a:1, nats://b:2',
        GODDB_STORAGE_ENGINE: 'memory',
        GODDB_REDIS_DB: '3',
        GODDB_REPLICATION: '5',
        GODDB_READ_QUORUM: '3',
        GODDB_WRITE_QUORUM: '3',
        GODDB_GOSSIP_ENABLED: 'no',
        GODDB_GOSSIP_INTERVAL_MS: '250ms',
        GODDB_PEERS: 'a,b',
        GODDB_REQUEST_TIMEOUT_MS: '750',
        GODDB_LMDB_MAP_SIZE_BYTES: '2GiB',
        GODDB_LOG_LEVEL: 'warn',
      },
    });
    assert.equal(cfg.nodeId, 'env-node');
    assert.equal(cfg.http.port, 8088);
    assert.deepEqual(cfg.nats.servers, ['nats://a:1', 'nats://b:2']);
    assert.equal(cfg.storage.engine, 'memory');
    assert.equal(cfg.storage.redis.db, 3);
    assert.deepEqual(cfg.quorum, { replication: 5, readQuorum: 3, writeQuorum: 3 });
    assert.equal(cfg.gossip.enabled, false);
    assert.equal(cfg.gossip.intervalMs, 250);
    assert.deepEqual(cfg.gossip.peers, ['a', 'b']);
    assert.equal(cfg.requestTimeoutMs, 750);
    assert.equal(cfg.storage.lmdb.mapSizeBytes, 2 * 1024 ** 3);
    assert.equal(cfg.log.level, 'warn');
  });

  it('config - flags beat the environment, which beats files', () => {
    withTempDir((dir) => {
      const file = join(dir, 'c.json');
      writeFileSync(file, JSON.stringify({ http: { port: 1111 }, cluster: 'from-file', ring: { virtualNodes: 7 } }));
      const cfg = loadConfig({ files: [file], env: { GODDB_HTTP_PORT: '2222', GODDB_CLUSTER: 'from-env' }, flags: parseWorkerArgs(['-port', '3333']) });
      assert.equal(cfg.http.port, 3333);
      assert.equal(cfg.cluster, 'from-env');
      assert.equal(cfg.ring.virtualNodes, 7);
    });
  });
});

describe('config - files', () => {
  it('config - later files win, and --config files come last', () => {
    withTempDir((dir) => {
      const a = join(dir, 'a.json');
      const b = join(dir, 'b.json');
      writeFileSync(a, JSON.stringify({ cluster: 'a', log: { level: 'debug' } }));
      writeFileSync(b, JSON.stringify({ cluster: 'b', gossip: { intervalMs: '2s', failureTimeoutMs: '10s' } }));
      const cfg = loadConfig({ files: [a, b], env: {} });
      assert.equal(cfg.cluster, 'b');
      assert.equal(cfg.log.level, 'debug');
      assert.equal(cfg.gossip.intervalMs, 2000);
      assert.equal(cfg.gossip.failureTimeoutMs, 10_000);
      assert.equal(fromArgs(['--config', a, '-config', b]).cluster, 'b');
    });
  });

  it('config - an unknown key in a file is an error', () => {
    withTempDir((dir) => {
      const file = join(dir, 'bad.json');
      writeFileSync(file, JSON.stringify({ http: { prot: 80 } }));
      assert.throws(() => loadConfig({ files: [file], env: {} }), /configuration param 'http\.prot' not declared in the schema/);
    });
  });

  it('config - a missing or malformed file is an error naming it', () => {
    withTempDir((dir) => {
      const broken = join(dir, 'broken.json');
      writeFileSync(broken, '{ nope');
      assert.throws(() => loadConfig({ files: [broken], env: {} }), /cannot read config file .*broken\.json/);
      assert.throws(() => loadConfig({ files: [join(dir, 'absent.json')], env: {} }), /cannot read config file .*absent\.json/);
    });
  });
});

describe('config - units', () => {
  it('parseDurationMs - Go durations and bare milliseconds', () => {
    assert.equal(parseDurationMs('250'), 250);
    assert.equal(parseDurationMs('250ms'), 250);
    assert.equal(parseDurationMs('1s'), 1000);
    assert.equal(parseDurationMs('1.5s'), 1500);
    assert.equal(parseDurationMs('2m'), 120_000);
    assert.equal(parseDurationMs('1m30s'), 90_000);
    assert.equal(parseDurationMs('1h'), 3_600_000);
    for (const bad of ['', 's', '1x', '1 s', '-1s', '1s2']) assert.equal(parseDurationMs(bad), undefined, bad);
  });

  it('parseSizeBytes - bytes and IEC units only', () => {
    assert.equal(parseSizeBytes('1024'), 1024);
    assert.equal(parseSizeBytes('512KiB'), 512 * 1024);
    assert.equal(parseSizeBytes('1GiB'), 1024 ** 3);
    assert.equal(parseSizeBytes('1.5MiB'), 1.5 * 1024 * 1024);
    for (const bad of ['', 'GiB', '1GB', '1 lots']) assert.equal(parseSizeBytes(bad), undefined, bad);
  });
});

describe('config - gc', () => {
  it('config - gc defaults to a 10-day grace period, a sweep a minute, 1000 keys a second', () => {
    assert.deepEqual(loadConfig({ env: {} }).gc, { graceSeconds: 864_000, intervalMs: 60_000, keysPerSecond: 1000 });
  });

  it('config - the hint window must be below the tombstone grace period', () => {
    assert.equal(fromArgs(['--gc-grace-seconds', '5', '--hint-window', '2s']).gc.graceSeconds, 5);
    assert.throws(() => fromArgs(['--gc-grace-seconds', '5', '--hint-window', '2500ms']), (err: Error) => err instanceof ConfigError && /twice hints\.windowMs \(2500\) must be below the tombstone grace period gc\.graceSeconds/.test(err.message));
    assert.throws(() => fromArgs(['--gc-grace-seconds', '0', '--hint-window', '1']), ConfigError);
  });
});

describe('config - anti-entropy', () => {
  it('config - antiEntropy takes flags and environment, and refuses a zero budget', () => {
    const cfg = fromArgs(['--anti-entropy-enabled', 'false', '--anti-entropy-interval', '2s', '--anti-entropy-keys-per-second', '50', '--anti-entropy-bytes-per-second', '1MiB', '--anti-entropy-keys-per-exchange', '500']);
    assert.deepEqual(cfg.antiEntropy, { enabled: false, intervalMs: 2000, keysPerSecond: 50, bytesPerSecond: 1024 * 1024, keysPerExchange: 500 });
    assert.throws(() => fromArgs(['--anti-entropy-keys-per-exchange', '15']), ConfigError);
    assert.equal(fromArgs([], { GODDB_ANTI_ENTROPY_INTERVAL_MS: '750' }).antiEntropy.intervalMs, 750);
    assert.throws(() => fromArgs(['--anti-entropy-keys-per-second', '0']), ConfigError);
  });
});

describe('config - storage sync', () => {
  it('config - storage.sync defaults to always with a 1 s interval; flags and environment set it', () => {
    const defaults = fromArgs([]);
    assert.equal(defaults.storage.sync, 'always');
    assert.equal(defaults.storage.syncIntervalMs, 1000);
    const flagged = fromArgs(['--sync', 'periodic', '--sync-interval', '250ms']);
    assert.equal(flagged.storage.sync, 'periodic');
    assert.equal(flagged.storage.syncIntervalMs, 250);
    const env = fromArgs([], { GODDB_STORAGE_SYNC: 'periodic', GODDB_STORAGE_SYNC_INTERVAL_MS: '2s' });
    assert.equal(env.storage.sync, 'periodic');
    assert.equal(env.storage.syncIntervalMs, 2000);
  });
});
