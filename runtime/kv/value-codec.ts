// How a ReplicatedMap<V> turns values into the bytes its replicas exchange, and back.

export interface ValueCodec<V> {
  encode(value: V): Uint8Array;
  /** Throws on bytes it cannot read (the map then reports the key as unreadable). */
  decode(bytes: Uint8Array): V;
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/** JSON text (the default): any value JSON.stringify accepts. */
export const jsonCodec: ValueCodec<unknown> = {
  encode(value) {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError("the value has no JSON form (undefined, a function?)");
    return utf8.encode(text);
  },
  decode(bytes) {
    return JSON.parse(utf8Strict.decode(bytes)) as unknown;
  },
};

/** UTF-8 text. */
export const stringCodec: ValueCodec<string> = {
  encode: (value) => utf8.encode(value),
  decode: (bytes) => utf8Strict.decode(bytes),
};

/**
 * Bytes as they are, copied both ways: the map keeps bytes of its own (a caller that reuses its
 * buffer after `put` would otherwise change the stored value without a new version, which no
 * digest sees since digests hash versions, not values; and a small Buffer from Node's pool would
 * keep its 8 KiB slab alive), and a caller may change what `get` returned.
 */
export const bytesCodec: ValueCodec<Uint8Array> = {
  encode: (value) => new Uint8Array(value),
  decode: (bytes) => new Uint8Array(bytes),
};
