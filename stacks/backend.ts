// Where each stack keeps its state: local files (the default), or one S3 key / GCS prefix per stack
// in a shared bucket. Consumers read producers' outputs through the same backend (remote state).

import { GcsBackend, LocalBackend, S3Backend, type TerraformStack } from "cdktf";
import type { Backend } from "../topology/model.js";

/**
 * Local state files sit at the project root, as with cdktf's default, but the path is relative to
 * the stack's directory (cdktf.out/stacks/<stack>) instead of the absolute path of the machine
 * that ran synth: the synthesized JSON then runs anywhere the checkout is.
 */
export function localStatePath(stackName: string): string {
  return `../../../terraform.${stackName}.tfstate`;
}

/** Configures `stack`'s backend (one state per stack). */
export function configureBackend(stack: TerraformStack, stackName: string, backend: Backend): void {
  switch (backend.kind) {
    case "local":
      new LocalBackend(stack, { path: localStatePath(stackName) });
      return;
    case "s3":
      new S3Backend(stack, {
        bucket: backend.bucket,
        key: `${backend.keyPrefix}/${stackName}.tfstate`,
        region: backend.region,
        encrypt: true,
        ...(backend.dynamodbTable ? { dynamodbTable: backend.dynamodbTable } : {}),
      });
      return;
    case "gcs":
      new GcsBackend(stack, { bucket: backend.bucket, prefix: `${backend.prefix}/${stackName}` });
      return;
  }
}
