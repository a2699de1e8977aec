// The pure core of the replicated map (issue 11): versions, merge, store, digests, backlog, codec.
export * from "./backlog.js";
export * from "./codec.js";
export * from "./digest.js";
export * from "./entry.js";
export * from "./errors.js";
export * from "./hlc.js";
export * from "./store.js";
export * from "./version.js";
