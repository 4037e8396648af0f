/**
 * MD5 (RFC 1321) in JavaScript, for the short inputs of the data path: a
 * key's ring position (core/hash.ts) and a key's anti-entropy digest
 * (core/tictac.ts), each the first 8 bytes of the MD5, big-endian.
 *
 * Why not node:crypto: its one-shot `hash()` costs about 1.5 µs a call on
 * this project's machine whatever the input's size (the call into C++, a
 * Buffer for the result), and a replica write asks for several; this loop
 * over 32-bit words costs about a fifth of that for a key of one block
 * (measured in the benchmark note of issue 11). The output is the same bytes
 * as node:crypto's MD5 (test/unit/md5.test.ts checks it on random inputs
 * and on every padding edge). MD5 is used here for an even spread and as a
 * fingerprint, never for security.
 *
 * Pure: no I/O, no state kept between calls (scratch arrays only).
 */

/** Per-round left rotations. */
const shifts = Int8Array.from([
  7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
  5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
  4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
  6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
]);

/** floor(|sin(i + 1)| x 2^32), as RFC 1321 defines its table T. */
const sines = Int32Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0);

/** The message word each round reads. */
const wordOf = Uint8Array.from({ length: 64 }, (_, i) => (i < 16 ? i : i < 32 ? (5 * i + 1) & 15 : i < 48 ? (3 * i + 5) & 15 : (7 * i) & 15));

const words = new Int32Array(16);
/** The last one or two blocks: the input's tail, the 0x80 byte, zeros and the bit length. */
const tail = new Uint8Array(128);
const out = new DataView(new ArrayBuffer(8));
const state = new Int32Array(4);

/** The first 8 bytes of MD5(`bytes[0, length)`) as an unsigned big-endian integer. */
export function md5High64(bytes: Uint8Array, length: number = bytes.length): bigint {
  if (!Number.isSafeInteger(length) || length < 0 || length > bytes.length) throw new RangeError(`md5 length ${length} is outside 0..${bytes.length}`);
  state[0] = 0x67452301;
  state[1] = 0xefcdab89 | 0;
  state[2] = 0x98badcfe | 0;
  state[3] = 0x10325476;
  const whole = length - (length % 64);
  for (let at = 0; at < whole; at += 64) block(bytes, at);
  // Padding: 0x80, zeros to 56 mod 64, then the length in bits as 64 bits little-endian.
  const rest = length - whole;
  tail.set(bytes.subarray(whole, length));
  tail[rest] = 0x80;
  const end = rest < 56 ? 64 : 128;
  tail.fill(0, rest + 1, end - 8);
  const bitsLow = (length * 8) >>> 0; // length < 2^53 / 8: the high word is length / 2^29
  const bitsHigh = Math.floor(length / 0x20000000);
  for (let i = 0; i < 4; i++) {
    tail[end - 8 + i] = (bitsLow >>> (8 * i)) & 0xff;
    tail[end - 4 + i] = (bitsHigh >>> (8 * i)) & 0xff;
  }
  block(tail, 0);
  if (end === 128) block(tail, 64);
  // The digest is the state words little-endian: its first 8 bytes are A then B, each byte-swapped.
  out.setInt32(0, state[0]!, true);
  out.setInt32(4, state[1]!, true);
  return out.getBigUint64(0, false);
}

/** One 64-byte block of `bytes` at `at` folded into the state. */
function block(bytes: Uint8Array, at: number): void {
  for (let j = 0; j < 16; j++) {
    const p = at + 4 * j;
    words[j] = bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16) | (bytes[p + 3]! << 24);
  }
  let a = state[0]!;
  let b = state[1]!;
  let c = state[2]!;
  let d = state[3]!;
  for (let i = 0; i < 64; i++) {
    const f = i < 16 ? (b & c) | (~b & d) : i < 32 ? (d & b) | (~d & c) : i < 48 ? b ^ c ^ d : c ^ (b | ~d);
    const x = (a + f + sines[i]! + words[wordOf[i]!]!) | 0;
    const s = shifts[i]!;
    a = d;
    d = c;
    c = b;
    b = (b + ((x << s) | (x >>> (32 - s)))) | 0;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
}
