// Builders for the frames clients and routers send: whole frames (length prefix included), in the
// canonical form JGroups writes. The blocking JGroups router parses bodies field by field, so
// anything but the canonical form would desynchronise its stream (see docs/PROTOCOL.md).
import { encodeFrame } from "./codec.js";
import { type Address, type GossipData, GossipType, type PingData } from "./types.js";

const EMPTY = new Uint8Array(0);

function frame(
  type: GossipType,
  group: string | null,
  addr: Address | null,
  fields: Partial<Omit<GossipData, "type" | "group" | "addr">> = {},
): Buffer {
  return encodeFrame({
    type,
    group,
    addr,
    sender: fields.sender ?? null,
    logicalName: fields.logicalName ?? null,
    pingData: fields.pingData ?? [],
    physicalAddr: fields.physicalAddr ?? null,
    payload: fields.payload ?? EMPTY,
  });
}

export function registerFrame(
  group: string,
  addr: Address,
  logicalName: string | null,
  physicalAddr: Address | null,
): Buffer {
  return frame(GossipType.Register, group, addr, { logicalName, physicalAddr });
}

export function unregisterFrame(group: string, addr: Address): Buffer {
  return frame(GossipType.Unregister, group, addr);
}

/** dest null = to every member of the group (the sender included). */
export function messageFrame(
  group: string,
  dest: Address | null,
  sender: Address | null,
  payload: Uint8Array,
): Buffer {
  return frame(GossipType.Message, group, dest, { sender, payload });
}

/**
 * Prefix of each group name in the answer to a GET_MBRS for all groups (null group): the router
 * names every group `<<all-groups>>:<name>` (JGroups Global.ALL_GROUPS).
 */
export const ALL_GROUPS_PREFIX = "<<all-groups>>:";

/** group null = all groups. */
export function getMbrsFrame(group: string | null): Buffer {
  return frame(GossipType.GetMbrs, group, null);
}

/** One response frame; `last` selects GET_MBRS_RSP_LAST (the only or final frame of a reply). */
export function getMbrsRspFrame(group: string | null, members: readonly PingData[], last: boolean): Buffer {
  return frame(last ? GossipType.GetMbrsRspLast : GossipType.GetMbrsRsp, group, null, { pingData: members });
}

// All fields null: the same 16 bytes in both directions.
const HEARTBEAT = frame(GossipType.Heartbeat, null, null);

export function heartbeatFrame(): Buffer {
  return Buffer.from(HEARTBEAT);
}

export function suspectFrame(group: string, addr: Address): Buffer {
  return frame(GossipType.Suspect, group, addr);
}

/** The GRACEFUL_CLOSE marker: length -5, no body. */
export const GRACEFUL_CLOSE_FRAME: Buffer = Buffer.from([0xff, 0xff, 0xff, 0xfb]);
