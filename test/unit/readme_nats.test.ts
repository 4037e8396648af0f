/**
 * Issue 14, item 8: the README's `nats` examples say where the NATS CLI
 * comes from, and each has its `goddb` equivalent beside it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { packageRoot } from '../../src/config/load.js';

const readme = readFileSync(`${packageRoot()}/README.md`, 'utf8');
const goddbCommands = ['get', 'put', 'del', 'owners', 'status', 'client', 'keys', 'watch'];

describe('readme - the NATS CLI', () => {
  it('readme - says how to get the nats command: its GitHub releases or go install', () => {
    assert.match(readme, /github\.com\/nats-io\/natscli\/releases/);
    assert.match(readme, /go install\s+github\.com\/nats-io\/natscli\/nats@latest/);
  });

  it('readme - every nats command in a shell block has a goddb equivalent in its comment', () => {
    const lines = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => m[1]!.split('\n')).filter((l) => /^nats\s/.test(l));
    assert.ok(lines.length >= 5, `the README shows nats examples (${lines.length})`);
    const missing = lines.filter((l) => {
      const equivalent = /#\s*=?\s*(?:node bin\/goddb\.js|goddb)\s+(\S+)/.exec(l);
      return !equivalent || !goddbCommands.includes(equivalent[1]!);
    });
    assert.deepEqual(missing, []);
  });

  it('readme - every paragraph that names a nats command in prose names goddb too', () => {
    const paragraphs = readme.replace(/```[\s\S]*?```/g, '').split(/\n\s*\n/);
    const missing = paragraphs.filter((p) => /`nats (req|micro|pub|sub)\b/.test(p) && !/goddb/.test(p));
    assert.deepEqual(missing, []);
  });
});
