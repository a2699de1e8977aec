// Public surface of the GossipRouter.

export { ALL_GROUPS_PREFIX } from "../protocol/frames.js";
export * from "./options.js";
export { GossipRouter } from "./router.js";
export type { RouterStats, UndeliveredReason } from "./stats.js";
