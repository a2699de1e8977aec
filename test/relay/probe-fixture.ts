// A probe answer as a site master sends it (relay/control.ts ProbeInfo), shared by the tests of its
// codec (envelope.test.ts) and of its printed form (chat-format.test.ts).
import type { ProbeInfo } from "../../runtime/relay/control.js";

export const SAMPLE_PROBE: ProbeInfo = {
  name: "nyc-1",
  site: "nyc",
  local_addr: "nyc-1 [uuid]",
  physical_addr: "10.0.0.4:7800",
  view: "[nyc-1|5] (1) [nyc-1]",
  cluster: "relay",
  version: "cross-cloud-relay 0.1.0",
  site_master: true,
};
