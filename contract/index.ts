// The env/config contract shared by the constructs and the runtime (no dependencies).
export * from "./errors.js";
export * from "./identity.js";
export * from "./initial-hosts.js";
export * from "./ports.js";
export * from "./relay-env.js";
export * from "./router-args.js";
