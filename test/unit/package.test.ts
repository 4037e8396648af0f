/**
 * The package as npm sees it (package.json), and what the SDK entry loads:
 * every module `import { connect } from 'god-db'` reaches, compiled, must
 * import only Node built-ins and production dependencies, and nothing a
 * node needs (storage engines, logging, metrics, configuration).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { packageRoot } from '../../src/config/load.js';

interface PackageJson {
  main: string;
  types: string;
  exports: Record<string, unknown>;
  files: string[];
  bin: Record<string, string>;
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}

const root = packageRoot();
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as PackageJson;
/** This build's output root (dist/, or dist-<name>/ for a build of one's own). */
const out = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The SDK's compiled modules may import these packages and no others. */
// @nats-io/jetstream: watch() resumes from a stream capturing the change feed (loaded only then).
const sdkPackages = ['@nats-io/transport-node', '@nats-io/nats-core', '@nats-io/services', '@nats-io/jetstream'];

/** Every specifier a compiled ES module imports (static, re-exports, side effects and literal dynamic imports). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found = [
    ...text.matchAll(/^\s*(?:import|export)\s[^'";]*?\sfrom\s*['"]([^'"]+)['"]/gm),
    ...text.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm),
    ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
  ];
  return found.map((m) => m[1]!);
}

/** The modules reachable from `entry` and the bare specifiers they import. */
function graph(entry: string): { modules: string[]; packages: Set<string> } {
  const modules: string[] = [];
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (modules.includes(file)) return;
    modules.push(file);
    for (const spec of importsOf(file)) {
      if (spec.startsWith('.')) visit(resolve(dirname(file), spec));
      else packages.add(spec);
    }
  };
  visit(entry);
  return { modules, packages };
}

const packageName = (spec: string) => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);

describe('package', () => {
  it('package - exports name the built SDK and its types; the files list holds what the entry, the bin and goddb dev need', () => {
    assert.deepEqual(pkg.exports['.'], { types: './dist/src/client/index.d.ts', default: './dist/src/client/index.js' });
    assert.equal(pkg.main, 'dist/src/client/index.js');
    assert.equal(pkg.types, 'dist/src/client/index.d.ts');
    assert.deepEqual(pkg.bin, { goddb: 'bin/goddb.js' });
    assert.match(readFileSync(join(root, pkg.bin['goddb']!), 'utf8'), /import '\.\.\/dist\/src\/cli\/main\.js'/);
    // nats-server.conf includes deploy/nats/auth.conf (the NATS roles).
    assert.deepEqual(pkg.files, ['bin/', 'config/', 'dist/src/**/*.js', 'dist/src/**/*.d.ts', 'nats-server.conf', 'deploy/nats/auth.conf']);
    for (const f of ['bin', 'config/default.json', 'nats-server.conf', 'deploy/nats/auth.conf']) assert.ok(existsSync(join(root, f)), f);
  });

  it('package - a git install and npm pack build it: prepare runs the TypeScript build', () => {
    assert.equal(pkg.scripts['prepare'], 'tsc -p tsconfig.json');
    assert.ok(pkg.devDependencies['typescript'], 'the compiler is a dev dependency, which npm installs to run prepare');
  });

  it('package - the SDK entry loads only Node built-ins and the NATS client packages, all production dependencies', () => {
    const { modules, packages } = graph(join(out, 'src', 'client', 'index.js'));
    const outside = modules.map((m) => relative(join(out, 'src'), m)).filter((m) => m.startsWith('..'));
    assert.deepEqual(outside, [], 'nothing outside src/ (tests, helpers)');
    const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
    const external = [...packages].filter((p) => !builtins.has(p)).map(packageName);
    assert.deepEqual([...new Set(external)].sort(), [...sdkPackages].sort());
    for (const name of external) assert.ok(pkg.dependencies[name], `${name} is a production dependency`);
    const names = modules.map((m) => relative(join(out, 'src'), m));
    for (const nodeOnly of ['node/', 'storage/', 'config/load.js', 'devtools/', 'bench/', 'cli/']) {
      assert.deepEqual(names.filter((n) => n.startsWith(nodeOnly)), [], `the SDK does not load ${nodeOnly}`);
    }
  });
});
