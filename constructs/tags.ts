// Tags (AWS) and labels (GCP) from the topology's `tags:`: their rules, shared by the topology
// parser (problems naming `tags.<key>`) and the cluster constructs (ValidationError naming the prop),
// and the annotation that carries them onto the NLBs Kubernetes creates on EKS.

import { PART_OF } from "./labels.js";

/** Keys the program sets itself on every resource (provider default tags / labels). */
export const RESERVED_TAG_KEYS: readonly string[] = ["part-of", "site"];

/** The tags every cloud resource of a site carries, before the topology's own. */
export function baseTags(site: string): Record<string, string> {
  return { "part-of": PART_OF, site };
}

// AWS: letters, digits, spaces and _ . : / + - @ (AWS also allows '=', which the NLB annotation
// `k=v,k=v` cannot carry, so it is refused here); key 1..128, value 0..256; no `aws:` prefix.
const AWS_TAG_CHARS = /^[\p{L}\p{N} _.:/+\-@]*$/u;

/** Why `key: value` cannot be an AWS tag, or undefined. */
export function awsTagProblem(key: string, value: string): string | undefined {
  if (key.length < 1 || key.length > 128) return "an AWS tag key has 1..128 characters";
  if (/^aws:/i.test(key)) return "AWS reserves tag keys starting with aws:";
  if (!AWS_TAG_CHARS.test(key)) return "an AWS tag key has letters, digits, spaces and _ . : / + - @ only";
  if (value.length > 256) return "an AWS tag value has at most 256 characters";
  if (!AWS_TAG_CHARS.test(value))
    return "an AWS tag value has letters, digits, spaces and _ . : / + - @ only";
  return undefined;
}

// GCP labels: key 1..63, starting with a lower-case letter; key and value lower-case letters,
// digits, '_' and '-'; value 0..63.
const GCP_LABEL_KEY = /^[a-z][a-z0-9_-]{0,62}$/;
const GCP_LABEL_VALUE = /^[a-z0-9_-]{0,63}$/;

/** Why `key: value` cannot be a GCP label, or undefined. */
export function gcpLabelProblem(key: string, value: string): string | undefined {
  if (!GCP_LABEL_KEY.test(key))
    return "a GCP label key has 1..63 lower-case letters, digits, '_', '-', starting with a letter";
  if (!GCP_LABEL_VALUE.test(value)) return "a GCP label value has 0..63 lower-case letters, digits, '_', '-'";
  return undefined;
}

/** NLB annotation: the tags of the load balancers the AWS cloud provider creates for a Service. */
export const AWS_LB_TAGS_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-additional-resource-tags";

/** `k1=v1,k2=v2` in key order (the annotation's syntax). */
export function lbTagsAnnotationValue(tags: Readonly<Record<string, string>>): string {
  return Object.keys(tags)
    .sort()
    .map((k) => `${k}=${tags[k]}`)
    .join(",");
}
