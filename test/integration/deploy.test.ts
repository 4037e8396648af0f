/**
 * deploy/ and the Dockerfile, checked without Docker or Kubernetes (neither
 * runs here): the Dockerfile is read into a model of the image it builds
 * (test/helpers/image_layout.ts), and every command, path and port that the
 * Dockerfile, the Kubernetes manifest and the systemd unit name must exist in
 * that layout and agree with what the worker would do with its flags and
 * environment (parsed and validated by the worker's own code). The
 * healthcheck command runs for real against the node's HTTP server, and every
 * NATS configuration in the repository passes `nats-server -t`. The worker
 * flags and variables the unit and the manifest use must be ones `goddb worker
 * --help` lists; the manifest must keep a quorum through disruptions (its
 * PodDisruptionBudget) and leave only when scaled down (its preStop hook).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { parseAllDocuments } from 'yaml';
import { parseWorkerArgs } from '../../src/cli/worker_flags.js';
import { loadConfig, packageRoot } from '../../src/config/load.js';
import { findBinary, freePort } from '../../src/devtools/servers.js';
import { startHttp } from '../../src/node/api/http.js';
import { ImageLayout, parseDockerfile, type Stage } from '../helpers/image_layout.js';

const root = packageRoot();
/** The compiled tree this test runs from: what `npm run build` makes in the image. */
const compiled = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const image = new ImageLayout(parseDockerfile(read('Dockerfile')), { root, compiled });
const final = image.final;
const appDir = posix.dirname(posix.dirname(final.entrypoint[1] ?? '/')); // /opt/goddb/bin/goddb.js -> /opt/goddb

interface K8sObject {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  // Manifests are data of many shapes; each test reads the fields it checks.
  spec: Record<string, any>;
}
const manifests = parseAllDocuments(read('deploy/kubernetes/goddb.yaml')).map((d) => {
  assert.deepEqual(d.errors, [], 'the manifest is valid YAML');
  return d.toJS() as K8sObject;
});

/** The worker configuration a command line and environment give, through the worker's own parser and validation. */
function workerConfig(args: string[], env: Record<string, string>, files: string[] = []) {
  const flags = parseWorkerArgs(args);
  return loadConfig({ flags, env, files });
}

/** A command that must exist in the image: `node` comes with the official Node.js base image; anything else is a file of the layout. */
function assertCommandInImage(command: string[], what: string): void {
  const [program, script] = command;
  assert.ok(program !== undefined, `${what}: no command`);
  if (program === 'node') assert.match(final.base, /^node:/, `${what}: node needs a node base image`);
  else assert.ok(image.exists(program), `${what}: ${program} is not in the image`);
  if (program === 'node' && script !== undefined && !script.startsWith('-')) {
    assert.ok(script.startsWith('/'), `${what}: ${script} is an absolute path (the working directory is not part of the contract)`);
    assert.ok(image.exists(script), `${what}: ${script} is not in the image`);
  }
}

function userOf(stage: Stage): { name: string; uid: number; gid: number } {
  const name = stage.user;
  assert.ok(name !== undefined && name !== 'root' && name !== '0', 'the image runs as a user other than root');
  const user = stage.users.get(name);
  assert.ok(user, `the user ${name} is created in the image (useradd)`);
  const gid = stage.groups.get(user.group);
  assert.ok(gid !== undefined, `the group ${user.group} is created in the image (groupadd)`);
  return { name, uid: user.uid, gid };
}

describe('deploy - the Dockerfile', () => {
  it('deploy - two stages: the image keeps only the compiled program, its production packages, bin and config', () => {
    assert.ok(image.stages.length >= 2, 'a multi-stage build');
    const major = Number(/^node:(\d+)/.exec(final.base)?.[1]);
    assert.ok([20, 24].includes(major), `the image's Node.js line (${final.base}) is one CI tests (20, 24)`);
    const pkg = JSON.parse(read('package.json')) as { engines: { node: string } };
    assert.match(pkg.engines.node, new RegExp(`\\b${major}\\b`), 'and one package.json engines names');
    for (const path of ['bin/goddb.js', 'dist/src/cli/main.js', 'node_modules/lmdb/package.json', 'config/default.json', 'package.json']) {
      assert.ok(image.exists(posix.join(appDir, path)), `${appDir}/${path} is in the image`);
    }
    assert.ok(!image.exists(posix.join(appDir, 'src')) && !image.exists(posix.join(appDir, 'dist/test')), 'no TypeScript sources or compiled tests in the image');
  });

  it('deploy - every file the entry point imports is in the image, and every package it imports is a production dependency', () => {
    assert.deepEqual(final.entrypoint.slice(0, 1), ['node']);
    assertCommandInImage(final.entrypoint, 'ENTRYPOINT');
    const pkg = JSON.parse(readFileSync(image.localPath(posix.join(appDir, 'package.json'))!, 'utf8')) as { dependencies: Record<string, string> };
    assert.deepEqual(image.importProblems(final.entrypoint[1]!, pkg, posix.join(appDir, 'node_modules')), []);
  });

  it('deploy - what the build copies from the context exists and .dockerignore does not leave it out', () => {
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    const matches = (pattern: string, path: string) => new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}(/|$)`).test(path);
    for (const src of image.stages.flatMap((s) => s.contextSources)) {
      const hit = ignored.find((p) => matches(p, posix.normalize(src)));
      assert.equal(hit, undefined, `COPY ${src} is excluded by .dockerignore (${hit})`);
    }
    for (const heavy of ['node_modules', 'dist', 'data', '.git']) assert.ok(ignored.some((p) => matches(p, heavy)), `.dockerignore leaves out ${heavy}`);
  });

  it('deploy - the worker runs as a non-root user, with its data on a volume it owns, and listens on the exposed port on every interface', () => {
    const user = userOf(final);
    assert.deepEqual(final.cmd, ['worker'], 'the default command is a worker');
    const cfg = workerConfig(final.cmd.slice(1), final.env);
    assert.ok(final.volumes.includes(cfg.dataDir), `the data directory ${cfg.dataDir} is a VOLUME (${final.volumes.join(', ')})`);
    assert.ok(final.dirs.has(cfg.dataDir), `${cfg.dataDir} is created in the image`);
    assert.equal(final.owners.get(cfg.dataDir), `${user.name}:${user.name}`, `${cfg.dataDir} belongs to ${user.name}`);
    assert.ok(final.exposed.includes(cfg.http.port), `the HTTP port ${cfg.http.port} is exposed (${final.exposed.join(', ')})`);
    assert.equal(cfg.http.host, '0.0.0.0', 'the HTTP port listens beyond the container');
  });

  it('deploy - the HEALTHCHECK asks /ready on the configured port: healthy when the node is ready, unhealthy otherwise', async () => {
    const hc = final.healthcheck;
    assert.ok(hc, 'the image has a HEALTHCHECK');
    assertCommandInImage(hc.command, 'HEALTHCHECK');
    assert.match(hc.command.join(' '), /\/ready\b/, 'it asks /ready, which says ready or not without the membership view');
    assert.ok(Number.parseInt(hc.options['start-period'] ?? '0', 10) >= 60, 'the start period covers a worker waiting for NATS (nats.connectWaitMs, 60 s by default)');
    const port = await freePort();
    // Not spawnSync: the HTTP server it asks runs in this process.
    const run = () => new Promise<number | null>((resolve, reject) => {
      const child = spawn(process.execPath, hc.command.slice(1), { env: { ...process.env, GODDB_HTTP_PORT: String(port) }, stdio: 'ignore', timeout: 10_000 });
      child.once('error', reject);
      child.once('exit', (code) => resolve(code));
    });
    assert.equal(await run(), 1, 'unhealthy while nothing listens');
    let ready = false;
    const http = await startHttp('127.0.0.1', port, { ready: () => ready, health: () => ({}) }, new Registry());
    try {
      assert.equal(await run(), 1, 'unhealthy while the node is not ready');
      ready = true;
      assert.equal(await run(), 0, 'healthy once the node is ready');
      const res = await fetch(`http://127.0.0.1:${port}/ready`);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), 'ready\n');
    } finally {
      await http.close();
    }
  });
});

describe('deploy - Kubernetes', () => {
  const sts = manifests.find((m) => m.kind === 'StatefulSet');
  assert.ok(sts, 'the manifest has a StatefulSet');
  const pod = sts.spec['template'].spec;
  const container = pod.containers[0];

  it('deploy - the StatefulSet names a headless Service that selects its pods and serves a port they have', () => {
    const svc = manifests.find((m) => m.kind === 'Service' && m.metadata.name === sts.spec['serviceName']);
    assert.ok(svc, `a Service named ${sts.spec['serviceName']} (the StatefulSet's serviceName) is defined`);
    assert.equal(svc.spec['clusterIP'], 'None', 'the Service is headless');
    const labels = sts.spec['template'].metadata.labels as Record<string, string>;
    for (const [k, v] of Object.entries(svc.spec['selector'] as Record<string, string>)) assert.equal(labels[k], v, `the Service selects the pods (${k}=${v})`);
    const names = (container.ports as { name: string }[]).map((p) => p.name);
    for (const p of svc.spec['ports'] as { targetPort: string | number }[]) assert.ok(names.includes(String(p.targetPort)) || typeof p.targetPort === 'number', `the Service targets a container port (${p.targetPort})`);
  });

  it('deploy - the container runs the image built by the Dockerfile, from absolute paths that exist in it, as its user', () => {
    assert.equal(container.image, 'goddb:latest');
    assert.match(read('Dockerfile'), /docker build -t goddb:latest \./, 'the Dockerfile says how to build goddb:latest');
    assertCommandInImage(container.command, 'the container command');
    assert.deepEqual(container.command, [...final.entrypoint, 'worker'], 'the command is the image entry point with worker');
    const user = userOf(final);
    assert.equal(pod.securityContext.runAsUser, user.uid);
    assert.equal(pod.securityContext.runAsGroup, user.gid);
    assert.equal(pod.securityContext.fsGroup, user.gid, 'the data volume is writable by the image user');
  });

  it('deploy - its flags are valid worker flags, and its data directory, ports, peers and probe agree with them', () => {
    const podName = `${sts.metadata.name}-0`;
    const env: Record<string, string> = { ...final.env };
    for (const e of container.env as { name: string; value?: string }[]) env[e.name] = e.value ?? podName;
    const args = (container.args as string[]).map((a) => a.replace(/\$\((\w+)\)/g, (_, name: string) => env[name] ?? ''));
    const cfg = workerConfig(args, env);
    assert.equal(cfg.nodeId, podName, 'the pod name is the node id');
    const mounts = (container.volumeMounts as { mountPath: string }[]).map((m) => m.mountPath);
    assert.ok(mounts.includes(cfg.dataDir), `the data directory ${cfg.dataDir} is a mounted volume (${mounts.join(', ')})`);
    assert.ok(final.volumes.includes(cfg.dataDir), `and the image's VOLUME`);
    const httpPort = (container.ports as { name: string; containerPort: number }[]).find((p) => p.containerPort === cfg.http.port);
    assert.ok(httpPort, `the worker's HTTP port ${cfg.http.port} is a container port`);
    assert.equal(cfg.http.host, '0.0.0.0');
    const probe = container.readinessProbe.httpGet as { path: string; port: string | number };
    assert.equal(probe.path, '/ready');
    assert.ok(probe.port === httpPort.name || probe.port === httpPort.containerPort, 'the probe asks the worker HTTP port');
    const replicas = sts.spec['replicas'] as number;
    assert.deepEqual(cfg.gossip.peers, Array.from({ length: replicas }, (_, i) => `${sts.metadata.name}-${i}`), 'the peers are the pods of the StatefulSet');
    const natsPorts = readdirSync(join(root, 'deploy/nats')).map((f) => Number(/^listen:\s*\S+:(\d+)/m.exec(read(`deploy/nats/${f}`))?.[1]));
    for (const url of cfg.nats.servers) assert.ok(natsPorts.includes(Number(new URL(url).port)), `${url} is a port the deploy/nats servers listen on`);
  });
});

describe('deploy - systemd', () => {
  const unit = parseUnit(read('deploy/systemd/goddb-worker@.service'));
  const service = unit.get('Service')!;

  it('deploy - the unit runs the installed program as goddb, in directories systemd creates', () => {
    const user = service.get('User')?.[0];
    assert.equal(user, 'goddb');
    assert.match(read('README.md'), /useradd --system[^\n]* goddb/, 'the README says how to create the goddb user');
    const exec = service.get('ExecStart')![0]!.split(/\s+/);
    const command = exec[0] === '/usr/bin/env' ? exec.slice(1) : exec;
    assert.equal(command[0], 'node');
    const script = command[1]!;
    assert.ok(script.startsWith('/opt/goddb/'), `the program is under /opt/goddb (${script})`);
    assert.match(read('README.md'), /\/opt\/goddb/, 'the README says how to install it there');
    assert.ok(image.exists(posix.join(appDir, posix.relative('/opt/goddb', script))), `${script} exists in the installed layout (the image's ${appDir})`);

    const instance = 'node1';
    const args = command.slice(3).map((a) => a.replaceAll('%i', instance));
    assert.equal(command[2], 'worker');
    const flags = parseWorkerArgs(args);
    const dataDir = String(flags['dataDir']);
    assert.equal(dataDir, `/var/lib/${service.get('StateDirectory')?.[0]?.replaceAll('%i', instance)}`, 'the data directory is the StateDirectory systemd creates for the user');
    const configFile = (flags['config'] as string[])[0]!;
    assert.equal(posix.dirname(configFile), `/etc/${service.get('ConfigurationDirectory')?.[0]}`, 'the config file is in the ConfigurationDirectory');
    // The example settings stand in for /etc/goddb/node1.json: with the unit's flags they make a valid configuration.
    const cfg = loadConfig({ flags: { ...flags, config: [join(root, 'deploy/systemd/node.example.json')] }, env: {} });
    assert.equal(cfg.nodeId, instance);
    assert.equal(cfg.dataDir, dataDir);
    assert.ok(Number(service.get('TimeoutStopSec')?.[0]) > 15, 'systemd waits longer than the worker\'s own stop deadline (15 s)');
  });
});

describe('deploy - what the unit and the manifest run exists', () => {
  const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  const goddb = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 20_000 });
  const workerHelp = goddb('worker', '--help');
  /** The flags `goddb worker --help` lists, and the environment variables it says it reads. */
  const helpFlags = new Set([...workerHelp.stdout.matchAll(/^\s+(--[a-z][a-z0-9-]*)/gm)].map((m) => m[1]!));
  const helpEnv = new Set([...workerHelp.stdout.matchAll(/\[env (GODDB_[A-Z0-9_]+)\]/g)].map((m) => m[1]!));
  const sts = manifests.find((m) => m.kind === 'StatefulSet')!;
  const pod = sts.spec['template'].spec;
  const container = pod.containers[0];
  const env = Object.fromEntries((container.env as { name: string; value?: string }[]).map((e) => [e.name, e.value]));
  const prestopSource = readFileSync(fileURLToPath(new URL('../../src/cli/prestop.js', import.meta.url)), 'utf8');

  /** The flags of a worker command line, in the GNU spelling the help uses (the seed's `-peers` is `--peers`). */
  const flagsOf = (args: string[]) => args.filter((a) => a.startsWith('-')).map((a) => (a.startsWith('--') ? a : `-${a}`).split('=')[0]!);

  it('deploy - every flag the systemd unit and the StatefulSet give the worker is one `goddb worker --help` lists', () => {
    assert.equal(workerHelp.status, 0, workerHelp.stderr);
    assert.ok(helpFlags.size > 20 && helpFlags.has('--data-dir'), `the help lists the worker flags (${helpFlags.size})`);
    const exec = parseUnit(read('deploy/systemd/goddb-worker@.service')).get('Service')!.get('ExecStart')![0]!.split(/\s+/);
    const unitArgs = exec.slice(exec.indexOf('worker') + 1);
    const k8sArgs = container.args as string[];
    for (const [what, args] of [['the systemd unit', unitArgs], ['the StatefulSet', k8sArgs]] as const) {
      const flags = flagsOf([...args]);
      assert.ok(flags.length >= 2, `${what} gives flags`);
      for (const flag of flags) assert.ok(helpFlags.has(flag), `${what}: ${flag} is not a flag of goddb worker --help`);
    }
  });

  it('deploy - every GODDB_ variable the StatefulSet sets is one the worker reads (its --help) or goddb prestop reads', () => {
    const names = Object.keys(env).filter((n) => n.startsWith('GODDB_'));
    assert.ok(names.length >= 3);
    for (const name of names) assert.ok(helpEnv.has(name) || prestopSource.includes(`'${name}'`), `${name} is read by nothing`);
    for (const name of Object.keys(final.env).filter((n) => n.startsWith('GODDB_'))) assert.ok(helpEnv.has(name), `the Dockerfile's ${name} is read by nothing`);
  });

  it('deploy - node.example.json names only keys of the config schema', async () => {
    const { configSchema } = await import('../../src/config/schema.js');
    const walk = (value: Record<string, unknown>, schema: Record<string, unknown>, path: string) => {
      for (const [key, v] of Object.entries(value)) {
        const node = schema[key] as Record<string, unknown> | undefined;
        assert.ok(node !== undefined, `${path}${key} is not a config key`);
        if (v !== null && typeof v === 'object' && !Array.isArray(v) && !('default' in node)) walk(v as Record<string, unknown>, node, `${path}${key}.`);
      }
    };
    walk(JSON.parse(read('deploy/systemd/node.example.json')) as Record<string, unknown>, configSchema as unknown as Record<string, unknown>, '');
  });

  it('deploy - a PodDisruptionBudget over the pods keeps a quorum: at most N - max(R, W) of them down at once, and at least one may go', () => {
    const pdb = manifests.find((m) => m.kind === 'PodDisruptionBudget');
    assert.ok(pdb, 'the manifest has a PodDisruptionBudget');
    const labels = sts.spec['template'].metadata.labels as Record<string, string>;
    for (const [k, v] of Object.entries(pdb.spec['selector'].matchLabels as Record<string, string>)) assert.equal(labels[k], v, `it selects the pods (${k}=${v})`);
    const cfg = workerConfig((container.args as string[]).map((a) => a.replace('$(POD_NAME)', `${sts.metadata.name}-0`)), { ...final.env, ...env, GODDB_NATS_PASS: 'x' });
    const replicas = sts.spec['replicas'] as number;
    const n = Math.min(cfg.quorum.replication, replicas);
    const quorum = Math.max(cfg.quorum.readQuorum, cfg.quorum.writeQuorum);
    const maxUnavailable = pdb.spec['maxUnavailable'] ?? replicas - (pdb.spec['minAvailable'] as number);
    assert.equal(typeof maxUnavailable, 'number', 'a number of pods, not a percentage');
    assert.ok(maxUnavailable >= 1, 'a drain can proceed, one pod at a time');
    assert.ok(maxUnavailable <= n - quorum, `with N=${n}, R=${cfg.quorum.readQuorum}, W=${cfg.quorum.writeQuorum} at most ${n - quorum} may be down (got ${maxUnavailable})`);
    assert.equal(maxUnavailable, 1, 'N=3 with quorums of 2: one');
  });

  it('deploy - the preStop hook is goddb prestop (goddb leave when scaled away), allowed to read the StatefulSet, within the grace period', () => {
    const hook = container.lifecycle?.preStop?.exec?.command as string[] | undefined;
    assert.ok(hook, 'the worker has a preStop exec hook');
    assertCommandInImage(hook, 'the preStop hook');
    assert.deepEqual(hook.slice(0, 3), [...final.entrypoint, 'prestop'], 'it runs goddb prestop');
    const help = goddb('prestop', '--help');
    assert.equal(help.status, 0, `goddb prestop is a command: ${help.stderr}`);
    assert.match(help.stdout, /goddb leave/);
    for (const flag of flagsOf(hook.slice(3))) assert.ok(help.stdout.includes(`${flag} `), `${flag} is a flag of goddb prestop`);
    const timeout = hook[hook.indexOf('--timeout') + 1];
    assert.ok(timeout !== undefined && /^\d+m$/.test(timeout), 'it bounds the leave in minutes');
    assert.ok(Number.parseInt(timeout, 10) * 60 < (pod.terminationGracePeriodSeconds as number), `the leave (${timeout}) ends within terminationGracePeriodSeconds (${pod.terminationGracePeriodSeconds} s)`);
    // It reads spec.replicas as the pod's service account: a Role allowing get on this StatefulSet, bound to it.
    const account = pod.serviceAccountName as string;
    assert.ok(manifests.some((m) => m.kind === 'ServiceAccount' && m.metadata.name === account), `the ServiceAccount ${account} is defined`);
    const binding = manifests.find((m) => m.kind === 'RoleBinding' && (m as any).subjects?.some((s: { kind: string; name: string }) => s.kind === 'ServiceAccount' && s.name === account)) as any;
    assert.ok(binding, `a RoleBinding binds ${account}`);
    const role = manifests.find((m) => m.kind === 'Role' && m.metadata.name === binding.roleRef.name) as any;
    assert.ok(role?.rules.some((r: { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }) =>
      r.apiGroups.includes('apps') && r.resources.includes('statefulsets') && r.verbs.includes('get') && (r.resourceNames ?? [sts.metadata.name]).includes(sts.metadata.name)), 'its Role allows get on the StatefulSet');
    // The leave is a client request: the client role of deploy/nats/auth.conf, the worker the node role.
    const auth = read('deploy/nats/auth.conf');
    const roleOf = (user: string) => new RegExp(`user: ${user}, password: \\$(\\w+), permissions: \\$(\\w+)`).exec(auth)?.[2];
    assert.equal(roleOf(env['GODDB_NATS_USER']!), 'GODDB_NODE_PERMISSIONS', 'the worker connects as the node role');
    assert.equal(roleOf(env['GODDB_CLIENT_NATS_USER']!), 'GODDB_CLIENT_PERMISSIONS', 'goddb prestop leaves as the client role');
    assert.ok(sts.spec['persistentVolumeClaimRetentionPolicy']?.whenScaled === 'Delete', 'the volume of a pod scaled away (it left) is dropped: it could not rejoin');
  });
});

describe('deploy - NATS configurations', () => {
  it('deploy - every NATS configuration in the repository passes nats-server -t, and a broken one does not', async () => {
    const nats = await findBinary('nats-server');
    const files = natsConfigs(root);
    assert.ok(files.length >= 4, `found the NATS configurations (${files.join(', ')})`);
    for (const file of files) {
      // The role passwords come from the server's environment (deploy/nats/auth.conf).
      const env = { ...process.env, GODDB_NATS_NODE_PASSWORD: 'pnode', GODDB_NATS_CLIENT_PASSWORD: 'pclient' };
      const r = spawnSync(nats, ['-t', '-c', join(root, file)], { encoding: 'utf8', timeout: 10_000, env });
      assert.equal(r.status, 0, `nats-server -t ${file}: ${r.stderr}${r.stdout}`);
    }
    const dir = mkdtempSync(join(tmpdir(), 'goddb-deploy-'));
    try {
      writeFileSync(join(dir, 'broken.conf'), 'port: 4222\nmax_payloadd: 1MB\n');
      assert.notEqual(spawnSync(nats, ['-t', '-c', join(dir, 'broken.conf')], { timeout: 10_000 }).status, 0, 'nats-server -t refuses an unknown field');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** `*.conf` files that are NATS server configurations: named for NATS, or in a directory that is. */
function natsConfigs(dir: string): string[] {
  const out: string[] = [];
  const skip = new Set(['node_modules', '.git', 'data', 'bench-results']);
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) {
        // deploy/tls names certificates that exist only once made: tls.test.ts makes them and checks its configurations.
        if (!skip.has(entry.name) && !entry.name.startsWith('dist') && relative(dir, path) !== join('deploy', 'tls')) walk(path);
      } else if (entry.name.endsWith('.conf') && /nats/.test(relative(dir, path))) {
        out.push(relative(dir, path));
      }
    }
  };
  walk(dir);
  return out.sort();
}

/** A systemd unit: section -> key -> values (a key may repeat). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(current && eq > 0, `unit line outside a section or without =: ${line}`);
    const key = line.slice(0, eq).trim();
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return sections;
}
