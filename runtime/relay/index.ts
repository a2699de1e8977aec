// Public surface of the relay layer (see docs/RUNTIME.md): the channel applications embed, the
// node the container runs, and the envelope codec.
export { type BridgeMember, BridgeMembership, type RouteChange } from "./bridge-view.js";
export { describeView, RelayChannel } from "./channel.js";
export { channelOptionsFor, discoveryFor } from "./config.js";
export type {
  ProbeInfo,
  RouteInfo,
  RouterInfo,
  SiteMemberInfo,
  SiteViewInfo,
  TopologyInfo,
} from "./control.js";
export { registerDeliveryMetrics } from "./delivery/metrics.js";
export type { ReceiveLimits } from "./delivery/receive-window.js";
export type { SendBufferLimits } from "./delivery/send-buffer.js";
export {
  type Destination,
  decodeEnvelope,
  type Envelope,
  EnvelopeError,
  type EnvelopeErrorCode,
  EnvelopeKind,
  encodeEnvelope,
  isEnvelopeKind,
  type Origin,
  senderLabel,
} from "./envelope.js";
export { RelayError, type RelayErrorCode } from "./errors.js";
export { type NodeStatus, RelayNode, type RelayNodeOptions } from "./node.js";
export { type ClusterTuning, DEFAULT_CHANNEL_MAX_PAYLOAD, type RelayChannelOptions } from "./options.js";
export { answerBroadcasts, RESPONSE_TEXT } from "./responder.js";
export type { SiteCluster } from "./site-cluster.js";
export type {
  RelayAddress,
  RelayChannelEvents,
  RelayMessage,
  RelayStats,
  SiteBacklog,
  Topology,
} from "./types.js";
