import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { packageRoot } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';

function leafPaths(node: object, prefix = ''): string[] {
  return Object.entries(node).flatMap(([k, v]) => {
    const path = prefix ? `${prefix}.${k}` : k;
    return v && typeof v === 'object' && 'doc' in v && 'default' in v ? [path] : leafPaths(v as object, path);
  });
}

describe('readme', () => {
  it('readme - documents every config key', () => {
    const readme = readFileSync(`${packageRoot()}/README.md`, 'utf8');
    const missing = leafPaths(configSchema).filter((p) => !readme.includes(`\`${p}\``));
    assert.deepEqual(missing, []);
  });
});
