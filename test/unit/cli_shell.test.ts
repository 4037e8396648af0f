/**
 * The interactive shell's line parser (src/cli/shell.ts): no cluster needed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseShellLine } from '../../src/cli/shell.js';

describe('shell - parseShellLine', () => {
  it('shell - put takes a key and the rest of the line as the value', () => {
    assert.deepEqual(parseShellLine('put user.42 hello'), { cmd: 'put', key: 'user.42', value: 'hello' });
  });

  it('shell - a put value keeps its inner and trailing spaces', () => {
    assert.deepEqual(parseShellLine('put k hello   big  world '), { cmd: 'put', key: 'k', value: 'hello   big  world ' });
  });

  it('shell - blanks between key and value are not part of the value', () => {
    assert.deepEqual(parseShellLine('  put   k  \tv'), { cmd: 'put', key: 'k', value: 'v' });
  });

  it('shell - get and del take one key', () => {
    assert.deepEqual(parseShellLine('get user.42'), { cmd: 'get', key: 'user.42' });
    assert.deepEqual(parseShellLine('del user.42  '), { cmd: 'del', key: 'user.42' });
  });

  it('shell - commands are case-insensitive, keys are not', () => {
    assert.deepEqual(parseShellLine('GET Key'), { cmd: 'get', key: 'Key' });
  });

  it('shell - a quoted key may hold spaces and escapes', () => {
    assert.deepEqual(parseShellLine('get "my key"'), { cmd: 'get', key: 'my key' });
    assert.deepEqual(parseShellLine('put "a \\"b\\"" v w'), { cmd: 'put', key: 'a "b"', value: 'v w' });
  });

  it('shell - help, quit and exit', () => {
    assert.deepEqual(parseShellLine('help'), { cmd: 'help' });
    assert.deepEqual(parseShellLine('quit'), { cmd: 'quit' });
    assert.deepEqual(parseShellLine('exit'), { cmd: 'quit' });
  });

  it('shell - blank lines and comments do nothing', () => {
    assert.deepEqual(parseShellLine(''), { cmd: 'none' });
    assert.deepEqual(parseShellLine('   '), { cmd: 'none' });
    assert.deepEqual(parseShellLine('# a comment'), { cmd: 'none' });
  });

  it('shell - a CR from CRLF input is not part of the value', () => {
    assert.deepEqual(parseShellLine('put k v\r'), { cmd: 'put', key: 'k', value: 'v' });
  });

  it('shell - missing arguments are usage errors', () => {
    assert.deepEqual(parseShellLine('put'), { error: 'usage: put <key> <value>' });
    assert.deepEqual(parseShellLine('put k'), { error: 'usage: put <key> <value>' });
    assert.deepEqual(parseShellLine('put k   '), { error: 'usage: put <key> <value>' });
    assert.deepEqual(parseShellLine('get'), { error: 'usage: get <key>' });
    assert.deepEqual(parseShellLine('del'), { error: 'usage: del <key>' });
  });

  it('shell - extra arguments to get and del are usage errors', () => {
    assert.deepEqual(parseShellLine('get a b'), { error: 'usage: get <key>' });
    assert.deepEqual(parseShellLine('del a b'), { error: 'usage: del <key>' });
  });

  it('shell - an unknown command is an error', () => {
    assert.deepEqual(parseShellLine('fetch k'), { error: "unknown command 'fetch' (try help)" });
  });

  it('shell - bad quoted keys are errors', () => {
    assert.deepEqual(parseShellLine('get "open'), { error: 'unterminated quoted key' });
    assert.deepEqual(parseShellLine('get ""'), { error: 'the key is empty' });
    assert.match((parseShellLine('get "\\x"') as { error: string }).error, /bad escape/);
  });
});
