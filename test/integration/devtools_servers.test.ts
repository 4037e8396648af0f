/**
 * The server helpers start real nats-server and redis-server children on
 * free ports and stop them completely (the port is free again afterwards).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { freePort, freePorts, startNatsServer, startRedisServer } from '../../src/devtools/servers.js';

describe('devtools servers', () => {
  it('freePort - returns a port that can be bound', async () => {
    const port = await freePort();
    assert.ok(port > 0 && port < 65536);
    assert.equal(await canListen(port), true);
  });

  it('freePorts - returns distinct ports, each of which can be bound, and holds none of them afterwards', async () => {
    const ports = await freePorts(64);
    assert.equal(ports.length, 64);
    assert.equal(new Set(ports).size, 64, 'no port twice (freePort called again and again can repeat one)');
    for (const port of ports.slice(0, 8)) assert.equal(await canListen(port), true);
  });

  it('startNatsServer - serves on a free port, greets with INFO, and stop frees the port', async () => {
    const server = await startNatsServer();
    try {
      assert.equal(server.url, `nats://127.0.0.1:${server.port}`);
      assert.match(await firstLine(server.port), /^INFO \{/);
    } finally {
      await server.stop();
    }
    assert.ok(server.process.exitCode !== null || server.process.signalCode !== null, 'the child has exited');
    assert.equal(await canListen(server.port), true);
    await server.stop(); // a second stop is harmless
  });

  it('startNatsServer - the command-line port wins over a config file, and JetStream can be enabled', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'goddb-nats-conf-'));
    const configFile = join(dir, 'nats.conf');
    await writeFile(configFile, 'port: 4222\nmax_payload: 2MB\n');
    const port = await freePort();
    const server = await startNatsServer({ port, configFile, jetstream: true, storeDir: join(dir, 'js') });
    try {
      const info = JSON.parse((await firstLine(port)).slice('INFO '.length)) as { port: number; jetstream?: boolean; max_payload: number };
      assert.equal(info.port, port);
      assert.equal(info.jetstream, true);
      assert.equal(info.max_payload, 2 * 1024 * 1024, 'the config file was read');
    } finally {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('startNatsServer - fails with the server output when nats-server cannot start', async () => {
    await assert.rejects(startNatsServer({ args: ['--no-such-flag'] }), /nats-server exited with code \d+ before it was ready:\n.*no-such-flag/s);
  });

  it('startRedisServer - answers PING on a free port, and stop frees the port', async () => {
    const server = await startRedisServer();
    try {
      assert.equal(await firstLine(server.port, 'PING\r\n'), '+PONG');
    } finally {
      await server.stop();
    }
    assert.equal(await canListen(server.port), true);
  });

  it('startRedisServer - with appendonly, data survives a restart in the same directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'goddb-redis-aof-'));
    try {
      const first = await startRedisServer({ dir, appendonly: true });
      assert.equal(await firstLine(first.port, 'SET durable yes\r\n'), '+OK');
      await first.stop();
      const second = await startRedisServer({ dir, appendonly: true });
      try {
        assert.equal(await firstLine(second.port, 'GET durable\r\n'), '$3');
      } finally {
        await second.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('startRedisServer - fails with the server output when the port is taken', async () => {
    const server = await startRedisServer();
    try {
      await assert.rejects(startRedisServer({ port: server.port }), /redis-server exited .* before it was ready:\n.*(in use|bind)/is);
    } finally {
      await server.stop();
    }
  });
});

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Connects, optionally sends `request`, and returns the first line the server sends. */
function firstLine(port: number, request?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let text = '';
    socket.setTimeout(5_000, () => socket.destroy(new Error('no reply within 5 s')));
    socket.once('error', reject);
    socket.once('connect', () => {
      if (request !== undefined) socket.write(request);
    });
    socket.on('data', (chunk) => {
      text += chunk.toString('utf8');
      const end = text.indexOf('\r\n');
      if (end < 0) return;
      socket.destroy();
      resolve(text.slice(0, end));
    });
  });
}
