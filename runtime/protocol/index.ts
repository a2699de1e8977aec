// Public surface of the protocol codec. Everything here is pure: bytes in, values out.
export * from "./codec.js";
export * from "./frames.js";
export * from "./splitter.js";
export * from "./types.js";
