/**
 * Issue 14, item 1: the SDK installs as a user installs it. A copy of the
 * package's sources (what git holds) is packed with `npm pack`, which builds
 * it (`prepare`); the tarball goes into an empty project outside the
 * repository, where the README's SDK example, copied from the README as
 * written, is compiled against the installed types and run against three
 * workers; so is the installed `goddb` command. A second project installs
 * from a git URL, where npm builds the package itself.
 *
 * Offline: the projects get the production packages copied from this
 * repository's node_modules, with their bin links (npm then finds every
 * dependency in place and fetches nothing), and npm runs with --offline
 * (nothing but its cache), so the git install builds from the cache that
 * `npm ci` filled.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeContext } from '../../src/client/context.js';
import { packageRoot } from '../../src/config/load.js';
import { startWireCluster, type WireCluster } from '../helpers/wire_cluster.js';
import { tempDir, type ScriptRun } from '../helpers/workers.js';

const root = packageRoot();
const ids = ['p1', 'p2', 'p3'];
/** What a clone holds that the build and the package need. */
const sources = ['package.json', 'package-lock.json', 'tsconfig.json', 'README.md', 'nats-server.conf', 'deploy', 'bin', 'config', 'src'];
const installTimeoutMs = 90_000;

/**
 * The environment of a user's shell: none of the npm_* variables that
 * `npm test` sets (npm_config_local_prefix would make npm work on this
 * repository), no NATS settings, and a config home with the test's context.
 */
function userEnv(configHome: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && !['NATS_URL', 'GODDB_NATS_SERVERS', 'GODDB_CONTEXT'].includes(k)) env[k] = v;
  if (process.env['npm_config_cache']) env['npm_config_cache'] = process.env['npm_config_cache'];
  return { ...env, XDG_CONFIG_HOME: configHome, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs = installTimeoutMs): Promise<ScriptRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function ok(r: ScriptRun, what: string): ScriptRun {
  assert.equal(r.code, 0, `${what} failed:\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** An empty ESM project holding copies of this package's production dependencies (as npm would install them). */
function emptyProject(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'my-app', version: '1.0.0', private: true, type: 'module' }, null, 2)}\n`);
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  for (const [path, entry] of Object.entries(lock.packages)) {
    // Top-level entries only (a copy takes its nested node_modules along); optional ones for other platforms are absent.
    if (path === '' || entry.dev === true || path.split('node_modules/').length > 2 || !existsSync(join(root, path))) continue;
    cpSync(join(root, path), join(dir, path), { recursive: true });
  }
  // Without their bin links npm would fetch those packages again to make them.
  cpSync(join(root, 'node_modules', '.bin'), join(dir, 'node_modules', '.bin'), { recursive: true, verbatimSymlinks: true });
}

/** The first ```ts block of the README's SDK section, as written. */
function readmeExample(): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### The TypeScript SDK'));
  const block = /```ts\n([\s\S]*?)```/.exec(section);
  assert.ok(block, 'the README has a TypeScript example in its SDK section');
  return block[1]!;
}

describe('the SDK as a user installs it', () => {
  const work = tempDir('sdk-package');
  const configHome = join(work.path, 'config');
  const env = userEnv(configHome);
  let cluster: WireCluster;

  before(async () => {
    cluster = await startWireCluster('sdkpkg', ids, 'memory');
    writeContext(join(configHome, 'goddb', 'context.json'), { url: cluster.nats.url });
  });

  after(async () => {
    await cluster?.stop();
    work.remove();
  });

  it('package - npm pack builds a tarball that installs offline, and the README example runs as written', { timeout: 120_000 }, async () => {
    const pkg = join(work.path, 'god-db');
    for (const name of sources) cpSync(join(root, name), join(pkg, name), { recursive: true });
    symlinkSync(join(root, 'node_modules'), join(pkg, 'node_modules'));
    const packed = JSON.parse(ok(await run('npm', ['pack', '--json'], pkg, env), 'npm pack').stdout) as { filename: string; files: { path: string }[] }[];
    const files = packed[0]!.files.map((f) => f.path);
    for (const needed of ['package.json', 'README.md', 'bin/goddb.js', 'config/default.json', 'nats-server.conf', 'deploy/nats/auth.conf', 'dist/src/client/index.js', 'dist/src/client/index.d.ts', 'dist/src/cli/main.js']) {
      assert.ok(files.includes(needed), `the tarball holds ${needed}`);
    }
    assert.deepEqual(files.filter((f) => /^(src|test|dist\/test)\/|\.map$|\.ts$/.test(f) && !f.endsWith('.d.ts')), [], 'no sources, tests or source maps');

    const app = join(work.path, 'my-app');
    emptyProject(app);
    ok(await run('npm', ['install', '--offline', '--no-audit', '--no-fund', join(pkg, packed[0]!.filename)], app, env), 'npm install of the tarball');
    // The user's own TypeScript setup: Node's types and a strict NodeNext project.
    for (const types of ['@types/node', 'undici-types']) cpSync(join(root, 'node_modules', types), join(app, 'node_modules', types), { recursive: true });
    writeFileSync(join(app, 'example.ts'), readmeExample());
    const tsconfig = { compilerOptions: { target: 'ES2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, outDir: 'out', types: ['node'] }, files: ['example.ts'] };
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(tsconfig));
    ok(await run(join(root, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], app, env), 'tsc on the README example, against the installed types');

    const example = ok(await run(process.execPath, ['out/example.js'], app, env, 30_000), 'the README example');
    assert.match(example.stdout, /^hello$/m);
    for (const id of ids) assert.match(example.stdout, new RegExp(`nodeId: '${id}'`));
    const status = ok(await run(join(app, 'node_modules', '.bin', 'goddb'), ['status'], app, env, 30_000), 'the installed goddb');
    assert.deepEqual(status.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/)[0]), ids);
  });

  it('package - npm install from a git URL builds the package (prepare) and it runs', { timeout: 120_000 }, async () => {
    const repo = join(work.path, 'god-db.git');
    for (const name of sources) cpSync(join(root, name), join(repo, name), { recursive: true });
    const git = (...args: string[]) => run('git', ['-c', 'user.email=test@example.com', '-c', 'user.name=test', '-c', 'commit.gpgsign=false', ...args], repo, env);
    ok(await git('init', '-q'), 'git init');
    ok(await git('add', '-A'), 'git add');
    ok(await git('commit', '-q', '-m', 'god-db'), 'git commit');

    const app = join(work.path, 'git-app');
    emptyProject(app);
    ok(await run('npm', ['install', '--offline', '--no-audit', '--no-fund', `git+file://${repo}`], app, env), 'npm install from git');
    assert.ok(existsSync(join(app, 'node_modules', 'god-db', 'dist', 'src', 'client', 'index.js')), 'npm built dist/ on install');
    const script = "import { connect } from 'god-db'; const db = await connect(); await db.put('from.git', 'yes'); console.log((await db.get('from.git'))?.text()); await db.close();";
    const used = ok(await run(process.execPath, ['--input-type=module', '-e', script], app, env, 30_000), 'the SDK installed from git');
    assert.equal(used.stdout.trim(), 'yes');
  });
});
