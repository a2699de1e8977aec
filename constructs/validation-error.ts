// The one error a construct throws when its props cannot be used: a CodedError (contract/errors.ts)
// with code INVALID_PROPS that names the construct's path in the tree, so a message from a program
// with many sites says which router, site or cluster it is about.

import type { IConstruct } from "constructs";
import { CodedError } from "../contract/errors.js";

export class ValidationError extends CodedError<"INVALID_PROPS"> {
  override readonly name = "ValidationError";
  /** `node.path` of the construct whose props were refused; undefined outside the construct tree. */
  readonly constructPath: string | undefined;

  /** `message` names the construct class and the prop (`GossipRouter: port must be ...`). */
  constructor(scope: IConstruct | undefined, message: string) {
    const constructPath = scope?.node.path;
    super("INVALID_PROPS", constructPath === undefined ? message : `${message} [at ${constructPath}]`);
    this.constructPath = constructPath;
  }
}
