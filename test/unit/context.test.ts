/**
 * The context (src/client/context.ts): where the CLI and connect() look for
 * the cluster, in which order, and the file `goddb dev` writes.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContextError, contextFile, credentialsOf, readContext, resolveTarget, writeContext } from '../../src/client/context.js';
import { cliTarget, unreachableMessage } from '../../src/cli/client_options.js';

const dir = mkdtempSync(join(tmpdir(), 'goddb-context-'));
const file = (name: string, content: unknown) => {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
};

describe('context', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('context - the file is $GODDB_CONTEXT, else under $XDG_CONFIG_HOME, else ~/.config', () => {
    assert.equal(contextFile({ GODDB_CONTEXT: '/x/c.json', XDG_CONFIG_HOME: '/cfg' }, '/home/u'), '/x/c.json');
    assert.equal(contextFile({ XDG_CONFIG_HOME: '/cfg' }, '/home/u'), '/cfg/goddb/context.json');
    assert.equal(contextFile({}, '/home/u'), '/home/u/.config/goddb/context.json');
  });

  it('context - written whole, for its owner only, and read back', () => {
    const path = join(dir, 'sub', 'dir', 'context.json');
    writeContext(path, { url: 'nats://127.0.0.1:4250', description: 'dev' });
    assert.deepEqual(readContext(path), { url: 'nats://127.0.0.1:4250', description: 'dev' });
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.match(readFileSync(path, 'utf8'), /"url": "nats:\/\/127.0.0.1:4250"/);
  });

  it('context - a missing, non-JSON or url-less file is a ContextError that names it', () => {
    const cases: [string, RegExp][] = [
      [join(dir, 'absent.json'), /does not exist/],
      [file('garbage.json', '{nope'), /cannot read the context/],
      [file('array.json', [1]), /not a JSON object/],
      [file('nourl.json', { description: 'x' }), /has no "url"/],
      [file('badkey.json', { url: 'nats://h:1', token: 7 }), /"token" must be a string/],
    ];
    for (const [path, reason] of cases) {
      assert.throws(() => readContext(path), (err: unknown) => err instanceof ContextError && reason.test(err.message) && err.message.includes(path), path);
    }
  });

  it('context - servers given win, then a context given, then GODDB_NATS_SERVERS, NATS_URL, GODDB_CONTEXT, the default file, 4222', () => {
    const given = file('given.json', { url: 'nats://given:1' });
    const named = file('named.json', { url: 'nats://named:2, nats://named:3' });
    const xdg = join(dir, 'xdg');
    writeContext(join(xdg, 'goddb', 'context.json'), { url: 'nats://default:4' });
    const full = { GODDB_NATS_SERVERS: 'nats://env:5', NATS_URL: 'nats://natsurl:6', GODDB_CONTEXT: named, XDG_CONFIG_HOME: xdg };
    const t = (g: { servers?: string; context?: string }, env: NodeJS.ProcessEnv) => {
      const r = resolveTarget(g, env, { servers: '--servers', context: '--context-file' });
      return [r.servers.join(','), r.source];
    };
    assert.deepEqual(t({ servers: 'nats://flag:0', context: given }, full), ['nats://flag:0', '--servers']);
    assert.deepEqual(t({ context: given }, full), ['nats://given:1', `--context-file ${given}`]);
    assert.deepEqual(t({}, full), ['nats://env:5', 'GODDB_NATS_SERVERS']);
    assert.deepEqual(t({}, { ...full, GODDB_NATS_SERVERS: '' }), ['nats://natsurl:6', 'NATS_URL']);
    assert.deepEqual(t({}, { GODDB_CONTEXT: named, XDG_CONFIG_HOME: xdg }), ['nats://named:2,nats://named:3', `GODDB_CONTEXT=${named}`]);
    assert.deepEqual(t({}, { XDG_CONFIG_HOME: xdg }), ['nats://default:4', `context ${join(xdg, 'goddb', 'context.json')}`]);
    const none = t({}, { XDG_CONFIG_HOME: join(dir, 'empty') });
    assert.equal(none[0], 'nats://127.0.0.1:4222');
    assert.match(none[1]!, /^the default \(no context at .*empty\/goddb\/context.json; npm start writes one\)$/);
  });

  it('context - a GODDB_CONTEXT that names no file is an error, not a silent fallback', () => {
    assert.throws(() => resolveTarget({}, { GODDB_CONTEXT: join(dir, 'nowhere.json') }), ContextError);
  });

  it('context - its credentials apply to its own servers, and credential flags win', () => {
    const ctx = file('creds.json', { url: 'nats://secure:7', user: 'u', password: 'p', token: 't', creds: '/c.creds', nkey: '/seed', ca: '/ca.pem', cert: '/cert.pem', key: '/key.pem' });
    const target = cliTarget({ timeout: '5000', contextFile: ctx }, {});
    assert.deepEqual(credentialsOf(target.context), {
      user: 'u', pass: 'p', token: 't', credsFile: '/c.creds', nkeySeedFile: '/seed', tls: { caFile: '/ca.pem', certFile: '/cert.pem', keyFile: '/key.pem' },
    });
    assert.equal(cliTarget({ timeout: '5000', servers: 'nats://other:1', contextFile: ctx }, {}).context, undefined, 'not sent to other servers');
  });

  it('context - the message for an unreachable cluster says what was tried, from where, and how to start one', () => {
    const text = unreachableMessage({ servers: ['nats://127.0.0.1:4250'], source: 'context /h/.config/goddb/context.json' }, 'connection refused');
    assert.match(text, /could not connect to NATS at nats:\/\/127\.0\.0\.1:4250 \(from context \/h\/\.config\/goddb\/context\.json\): connection refused/);
    assert.match(text, /npm start/);
    assert.match(text, /--servers/);
    assert.doesNotMatch(text, /500/);
    const refused = unreachableMessage({ servers: ['nats://h:4222'], source: '--servers' }, 'Authorization Violation');
    assert.match(refused, /refused the credentials/);
    assert.doesNotMatch(refused, /npm start/);
  });
});
