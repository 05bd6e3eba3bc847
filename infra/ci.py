"""What GitHub Actions may do in this account: assume the deploy role, from the production
environment of one repository only, through GitHub's OIDC provider (no stored AWS keys).

It depends on no other stack, so it is deployed first, by hand, once; after that CI deploys
everything with it. Its resources are found by their fixed names for the same reason.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.config import Config
from infra.names import CLUSTER_NAME, OPS_FAMILY, REPOSITORY_NAME, SERVICES_STACK

GITHUB_OIDC = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"


class CiStack(cdk.Stack):
    """The OIDC provider and the deploy role; outputs DeployRoleArn."""

    def __init__(self, scope: Construct, id: str, *, config: Config, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        provider = self._provider(config.oidc_provider_arn)
        self.role = iam.Role(
            self,
            "DeployRole",
            description=f"GitHub Actions deploys of {config.github_repo} (production)",
            max_session_duration=cdk.Duration.hours(1),
            assumed_by=iam.WebIdentityPrincipal(
                provider.open_id_connect_provider_arn,
                conditions={
                    "StringEquals": {
                        f"{GITHUB_OIDC}:aud": AUDIENCE,
                        f"{GITHUB_OIDC}:sub": f"repo:{config.github_repo}:environment:production",
                    }
                },
            ),
        )
        for statement in self._statements():
            self.role.add_to_policy(statement)
        cdk.CfnOutput(self, "DeployRoleArn", value=self.role.role_arn)

    def _provider(self, existing_arn: str | None) -> iam.IOpenIdConnectProvider:
        # An account has one provider per URL: reuse it when another stack made it already.
        if existing_arn:
            return iam.OidcProviderNative.from_oidc_provider_arn(self, "GitHub", existing_arn)
        return iam.OidcProviderNative(
            self, "GitHub", url=f"https://{GITHUB_OIDC}", client_ids=[AUDIENCE]
        )

    def _statements(self) -> list[iam.PolicyStatement]:
        return [*self._image_push(), *self._ops_tasks(), *self._watch(), *self._cdk_deploy()]

    def _ecs(self, resource: str, name: str) -> str:
        return self.format_arn(service="ecs", resource=resource, resource_name=name)

    def _image_push(self) -> list[iam.PolicyStatement]:
        repository = self.format_arn(
            service="ecr", resource="repository", resource_name=REPOSITORY_NAME
        )
        return [
            # The registry login has no resource to scope it to.
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            iam.PolicyStatement(
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:DescribeImages",
                    "ecr:InitiateLayerUpload",
                    "ecr:UploadLayerPart",
                    "ecr:CompleteLayerUpload",
                    "ecr:PutImage",
                ],
                resources=[repository],
            ),
        ]

    def _ops_tasks(self) -> list[iam.PolicyStatement]:
        """Register the ops task with the new image and run it (replay, db upgrade,
        set-current) before and after the release."""
        roles = self.format_arn(
            service="iam", region="", resource="role", resource_name=f"{SERVICES_STACK}-*"
        )
        return [
            iam.PolicyStatement(
                actions=["ecs:RunTask"],
                resources=[self._ecs("task-definition", f"{OPS_FAMILY}:*")],
                conditions={"ArnEquals": {"ecs:cluster": self._ecs("cluster", CLUSTER_NAME)}},
            ),
            # Registering takes no resource; PassRole below bounds what such a task may be.
            iam.PolicyStatement(
                actions=["ecs:RegisterTaskDefinition", "ecs:DescribeTaskDefinition"],
                resources=["*"],
            ),
            # The services stack's task and execution roles (CloudFormation names them
            # `<stack>-<id>-<suffix>`), to ECS tasks only.
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[roles],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            ),
        ]

    def _watch(self) -> list[iam.PolicyStatement]:
        """Follow the ops tasks (state, log) and wait for the services to be stable."""
        logs = self.format_arn(
            service="logs",
            resource="log-group",
            resource_name="/cofounder/ops:*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        return [
            iam.PolicyStatement(
                actions=["ecs:DescribeTasks", "ecs:StopTask"],
                resources=[self._ecs("task", f"{CLUSTER_NAME}/*")],
            ),
            iam.PolicyStatement(
                actions=["logs:GetLogEvents", "logs:FilterLogEvents"], resources=[logs]
            ),
            iam.PolicyStatement(
                actions=["ecs:ListServices"],
                resources=["*"],
                conditions={"ArnEquals": {"ecs:cluster": self._ecs("cluster", CLUSTER_NAME)}},
            ),
            iam.PolicyStatement(
                actions=["ecs:DescribeServices"],
                resources=[self._ecs("service", f"{CLUSTER_NAME}/*")],
            ),
        ]

    def _cdk_deploy(self) -> list[iam.PolicyStatement]:
        bootstrap = self.format_arn(
            service="iam", region="", resource="role", resource_name="cdk-*"
        )
        stacks = self.format_arn(
            service="cloudformation", resource="stack", resource_name="Cofounder*/*"
        )
        return [
            # `cdk deploy` works through the bootstrap's roles (deploy, file publishing,
            # lookup), which hold CloudFormation's permissions; this role holds none itself.
            iam.PolicyStatement(
                actions=["sts:AssumeRole", "sts:TagSession"], resources=[bootstrap]
            ),
            # Reading the stacks' outputs (cluster, subnets, ...) for the ops tasks.
            iam.PolicyStatement(actions=["cloudformation:DescribeStacks"], resources=[stacks]),
        ]
