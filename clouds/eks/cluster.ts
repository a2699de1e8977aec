// An EKS cluster with everything it needs from provider-aws alone: a VPC over two availability
// zones (public subnets for internet-facing load balancers, private ones for the nodes), one NAT
// gateway (whose Elastic IP is the cluster's only egress address, `egressCidrs`), the IAM roles, the
// control plane (API authentication, creator as admin) and one managed node group. Hardened by
// default: the API endpoint is private only, every control-plane log type goes to CloudWatch Logs,
// and Secrets are envelope-encrypted with a KMS key of the cluster's own (docs/DEPLOY.md,
// "Hardening"; the policy checks in test/infra/policy.test.ts). The AwsProvider (region) is configured by the stack that holds this construct.

import { CloudwatchLogGroup } from "@cdktf/provider-aws/lib/cloudwatch-log-group/index.js";
import { DataAwsAvailabilityZones } from "@cdktf/provider-aws/lib/data-aws-availability-zones/index.js";
import { Eip } from "@cdktf/provider-aws/lib/eip/index.js";
import { EksAddon } from "@cdktf/provider-aws/lib/eks-addon/index.js";
import { EksCluster as AwsEksCluster } from "@cdktf/provider-aws/lib/eks-cluster/index.js";
import { EksNodeGroup } from "@cdktf/provider-aws/lib/eks-node-group/index.js";
import { IamRole } from "@cdktf/provider-aws/lib/iam-role/index.js";
import { IamRolePolicy } from "@cdktf/provider-aws/lib/iam-role-policy/index.js";
import { IamRolePolicyAttachment } from "@cdktf/provider-aws/lib/iam-role-policy-attachment/index.js";
import { InternetGateway } from "@cdktf/provider-aws/lib/internet-gateway/index.js";
import { KmsAlias } from "@cdktf/provider-aws/lib/kms-alias/index.js";
import { KmsKey } from "@cdktf/provider-aws/lib/kms-key/index.js";
import { NatGateway } from "@cdktf/provider-aws/lib/nat-gateway/index.js";
import { RouteTable } from "@cdktf/provider-aws/lib/route-table/index.js";
import { RouteTableAssociation } from "@cdktf/provider-aws/lib/route-table-association/index.js";
import { Subnet } from "@cdktf/provider-aws/lib/subnet/index.js";
import { Vpc } from "@cdktf/provider-aws/lib/vpc/index.js";
import { KubernetesProvider } from "@cdktf/provider-kubernetes/lib/provider/index.js";
import { Fn, Token } from "cdktf";
import { Construct } from "constructs";
import { cidrProblem } from "../../constructs/cidr.js";
import { assertOtherStack, type IKubeCluster } from "../../constructs/kube-cluster.js";
import { AWS_LB_TAGS_ANNOTATION, awsTagProblem, lbTagsAnnotationValue } from "../../constructs/tags.js";
import { ValidationError } from "../../constructs/validation-error.js";
import {
  EKS_AMI_TYPES,
  EKS_DEFAULTS,
  EKS_DISK_SIZE_RANGE,
  EKS_HARDENING_DEFAULTS,
  EKS_LOG_TYPES,
  type EksAmiType,
  type EksLogType,
  isAnywhere,
} from "./site.js";

/** Number of availability zones the VPC spans (EKS requires at least two). */
const AZ_COUNT = 2;
const AWS_POLICY = "arn:aws:iam::aws:policy";

/** Annotations that turn a LoadBalancer Service into an internet-facing NLB (in-tree controller). */
export const AWS_NLB_ANNOTATIONS: Readonly<Record<string, string>> = {
  "service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
  "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
  "service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled": "true",
};

export interface EksNodeGroupProps {
  /** Managed node group name. @default `<name>-nodegroup` */
  readonly name?: string;
  /** EC2 instance type. @default "t3.small" */
  readonly instanceType?: string;
  /** @default 2 */
  readonly desired?: number;
  /** @default 1 */
  readonly min?: number;
  /** @default 4 */
  readonly max?: number;
  /**
   * AMI type of the managed nodes; must match the instance type's architecture (ARM_64 for
   * Graviton). @default "AL2023_x86_64_STANDARD"
   * @see https://docs.aws.amazon.com/eks/latest/APIReference/API_Nodegroup.html#AmazonEKS-Type-Nodegroup-amiType
   */
  readonly amiType?: EksAmiType;
  /** Root volume of each node in GiB, 20..16384. @default 20 */
  readonly diskSize?: number;
}

/** Who reaches the Kubernetes API endpoint. */
export interface EksApiEndpointProps {
  /** The endpoint inside the VPC (nodes, operators on a VPN, bastion or in-VPC CI). @default true */
  readonly privateAccess?: boolean;
  /**
   * CIDRs admitted to the public endpoint; [] turns the public endpoint off. `0.0.0.0/0` or `::/0`
   * is refused unless `publicFromAnywhere` is true. @default [] (no public endpoint)
   */
  readonly publicCidrs?: readonly string[];
  /** Allow `0.0.0.0/0` / `::/0` in publicCidrs (IAM authentication is then the only guard). @default false */
  readonly publicFromAnywhere?: boolean;
}

export interface EksClusterProps {
  /** Cluster name (also prefixes the VPC's resource names). */
  readonly name: string;
  /** Region of the stack's AwsProvider; used in the kubeconfig and token commands. */
  readonly region: string;
  /** @default "10.0.0.0/16" */
  readonly vpcCidr?: string;
  /** Control-plane version, e.g. "1.33". @default EKS's current default version */
  readonly kubernetesVersion?: string;
  /** @default { name: `<name>-nodegroup`, instanceType: "t3.small", desired: 2, min: 1, max: 4 } */
  readonly nodeGroup?: EksNodeGroupProps;
  /**
   * EKS access-entry mode. @default "API"
   * @see https://docs.aws.amazon.com/eks/latest/userguide/grant-k8s-access.html
   */
  readonly authenticationMode?: "API" | "API_AND_CONFIG_MAP";
  /**
   * Make the identity that creates the cluster a cluster admin. Set explicitly because its default
   * changed between provider versions and changing it replaces the cluster. @default true
   */
  readonly bootstrapClusterCreatorAdminPermissions?: boolean;
  /**
   * API endpoint access. @default private endpoint only ({ privateAccess: true, publicCidrs: [] })
   * @see https://docs.aws.amazon.com/eks/latest/userguide/cluster-endpoint.html
   */
  readonly apiEndpoint?: EksApiEndpointProps;
  /**
   * Control-plane log types sent to CloudWatch Logs (`/aws/eks/<name>/cluster`); [] for none.
   * @default all five: api, audit, authenticator, controllerManager, scheduler
   */
  readonly controlPlaneLogs?: readonly EksLogType[];
  /** Retention of the control-plane log group, days. @default 90 */
  readonly logRetentionDays?: number;
  /**
   * Envelope encryption of Kubernetes Secrets: `true` creates a KMS key (yearly rotation) for the
   * cluster, `{ kmsKeyArn }` uses yours, `false` leaves Secrets with EKS's default encryption only.
   * Cannot be turned off once on. @default true
   */
  readonly secretsEncryption?: boolean | { readonly kmsKeyArn: string };
  /** Tags added to every resource (on top of the provider's default tags). @default {} */
  readonly tags?: Record<string, string>;
  /**
   * Tags of the load balancers Kubernetes creates for the routers' Services (they get neither the
   * provider's default tags nor `tags`), rendered into the NLB annotation
   * `service.beta.kubernetes.io/aws-load-balancer-additional-resource-tags`. @default `tags`
   */
  readonly loadBalancerTags?: Readonly<Record<string, string>>;
}

/** CloudWatch Logs retention values (days) the API accepts. */
const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

export class EksCluster extends Construct implements IKubeCluster {
  readonly clusterName: string;
  /** The routers' LoadBalancers are internet-facing NLBs, tagged with `loadBalancerTags`. */
  readonly loadBalancerAnnotations: Readonly<Record<string, string>>;
  /** The KMS key that encrypts Secrets, when this construct created it. */
  readonly secretsKey: KmsKey | undefined;
  readonly region: string;
  /** API server URL (token). */
  readonly endpoint: string;
  /** Base64 PEM of the cluster CA (token). */
  readonly certificateAuthorityData: string;
  readonly kubeconfigCommand: string;
  /** `<NAT Elastic IP>/32`: the nodes sit on the private subnets, so all egress leaves from it. */
  readonly egressCidrs: readonly string[];
  /** None: the NLB has a host name, pods reach it through the NAT gateway like anyone else. */
  readonly inClusterCidrs: readonly string[] = [];
  /** The NAT gateway's Elastic IP. */
  readonly natIp: Eip;
  readonly vpc: Vpc;
  readonly cluster: AwsEksCluster;
  readonly nodeGroup: EksNodeGroup;

  constructor(scope: Construct, id: string, props: EksClusterProps) {
    super(scope, id);
    const ng = {
      name: props.nodeGroup?.name ?? `${props.name}-nodegroup`,
      instanceType: props.nodeGroup?.instanceType ?? EKS_DEFAULTS.instanceType,
      desired: props.nodeGroup?.desired ?? EKS_DEFAULTS.desired,
      min: props.nodeGroup?.min ?? EKS_DEFAULTS.min,
      max: props.nodeGroup?.max ?? EKS_DEFAULTS.max,
      amiType: props.nodeGroup?.amiType ?? EKS_DEFAULTS.amiType,
      diskSize: props.nodeGroup?.diskSize ?? EKS_DEFAULTS.diskSize,
    };
    validateScaling(this, ng);
    validateNodes(this, ng);
    const endpoint = {
      privateAccess: props.apiEndpoint?.privateAccess ?? EKS_HARDENING_DEFAULTS.apiEndpoint.privateAccess,
      publicCidrs: [...(props.apiEndpoint?.publicCidrs ?? EKS_HARDENING_DEFAULTS.apiEndpoint.publicCidrs)],
      publicFromAnywhere: props.apiEndpoint?.publicFromAnywhere ?? false,
    };
    validateEndpoint(this, endpoint);
    const logTypes = [...(props.controlPlaneLogs ?? EKS_HARDENING_DEFAULTS.controlPlaneLogs)];
    for (const t of logTypes) {
      if (!(EKS_LOG_TYPES as readonly string[]).includes(t))
        throw new ValidationError(
          this,
          `EksCluster: controlPlaneLogs: unknown log type "${t}"; allowed: ${EKS_LOG_TYPES.join(", ")}`,
        );
    }
    const retention = props.logRetentionDays ?? 90;
    if (!Token.isUnresolved(retention) && !LOG_RETENTION_DAYS.includes(retention)) {
      throw new ValidationError(
        this,
        `EksCluster: logRetentionDays ${retention} is not a CloudWatch Logs retention; allowed: ${LOG_RETENTION_DAYS.join(", ")}`,
      );
    }
    this.clusterName = props.name;
    this.region = props.region;
    const tags = props.tags ?? {};
    const name = props.name;
    const clusterTag = { [`kubernetes.io/cluster/${name}`]: "shared" };
    const lbTags = props.loadBalancerTags ?? tags;
    for (const [k, v] of Object.entries(lbTags)) {
      const problem = awsTagProblem(k, v);
      if (problem) throw new ValidationError(this, `EksCluster: loadBalancerTags.${k}: ${problem}`);
    }
    this.loadBalancerAnnotations = {
      ...AWS_NLB_ANNOTATIONS,
      ...(Object.keys(lbTags).length > 0 ? { [AWS_LB_TAGS_ANNOTATION]: lbTagsAnnotationValue(lbTags) } : {}),
    };

    const azs = new DataAwsAvailabilityZones(this, "azs", { state: "available" });
    this.vpc = new Vpc(this, "vpc", {
      cidrBlock: props.vpcCidr ?? "10.0.0.0/16",
      enableDnsSupport: true,
      enableDnsHostnames: true,
      tags: { ...tags, Name: `${name}-vpc` },
    });
    const igw = new InternetGateway(this, "igw", {
      vpcId: this.vpc.id,
      tags: { ...tags, Name: `${name}-igw` },
    });

    // /20 blocks: public subnets take 0..1, private 8..9 of the VPC's sixteen.
    const publicSubnets: Subnet[] = [];
    const privateSubnets: Subnet[] = [];
    for (let i = 0; i < AZ_COUNT; i++) {
      const az = Fn.element(azs.names, i);
      publicSubnets.push(
        new Subnet(this, `public-${i}`, {
          vpcId: this.vpc.id,
          availabilityZone: az,
          cidrBlock: Fn.cidrsubnet(this.vpc.cidrBlock, 4, i),
          mapPublicIpOnLaunch: true,
          // Where internet-facing load balancers (the routers' NLBs) go.
          tags: { ...tags, ...clusterTag, Name: `${name}-public-${i}`, "kubernetes.io/role/elb": "1" },
        }),
      );
      privateSubnets.push(
        new Subnet(this, `private-${i}`, {
          vpcId: this.vpc.id,
          availabilityZone: az,
          cidrBlock: Fn.cidrsubnet(this.vpc.cidrBlock, 4, 8 + i),
          tags: {
            ...tags,
            ...clusterTag,
            Name: `${name}-private-${i}`,
            "kubernetes.io/role/internal-elb": "1",
          },
        }),
      );
    }

    // One NAT gateway keeps the bill small; a NAT per AZ survives the loss of an AZ.
    this.natIp = new Eip(this, "nat-ip", {
      domain: "vpc",
      tags: { ...tags, Name: `${name}-nat` },
      dependsOn: [igw],
    });
    const natIp = this.natIp;
    this.egressCidrs = [`${natIp.publicIp}/32`];
    const nat = new NatGateway(this, "nat", {
      allocationId: natIp.id,
      subnetId: publicSubnets[0]!.id,
      tags: { ...tags, Name: `${name}-nat` },
      dependsOn: [igw],
    });
    const publicRoutes = new RouteTable(this, "public-routes", {
      vpcId: this.vpc.id,
      route: [{ cidrBlock: "0.0.0.0/0", gatewayId: igw.id }],
      tags: { ...tags, Name: `${name}-public` },
    });
    const privateRoutes = new RouteTable(this, "private-routes", {
      vpcId: this.vpc.id,
      route: [{ cidrBlock: "0.0.0.0/0", natGatewayId: nat.id }],
      tags: { ...tags, Name: `${name}-private` },
    });
    publicSubnets.forEach((s, i) => {
      new RouteTableAssociation(this, `public-${i}-routes`, {
        subnetId: s.id,
        routeTableId: publicRoutes.id,
      });
    });
    privateSubnets.forEach((s, i) => {
      new RouteTableAssociation(this, `private-${i}-routes`, {
        subnetId: s.id,
        routeTableId: privateRoutes.id,
      });
    });

    const clusterRole = new IamRole(this, "cluster-role", {
      name: `${name}-eks-cluster`,
      assumeRolePolicy: assumeRolePolicy("eks.amazonaws.com"),
      tags,
    });
    const clusterPolicy = new IamRolePolicyAttachment(this, "cluster-policy", {
      role: clusterRole.name,
      policyArn: `${AWS_POLICY}/AmazonEKSClusterPolicy`,
    });
    const nodeRole = new IamRole(this, "node-role", {
      name: `${name}-eks-node`,
      assumeRolePolicy: assumeRolePolicy("ec2.amazonaws.com"),
      tags,
    });
    const nodePolicies = [
      "AmazonEKSWorkerNodePolicy",
      "AmazonEKS_CNI_Policy",
      "AmazonEC2ContainerRegistryReadOnly",
    ].map(
      (policy) =>
        new IamRolePolicyAttachment(this, `node-${policy}`, {
          role: nodeRole.name,
          policyArn: `${AWS_POLICY}/${policy}`,
        }),
    );

    // Secrets envelope encryption: a key of this cluster's own (or the caller's), which the
    // cluster role may use.
    const enc = props.secretsEncryption ?? EKS_HARDENING_DEFAULTS.secretsEncryption;
    this.secretsKey =
      enc === true
        ? new KmsKey(this, "secrets-key", {
            description: `Envelope encryption of Kubernetes Secrets of EKS cluster ${name}`,
            enableKeyRotation: true,
            deletionWindowInDays: 30,
            tags: { ...tags, Name: `${name}-secrets` },
          })
        : undefined;
    if (this.secretsKey) {
      new KmsAlias(this, "secrets-key-alias", {
        name: `alias/${name}-secrets`,
        targetKeyId: this.secretsKey.keyId,
      });
    }
    const keyArn = this.secretsKey
      ? this.secretsKey.arn
      : typeof enc === "object"
        ? enc.kmsKeyArn
        : undefined;
    const keyPolicy = keyArn
      ? new IamRolePolicy(this, "cluster-secrets-key", {
          name: `${name}-secrets-key`,
          role: clusterRole.id,
          policy: JSON.stringify({
            Version: "2012-10-17",
            Statement: [
              {
                Effect: "Allow",
                Action: [
                  "kms:Encrypt",
                  "kms:Decrypt",
                  "kms:ListGrants",
                  "kms:DescribeKey",
                  "kms:CreateGrant",
                ],
                Resource: keyArn,
              },
            ],
          }),
        })
      : undefined;
    // Created here, so its retention is ours (EKS would create it without expiry).
    const logGroup =
      logTypes.length > 0
        ? new CloudwatchLogGroup(this, "control-plane-logs", {
            name: `/aws/eks/${name}/cluster`,
            retentionInDays: retention,
            tags,
          })
        : undefined;

    this.cluster = new AwsEksCluster(this, "cluster", {
      name,
      roleArn: clusterRole.arn,
      ...(props.kubernetesVersion ? { version: props.kubernetesVersion } : {}),
      vpcConfig: {
        subnetIds: [...publicSubnets, ...privateSubnets].map((s) => s.id),
        endpointPrivateAccess: endpoint.privateAccess,
        endpointPublicAccess: endpoint.publicCidrs.length > 0,
        ...(endpoint.publicCidrs.length > 0 ? { publicAccessCidrs: endpoint.publicCidrs } : {}),
      },
      enabledClusterLogTypes: logTypes,
      ...(keyArn ? { encryptionConfig: { resources: ["secrets"], provider: { keyArn } } } : {}),
      accessConfig: {
        authenticationMode: props.authenticationMode ?? "API",
        bootstrapClusterCreatorAdminPermissions: props.bootstrapClusterCreatorAdminPermissions ?? true,
      },
      tags,
      dependsOn: [clusterPolicy, ...(keyPolicy ? [keyPolicy] : []), ...(logGroup ? [logGroup] : [])],
    });

    // The VPC CNI enforces NetworkPolicy (the relay pods' 7800 rule) only when told to.
    new EksAddon(this, "vpc-cni", {
      clusterName: this.cluster.name,
      addonName: "vpc-cni",
      configurationValues: JSON.stringify({ enableNetworkPolicy: "true" }),
      resolveConflictsOnCreate: "OVERWRITE",
      resolveConflictsOnUpdate: "OVERWRITE",
      tags,
    });

    this.nodeGroup = new EksNodeGroup(this, "node-group", {
      clusterName: this.cluster.name,
      nodeGroupName: ng.name,
      nodeRoleArn: nodeRole.arn,
      subnetIds: privateSubnets.map((s) => s.id),
      instanceTypes: [ng.instanceType],
      amiType: ng.amiType,
      diskSize: ng.diskSize,
      scalingConfig: { desiredSize: ng.desired, minSize: ng.min, maxSize: ng.max },
      updateConfig: { maxUnavailable: 1 },
      tags,
      dependsOn: nodePolicies,
    });

    this.endpoint = this.cluster.endpoint;
    this.certificateAuthorityData = this.cluster.certificateAuthority.get(0).data;
    this.kubeconfigCommand = `aws eks update-kubeconfig --region ${props.region} --name ${name}`;
  }

  /**
   * A KubernetesProvider for a consumer stack: host and CA cross stacks as remote-state reads; the
   * token comes from `aws eks get-token` at each Terraform run (a data-source token fetched at plan
   * time can expire while an apply waits for load balancers).
   */
  configureKubernetesProvider(scope: Construct, id = "kubernetes"): KubernetesProvider {
    assertOtherStack("EksCluster", this, scope);
    return new KubernetesProvider(scope, id, {
      host: this.endpoint,
      clusterCaCertificate: Fn.base64decode(this.certificateAuthorityData),
      exec: [
        {
          apiVersion: "client.authentication.k8s.io/v1beta1",
          command: "aws",
          args: ["eks", "get-token", "--cluster-name", this.clusterName, "--region", this.region],
        },
      ],
    });
  }
}

function assumeRolePolicy(service: string): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Principal: { Service: service }, Action: "sts:AssumeRole" }],
  });
}

function validateNodes(scope: Construct, ng: { amiType: string; diskSize: number }): void {
  if (!Token.isUnresolved(ng.amiType) && !(EKS_AMI_TYPES as readonly string[]).includes(ng.amiType)) {
    throw new ValidationError(
      scope,
      `EksCluster: nodeGroup.amiType "${ng.amiType}" is not one of ${EKS_AMI_TYPES.join(", ")}`,
    );
  }
  const [lo, hi] = EKS_DISK_SIZE_RANGE;
  if (
    !Token.isUnresolved(ng.diskSize) &&
    (!Number.isInteger(ng.diskSize) || ng.diskSize < lo || ng.diskSize > hi)
  ) {
    throw new ValidationError(
      scope,
      `EksCluster: nodeGroup.diskSize must be an integer number of GiB in ${lo}..${hi} (got ${ng.diskSize})`,
    );
  }
}

function validateEndpoint(
  scope: Construct,
  e: { privateAccess: boolean; publicCidrs: string[]; publicFromAnywhere: boolean },
): void {
  e.publicCidrs.forEach((c, i) => {
    if (Token.isUnresolved(c)) return;
    const problem = cidrProblem(c);
    if (problem) throw new ValidationError(scope, `EksCluster: apiEndpoint.publicCidrs[${i}]: ${problem}`);
    if (isAnywhere(c) && !e.publicFromAnywhere) {
      throw new ValidationError(
        scope,
        `EksCluster: apiEndpoint.publicCidrs[${i}] "${c}" opens the Kubernetes API to the whole internet; list your operators' and CI's CIDRs, or set apiEndpoint.publicFromAnywhere: true to mean it`,
      );
    }
  });
  if (!e.privateAccess && e.publicCidrs.length === 0) {
    throw new ValidationError(
      scope,
      "EksCluster: apiEndpoint has privateAccess: false and no publicCidrs; the Kubernetes API would be unreachable",
    );
  }
}

function validateScaling(scope: Construct, ng: { desired: number; min: number; max: number }): void {
  const values = [ng.desired, ng.min, ng.max];
  if (values.some((v) => Token.isUnresolved(v))) return;
  if (values.some((v) => !Number.isInteger(v) || v < 0)) {
    throw new ValidationError(
      scope,
      `EksCluster: nodeGroup sizes must be integers >= 0 (desired ${ng.desired}, min ${ng.min}, max ${ng.max})`,
    );
  }
  if (!(ng.min <= ng.desired && ng.desired <= ng.max) || ng.max < 1) {
    throw new ValidationError(
      scope,
      `EksCluster: nodeGroup needs min <= desired <= max and max >= 1 (got min ${ng.min}, desired ${ng.desired}, max ${ng.max})`,
    );
  }
}
