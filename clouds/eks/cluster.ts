// An EKS cluster with everything it needs from provider-aws alone: a VPC over two availability
// zones (public subnets for internet-facing load balancers, private ones for the nodes), one NAT
// gateway (whose Elastic IP is the cluster's only egress address, `egressCidrs`), the IAM roles, the control plane (API authentication, creator as admin) and one managed
// node group. The AwsProvider (region) is configured by the stack that holds this construct.

import { DataAwsAvailabilityZones } from "@cdktf/provider-aws/lib/data-aws-availability-zones/index.js";
import { Eip } from "@cdktf/provider-aws/lib/eip/index.js";
import { EksAddon } from "@cdktf/provider-aws/lib/eks-addon/index.js";
import { EksCluster as AwsEksCluster } from "@cdktf/provider-aws/lib/eks-cluster/index.js";
import { EksNodeGroup } from "@cdktf/provider-aws/lib/eks-node-group/index.js";
import { IamRole } from "@cdktf/provider-aws/lib/iam-role/index.js";
import { IamRolePolicyAttachment } from "@cdktf/provider-aws/lib/iam-role-policy-attachment/index.js";
import { InternetGateway } from "@cdktf/provider-aws/lib/internet-gateway/index.js";
import { NatGateway } from "@cdktf/provider-aws/lib/nat-gateway/index.js";
import { RouteTable } from "@cdktf/provider-aws/lib/route-table/index.js";
import { RouteTableAssociation } from "@cdktf/provider-aws/lib/route-table-association/index.js";
import { Subnet } from "@cdktf/provider-aws/lib/subnet/index.js";
import { Vpc } from "@cdktf/provider-aws/lib/vpc/index.js";
import { KubernetesProvider } from "@cdktf/provider-kubernetes/lib/provider/index.js";
import { Fn, Token } from "cdktf";
import { Construct } from "constructs";
import { assertOtherStack, type IKubeCluster } from "../../constructs/kube-cluster.js";
import { ValidationError } from "../../constructs/validation-error.js";
import { EKS_DEFAULTS } from "./site.js";

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
  /** CIDRs allowed to reach the public API endpoint. @default ["0.0.0.0/0"] */
  readonly publicAccessCidrs?: string[];
  /** Tags added to every resource (on top of the provider's default tags). @default {} */
  readonly tags?: Record<string, string>;
}

export class EksCluster extends Construct implements IKubeCluster {
  readonly clusterName: string;
  /** The routers' LoadBalancers are internet-facing NLBs. */
  readonly loadBalancerAnnotations = AWS_NLB_ANNOTATIONS;
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
    };
    validateScaling(this, ng);
    this.clusterName = props.name;
    this.region = props.region;
    const tags = props.tags ?? {};
    const name = props.name;
    const clusterTag = { [`kubernetes.io/cluster/${name}`]: "shared" };

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

    this.cluster = new AwsEksCluster(this, "cluster", {
      name,
      roleArn: clusterRole.arn,
      ...(props.kubernetesVersion ? { version: props.kubernetesVersion } : {}),
      vpcConfig: {
        subnetIds: [...publicSubnets, ...privateSubnets].map((s) => s.id),
        endpointPublicAccess: true,
        endpointPrivateAccess: true,
        publicAccessCidrs: props.publicAccessCidrs ?? ["0.0.0.0/0"],
      },
      accessConfig: {
        authenticationMode: props.authenticationMode ?? "API",
        bootstrapClusterCreatorAdminPermissions: props.bootstrapClusterCreatorAdminPermissions ?? true,
      },
      tags,
      dependsOn: [clusterPolicy],
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
