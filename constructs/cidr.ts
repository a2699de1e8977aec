// CIDR checks shared by the constructs (GossipRouter's loadBalancerSourceRanges) and the topology
// parser (loadBalancerSourceRanges, an existing site's egressCidrs).

/** Returns why `s` is not an IPv4/IPv6 CIDR with its host bits zero, or undefined when it is fine. */
export function cidrProblem(s: string): string | undefined {
  const bad = `"${clip(s)}" is not a CIDR such as 203.0.113.0/24 or 2001:db8::/32`;
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (!m) return bad;
  const addr = m[1]!;
  const bits = Number(m[2]);
  if (addr.includes(":")) {
    if (!/^[0-9a-fA-F:]+$/.test(addr) || (addr.match(/::/g) ?? []).length > 1 || bits > 128) return bad;
    const groups = addr.split(":").filter((g) => g !== "");
    if (groups.length > 8 || groups.some((g) => g.length > 4)) return bad;
    return undefined;
  }
  const parts = addr.split(".");
  if (parts.length !== 4 || bits > 32) return bad;
  let value = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return bad;
    value = value * 256 + Number(p);
  }
  const hostBits = 32 - bits;
  if (hostBits > 0 && value % 2 ** hostBits !== 0) {
    return `"${s}" has host bits set; the network address of /${bits} is ${networkOf(value, bits)}`;
  }
  return undefined;
}

function networkOf(value: number, bits: number): string {
  const net = bits === 0 ? 0 : value - (value % 2 ** (32 - bits));
  return `${[24, 16, 8, 0].map((s) => Math.floor(net / 2 ** s) % 256).join(".")}/${bits}`;
}

/** Keeps messages one short line even for hostile input. */
function clip(s: string): string {
  return s.length > 64 ? `${s.slice(0, 61)}...` : s;
}
