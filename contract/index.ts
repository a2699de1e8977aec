// The env/config contract shared by the constructs and the runtime (no dependencies).
export * from "./initial-hosts.js";
export * from "./relay-env.js";
