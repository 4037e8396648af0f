/**
 * NATS header blocks, both ways, trusting neither side.
 *
 * A header block (NATS ADR-4, after RFC 822 and HTTP/1.1) is a status line
 * `NATS/1.0[ <code>[ <description>]]`, then one `Name: value` line per
 * header, each ended by CR LF, then an empty line. nats.js parses blocks
 * leniently and lazily, and throws from the `msg.headers` getter on a lone
 * LF in a value or a space in a name; it also throws when asked to send a
 * value that holds CR or LF. So a node reads the header block of every
 * request with `parseHeaderBlock` (strict: a malformed block is a 400 that
 * says what is wrong, never a crash) and passes every value it sends
 * through `sanitizeHeaderValue`.
 *
 * A block is well formed when:
 *  - it is valid UTF-8 (no byte sequence is silently replaced by U+FFFD);
 *  - its first line is `NATS/1.0`, optionally with a three-digit status
 *    code and a description (replies have them; requests must not);
 *  - every other line is `Name: value`, the name one or more printable
 *    ASCII characters other than colon (no spaces), the value free of CR
 *    and LF (a lone one would end the line for one parser and not for
 *    another); spaces and tabs around the value are dropped;
 *  - it ends with the empty line, and has no other empty line.
 * Values that lost more than the blank after the colon are marked `padded`.
 * Names match case-insensitively and may repeat; whether a repeat is
 * ambiguous is up to the reader of that header.
 */
import { limits } from '../core/limits.js';

export interface HeaderBlock {
  /** The status code of the first line, 0 when there is none. */
  status: number;
  description: string;
  /** Values per lower-cased name, in the order they came. */
  values: ReadonlyMap<string, readonly string[]>;
  /**
   * Lower-cased names of values that lost white space to trimming: more
   * than the one space or tab after the colon, or any at the end. A reader
   * that needs the value exactly (a key) refuses those.
   */
  padded?: ReadonlySet<string>;
}

const version = 'NATS/1.0';
const headerName = /^[!-9;-~]+$/;
/** What a received value may not hold: line ends. Other control characters are the reader's business (a key may hold them). */
const lineEnds = /[\r\n]/;
/** What a sent value never holds: every control character but tab. */
const controlCharsGlobal = /[\u0000-\u0008\u000a-\u001f\u007f]/g;
/** Characters of an offending line quoted in an error message. */
const quotedCharsMax = 64;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** True when `name` can be a header name (printable ASCII, no colon, no space). */
export function isHeaderName(name: string): boolean {
  return headerName.test(name);
}

function quote(line: string): string {
  return JSON.stringify(line.length > quotedCharsMax ? `${line.slice(0, quotedCharsMax)}...` : line);
}

/** `s` without spaces and tabs at either end, in linear time (/[ \t]+$/ is quadratic on a long run of spaces). */
function trimSpaceTab(s: string): string {
  const blank = (c: number) => c === 0x20 || c === 0x09;
  let start = 0;
  let end = s.length;
  while (start < end && blank(s.charCodeAt(start))) start++;
  while (end > start && blank(s.charCodeAt(end - 1))) end--;
  return s.slice(start, end);
}

function lineEndOf(s: string): string | undefined {
  const m = lineEnds.exec(s);
  return m ? (m[0] === '\r' ? 'a lone CR' : 'a lone LF') : undefined;
}

/** Parses a header block strictly; a malformed one gives the reason instead. */
export function parseHeaderBlock(bytes: Uint8Array): HeaderBlock | { error: string } {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return { error: 'the header block is not valid UTF-8' };
  }
  if (!text.endsWith('\r\n\r\n')) return { error: 'the header block does not end with an empty line (CR LF CR LF)' };
  const lines = text.slice(0, -4).split('\r\n');
  const first = statusOf(lines[0]!);
  if (!first) return { error: `the header block does not start with NATS/1.0: ${quote(lines[0]!)}` };
  const values = new Map<string, string[]>();
  const padded = new Set<string>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const where = `header line ${i + 1}`;
    if (line.length === 0) return { error: `${where} is empty: the block ended early` };
    const colon = line.indexOf(':');
    if (colon === -1) return { error: `${where} has no colon: ${quote(line)}` };
    const name = line.slice(0, colon);
    if (!isHeaderName(name)) return { error: `${where} has an invalid name (printable ASCII, no spaces): ${quote(name)}` };
    const raw = line.slice(colon + 1);
    const value = trimSpaceTab(raw);
    const lineEnd = lineEndOf(value);
    if (lineEnd !== undefined) return { error: `${where} (${name}) holds ${lineEnd}` };
    const key = name.toLowerCase();
    if (isPadded(raw, value)) padded.add(key);
    const list = values.get(key);
    if (list) list.push(value);
    else values.set(key, [value]);
  }
  return { ...first, values, padded };
}

/** True when trimming `raw` to `value` dropped more than one separating blank after the colon. */
function isPadded(raw: string, value: string): boolean {
  if (value.length === 0) return false;
  const separator = raw.charCodeAt(0) === 0x20 || raw.charCodeAt(0) === 0x09 ? 1 : 0;
  return raw.length - separator !== value.length;
}

/**
 * `NATS/1.0[ <3 digits>[ <description>]]`, read without a regular expression
 * (patterns such as /[ \t]+(.*?)[ \t]*$/ take quadratic time on a long run of spaces).
 */
function statusOf(line: string): { status: number; description: string } | undefined {
  if (!line.startsWith(version) || lineEndOf(line) !== undefined) return undefined;
  const tail = line.slice(version.length);
  if (tail.length === 0) return { status: 0, description: '' };
  if (tail[0] !== ' ' && tail[0] !== '\t') return undefined;
  const rest = trimSpaceTab(tail);
  if (rest.length === 0) return { status: 0, description: '' };
  const code = rest.slice(0, 3);
  const next = rest[3];
  if (!/^\d{3}$/.test(code) || (next !== undefined && next !== ' ' && next !== '\t')) return undefined;
  return { status: Number(code), description: trimSpaceTab(rest.slice(3)) };
}

/**
 * `text` made safe for a header value: control characters (CR and LF
 * above all, which nats.js refuses to send) are written as escapes, and the
 * whole is cut to `bytesMax` UTF-8 bytes.
 */
export function sanitizeHeaderValue(text: string, bytesMax: number = limits.headerValueBytesMax): string {
  const clean = text.replace(controlCharsGlobal, (c) => (c === '\r' ? '\\r' : c === '\n' ? '\\n' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
  if (Buffer.byteLength(clean, 'utf8') <= bytesMax) return clean;
  const ellipsis = '...';
  let out = '';
  let bytes = 0;
  for (const ch of clean) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (bytes + n > bytesMax - ellipsis.length) break;
    out += ch;
    bytes += n;
  }
  return out + ellipsis;
}
