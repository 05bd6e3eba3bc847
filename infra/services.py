"""The ECS cluster and what runs on it: the API, one worker service per worker version, and
the ops task definition the deploy runs one-off commands with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.api_service import ApiService
from infra.app_secrets import SecretsStack
from infra.config import Config
from infra.containers import AppImage, Container, app_environment, app_secrets, task_definition
from infra.data import DataStack
from infra.names import (
    API_CONTAINER,
    API_PORT,
    ARTIFACTS_PREFIX,
    CLUSTER_NAME,
    DEPLOYMENT_NAME,
    METRICS_NAMESPACE,
    OPS_CONTAINER,
    OPS_FAMILY,
    REPOSITORY_NAME,
    WORKER_CONTAINER,
    worker_family,
)
from infra.network import NetworkStack
from infra.worker_service import WorkerService

LOG_RETENTION = logs.RetentionDays.THREE_MONTHS


class ServicesStack(cdk.Stack):
    """Everything that runs the image; the deploy changes this stack on every release."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: Config,
        network: NetworkStack,
        data: DataStack,
        secrets: SecretsStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self.config = config
        self.bucket = data.bucket
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            cluster_name=CLUSTER_NAME,
            vpc=network.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        self.image = AppImage(
            # By name: no export ties the registry stack to this one, which CI deploys alone.
            repository=ecr.Repository.from_repository_name(self, "Repository", REPOSITORY_NAME),
            environment=app_environment(config, data),
            secrets=app_secrets(secrets, data),
            execution_role=iam.Role(
                self, "ExecutionRole", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com")
            ),
        )
        self.api = self._api(network)
        # One role and one log group for every worker version: nothing per version may be
        # exported (see WorkerService), and the CI stack passes these roles by name pattern.
        self.worker_role = self._app_role("WorkerTaskRole")
        self.worker_logs = self._log_group("WorkerLogs", "worker")
        self.workers = {
            build_id: self._worker(build_id, network.workers) for build_id in config.worker_versions
        }
        self.ops_logs = self._log_group("OpsLogs", "ops")
        self.ops = self._ops()
        self._outputs(network)

    def _api(self, network: NetworkStack) -> ApiService:
        spec = Container(
            name=API_CONTAINER,
            family="cofounder-api",
            tag=self.config.image_tag,
            command=["api"],
            task_role=self._app_role("ApiTaskRole"),
            log_group=self._log_group("ApiLogs", "api"),
            environment={
                "COFOUNDER_API_HOST": "0.0.0.0",  # the load balancer reaches the task's address
                "COFOUNDER_API_PORT": str(API_PORT),
                "COFOUNDER_CLOUDWATCH_NAMESPACE": METRICS_NAMESPACE,
            },
            port=API_PORT,
        )
        return ApiService(
            self,
            "Api",
            cluster=self.cluster,
            network=network,
            task_definition=task_definition(self, "ApiTask", self.image, spec),
            certificate_arn=self.config.certificate_arn,
        )

    def _worker(self, build_id: str, security_group: ec2.ISecurityGroup) -> WorkerService:
        spec = Container(
            name=WORKER_CONTAINER,
            family=worker_family(build_id),
            tag=build_id,  # each version runs its own image
            command=["worker"],
            task_role=self.worker_role,
            log_group=self.worker_logs,
            environment={
                **_versioned(build_id),
                "COFOUNDER_CLOUDWATCH_NAMESPACE": METRICS_NAMESPACE,
            },
            cpu=1024,
            memory_mib=2048,
        )
        return WorkerService(
            self,
            f"Worker-{build_id}",
            build_id=build_id,
            cluster=self.cluster,
            security_group=security_group,
            task_definition=task_definition(self, f"WorkerTask-{build_id}", self.image, spec),
        )

    def _ops(self) -> ecs.FargateTaskDefinition:
        # Run by the deploy with its command overridden (`db upgrade`, `replay --recent 50`,
        # `deployment set-current <build id>`: the image's entrypoint is `cofounder`).
        # Its role has no permissions: those commands talk to the database and Temporal only.
        spec = Container(
            name=OPS_CONTAINER,
            family=OPS_FAMILY,
            tag=self.config.image_tag,
            command=["--help"],
            # CI registers revisions of this family with a newer image: no tag in the streams.
            log_prefix=OPS_CONTAINER,
            task_role=iam.Role(
                self, "OpsTaskRole", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com")
            ),
            log_group=self.ops_logs,
            environment=_versioned(self.config.image_tag),
        )
        return task_definition(self, "OpsTask", self.image, spec)

    def _app_role(self, id: str) -> iam.Role:
        """A task role for the API or a worker: the artifacts under their prefix, and
        metrics into our namespace; nothing else."""
        role = iam.Role(self, id, assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"))
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject"],
                resources=[self.bucket.arn_for_objects(f"{ARTIFACTS_PREFIX}/*")],
            )
        )
        # Without it S3 answers 403, not 404, for a missing artifact (exists() reads 404).
        role.add_to_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self.bucket.bucket_arn])
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],  # PutMetricData has no resources; the namespace is the limit
                conditions={"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
            )
        )
        return role

    def _log_group(self, id: str, kind: str) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            id,
            log_group_name=f"/cofounder/{kind}",
            retention=LOG_RETENTION,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

    def _outputs(self, network: NetworkStack) -> None:
        private = network.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        outputs: Mapping[str, str] = {
            "ClusterName": self.cluster.cluster_name,
            "ApiUrl": f"{self._scheme()}://{self.api.load_balancer.load_balancer_dns_name}",
            "OpsTaskFamily": OPS_FAMILY,
            "OpsContainerName": OPS_CONTAINER,
            # `aws ecs run-task` needs the network: the workers' subnets and group.
            "OpsSubnets": ",".join(private.subnet_ids),
            "OpsSecurityGroup": network.workers.security_group_id,
            "OpsLogGroup": self.ops_logs.log_group_name,
        }
        for name, value in outputs.items():
            cdk.CfnOutput(self, name, value=value)

    def _scheme(self) -> str:
        return "http" if self.config.certificate_arn is None else "https"


def _versioned(build_id: str) -> dict[str, str]:
    return {"COFOUNDER_DEPLOYMENT_NAME": DEPLOYMENT_NAME, "COFOUNDER_BUILD_ID": build_id}
