// Builders for the frames clients and routers send. STUB: being implemented (codec helper).
import type { Address, PingData } from "./types.js";

export function registerFrame(
  group: string,
  addr: Address,
  logicalName: string | null,
  physicalAddr: Address | null,
): Buffer {
  void [group, addr, logicalName, physicalAddr];
  throw new Error("not implemented");
}
export function unregisterFrame(group: string, addr: Address): Buffer {
  void [group, addr];
  throw new Error("not implemented");
}
/** dest null = to every member of the group (the sender included). */
export function messageFrame(
  group: string,
  dest: Address | null,
  sender: Address | null,
  payload: Uint8Array,
): Buffer {
  void [group, dest, sender, payload];
  throw new Error("not implemented");
}
/** group null = all groups. */
export function getMbrsFrame(group: string | null): Buffer {
  void group;
  throw new Error("not implemented");
}
export function getMbrsRspFrame(group: string | null, members: readonly PingData[], last: boolean): Buffer {
  void [group, members, last];
  throw new Error("not implemented");
}
export function heartbeatFrame(): Buffer {
  throw new Error("not implemented");
}
export function suspectFrame(group: string, addr: Address): Buffer {
  void [group, addr];
  throw new Error("not implemented");
}
/** The GRACEFUL_CLOSE marker: length -5, no body. */
export const GRACEFUL_CLOSE_FRAME: Buffer = Buffer.from([0xff, 0xff, 0xff, 0xfb]);
