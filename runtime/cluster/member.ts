// Identity of a cluster member and the view (ordered membership) value types. Pure data.

/** One member of a site's local cluster, for one incarnation of a process. */
export interface Member {
  /** Node name, e.g. `nyc-1` (the pod name in Kubernetes). */
  readonly name: string;
  /** Site the member belongs to, e.g. `nyc`. */
  readonly site: string;
  /** Random per incarnation (canonical 8-4-4-4-12 lowercase form): a restarted `nyc-1` is another member. */
  readonly uuid: string;
  /** Address other members connect to (the advertised address). */
  readonly host: string;
  readonly port: number;
}

/** Identifies a view: its coordinator's memberKey and a sequence number that only grows. */
export interface ViewId {
  readonly coordinator: string;
  readonly seq: number;
}

/** Membership ordered by age: members[0] is the oldest member and the coordinator. */
export interface View {
  readonly id: ViewId;
  readonly members: readonly Member[];
}

/**
 * Keys of the member objects seen (members are immutable): a key is needed for every frame sent
 * and received, and building it anew each time (a new string, hashed at each map lookup) showed in
 * the cross-site profiles. Weak: a member object that is gone takes its key with it.
 */
const keys = new WeakMap<object, string>();

/** Stable key of a member incarnation: `name/uuid`. */
export function memberKey(m: Pick<Member, "name" | "uuid">): string {
  let key = keys.get(m);
  if (key === undefined) {
    key = `${m.name}/${m.uuid}`;
    keys.set(m, key);
  }
  return key;
}

/**
 * Total order used for every deterministic tie-break (who becomes coordinator at startup, which
 * coordinator wins a merge): by name, then by uuid. Negative when `a` comes first.
 */
export function compareMembers(a: Pick<Member, "name" | "uuid">, b: Pick<Member, "name" | "uuid">): number {
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  if (a.uuid !== b.uuid) return a.uuid < b.uuid ? -1 : 1;
  return 0;
}

/** Builds a view whose coordinator is members[0]. */
export function makeView(seq: number, members: readonly Member[]): View {
  if (members.length === 0) throw new RangeError("a view needs at least one member");
  return { id: { coordinator: memberKey(members[0]!), seq }, members };
}

/** True when the view lists the member (by key). */
export function viewHas(view: View, key: string): boolean {
  return view.members.some((m) => memberKey(m) === key);
}

/** `name@site` for logs and display. */
export function describeMember(m: Member): string {
  return `${m.name}@${m.site}`;
}
