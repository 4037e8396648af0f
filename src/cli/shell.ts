/**
 * `goddb client`: the interactive shell. Line parsing is a pure function
 * (parseShellLine) so it is tested without a cluster; running a parsed
 * command needs a GodDbClient.
 *
 * Keys are one word, or a double-quoted JSON string for keys with spaces
 * (`get "my key"`); a put's value is the rest of the line, spaces included.
 */
import { createInterface } from 'node:readline';
import type { GodDbClient } from '../client/index.js';
import { formatError, openClient, type ClientFlags } from './client_options.js';

export type ShellCommand =
  | { cmd: 'put'; key: string; value: string }
  | { cmd: 'get'; key: string }
  | { cmd: 'del'; key: string }
  | { cmd: 'help' }
  | { cmd: 'quit' }
  /** A blank line or a `#` comment. */
  | { cmd: 'none' };

export type ParsedLine = ShellCommand | { error: string };

export const shellPrompt = 'GoD-DB> ';

export const shellHelp = [
  'commands:',
  '  put <key> <value...>   store the rest of the line as the value',
  '  get <key>              print the value, or (not found)',
  '  del <key>              delete the key',
  '  help                   this text',
  '  quit | exit            leave (so does Ctrl-D)',
  'a key with spaces is written as a JSON string: get "my key"',
].join('\n');

const usage = {
  put: 'usage: put <key> <value>',
  get: 'usage: get <key>',
  del: 'usage: del <key>',
} as const;

export function parseShellLine(line: string): ParsedLine {
  const text = line.replace(/\r$/, '').trimStart();
  if (text === '' || text.startsWith('#')) return { cmd: 'none' };
  const word = /^\S+/.exec(text)![0];
  const rest = text.slice(word.length);
  switch (word.toLowerCase()) {
    case 'put':
      return parsePut(rest);
    case 'get':
    case 'del':
      return parseKeyOnly(word.toLowerCase() as 'get' | 'del', rest);
    case 'help':
    case '?':
      return { cmd: 'help' };
    case 'quit':
    case 'exit':
      return { cmd: 'quit' };
    default:
      return { error: `unknown command '${word}' (try help)` };
  }
}

function parsePut(rest: string): ParsedLine {
  const key = readKey(rest);
  if ('error' in key) return key;
  if (key.key === undefined) return { error: usage.put };
  // Exactly one run of blanks separates key and value; the value keeps the rest verbatim.
  const value = key.rest.replace(/^[ \t]+/, '');
  if (value === '') return { error: usage.put };
  if (value.length === key.rest.length) return { error: usage.put };
  return { cmd: 'put', key: key.key, value };
}

function parseKeyOnly(cmd: 'get' | 'del', rest: string): ParsedLine {
  const key = readKey(rest);
  if ('error' in key) return key;
  if (key.key === undefined || key.rest.trim() !== '') return { error: usage[cmd] };
  return { cmd, key: key.key };
}

/** The key at the start of `rest` (after blanks) and what follows it. */
function readKey(rest: string): { key: string | undefined; rest: string } | { error: string } {
  const s = rest.replace(/^[ \t]+/, '');
  if (s === '') return { key: undefined, rest: '' };
  if (!s.startsWith('"')) {
    const word = /^\S+/.exec(s)![0];
    return { key: word, rest: s.slice(word.length) };
  }
  const quoted = /^"(?:[^"\\]|\\.)*"/.exec(s);
  if (!quoted) return { error: 'unterminated quoted key' };
  try {
    const key = JSON.parse(quoted[0]) as string;
    if (key === '') return { error: 'the key is empty' };
    return { key, rest: s.slice(quoted[0].length) };
  } catch {
    return { error: `bad escape in quoted key ${quoted[0]}` };
  }
}

/** Runs one parsed command; returns the line to print and whether it failed. */
export async function runShellCommand(client: GodDbClient, command: ShellCommand): Promise<{ output: string; failed: boolean }> {
  try {
    switch (command.cmd) {
      case 'put':
        await client.put(command.key, command.value);
        return { output: 'OK', failed: false };
      case 'get': {
        const got = await client.get(command.key);
        return { output: got === null ? '(not found)' : got.text(), failed: false };
      }
      case 'del':
        await client.del(command.key);
        return { output: 'OK', failed: false };
      case 'help':
        return { output: shellHelp, failed: false };
      case 'quit':
      case 'none':
        return { output: '', failed: false };
    }
  } catch (err) {
    return { output: formatError(err), failed: true };
  }
}

/**
 * Reads commands from stdin until quit or EOF. Interactive on a terminal;
 * from a pipe, runs every line in order and exits 1 if any failed.
 */
export async function runShell(flags: ClientFlags): Promise<number> {
  const interactive = process.stdin.isTTY === true;
  const opened = await openClient(flags);
  if ('exitCode' in opened) return opened.exitCode;
  const { client, target } = opened;
  const rl = createInterface(interactive ? { input: process.stdin, output: process.stdout, prompt: shellPrompt } : { input: process.stdin, terminal: false });
  rl.on('SIGINT', () => rl.close());
  let failures = 0;
  if (interactive) {
    process.stdout.write(`connected to ${target.servers.join(', ')} (from ${target.source}); type help for commands\n`);
    rl.prompt();
  }
  for await (const line of rl) {
    const parsed = parseShellLine(line);
    if ('cmd' in parsed && parsed.cmd === 'quit') break;
    const result = 'error' in parsed ? { output: `error 400: ${parsed.error}`, failed: true } : await runShellCommand(client, parsed);
    if (result.output !== '') process.stdout.write(`${result.output}\n`);
    if (result.failed) failures++;
    if (interactive) rl.prompt();
  }
  rl.close();
  await client.close().catch(() => undefined);
  return !interactive && failures > 0 ? 1 : 0;
}
