/**
 * The fan-out responder's peer messages (fanout.ts): a batch of puts or gets
 * for one peer, and a get batch's answer, in a few length-prefixed fields.
 */
export const PeerOp = { Put: 'put', Get: 'get' } as const;
export type PeerOp = (typeof PeerOp)[keyof typeof PeerOp];
/** A value's length field for a key the peer does not hold. */
const absent = 0xffffffff;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export interface Item {
  key: string;
  value?: Uint8Array;
}
/** `[u16 key length][key][u32 value length][value]` per item (puts), the key alone (gets). */
export function encodeBatch(op: PeerOp, items: readonly Item[]): Uint8Array {
  const keys = items.map((i) => utf8.encode(i.key));
  let bytes = 0;
  items.forEach((item, n) => (bytes += 2 + keys[n]!.length + (op === PeerOp.Put ? 4 + item.value!.length : 0)));
  const out = new Uint8Array(bytes);
  const view = new DataView(out.buffer);
  let at = 0;
  items.forEach((item, n) => {
    view.setUint16(at, keys[n]!.length);
    out.set(keys[n]!, at + 2);
    at += 2 + keys[n]!.length;
    if (op === PeerOp.Put) {
      view.setUint32(at, item.value!.length);
      out.set(item.value!, at + 4);
      at += 4 + item.value!.length;
    }
  });
  return out;
}

export function decodeBatch(op: PeerOp, data: Uint8Array): Item[] {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out: Item[] = [];
  for (let at = 0; at < data.length; ) {
    const keyLength = view.getUint16(at);
    const key = fromUtf8.decode(data.subarray(at + 2, at + 2 + keyLength));
    at += 2 + keyLength;
    if (op === PeerOp.Get) {
      out.push({ key });
      continue;
    }
    const valueLength = view.getUint32(at);
    out.push({ key, value: data.slice(at + 4, at + 4 + valueLength) });
    at += 4 + valueLength;
  }
  return out;
}

/** A get batch's answer: `[u32 length][value]` per key in order, `absent` as the length of a missing one. */
export function encodeValues(values: readonly (Uint8Array | undefined)[]): Uint8Array {
  const out = new Uint8Array(values.reduce((n, v) => n + 4 + (v?.length ?? 0), 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const v of values) {
    view.setUint32(at, v === undefined ? absent : v.length);
    if (v !== undefined) out.set(v, at + 4);
    at += 4 + (v?.length ?? 0);
  }
  return out;
}

export function decodeValues(data: Uint8Array, count: number): (Uint8Array | undefined)[] {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out: (Uint8Array | undefined)[] = [];
  let at = 0;
  for (let n = 0; n < count; n++) {
    const length = view.getUint32(at);
    out.push(length === absent ? undefined : data.subarray(at + 4, at + 4 + length));
    at += 4 + (length === absent ? 0 : length);
  }
  return out;
}
