// Replicated maps (docs/KV.md): the typed map and the service that opens maps on a RelayChannel,
// and the pure core they are built on (versions, merge, store, digests, backlog, codec).
export * from "./backlog.js";
export * from "./codec.js";
export * from "./digest.js";
export * from "./entry.js";
export * from "./errors.js";
export * from "./hlc.js";
export * from "./replicated-map.js";
export { KV_SERVICE, KvService, type KvServiceOptions, type KvServiceStats } from "./service.js";
export * from "./store.js";
export * from "./sync.js";
export * from "./value-codec.js";
export * from "./version.js";
