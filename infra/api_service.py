"""The API behind an internet-facing load balancer."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from constructs import Construct

from infra.names import API_PORT, HEALTH_PATH
from infra.network import NetworkStack


class ApiService(Construct):
    """`cofounder api` tasks in the private subnets, reached through the load balancer."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cluster: ecs.ICluster,
        network: NetworkStack,
        task_definition: ecs.FargateTaskDefinition,
        certificate_arn: str | None,
    ) -> None:
        super().__init__(scope, id)
        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=cluster,
            task_definition=task_definition,
            desired_count=2,
            min_healthy_percent=100,
            max_healthy_percent=200,
            # A release whose tasks never turn healthy is rolled back, not left half done.
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            health_check_grace_period=cdk.Duration.seconds(60),
            security_groups=[network.api],
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        )
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=network.vpc,
            internet_facing=True,
            security_group=network.alb,
            drop_invalid_header_fields=True,
        )
        self.target_group = self._targets(network.vpc)
        self.listener = self._listener(certificate_arn)
        scaling = self.service.auto_scale_task_count(min_capacity=2, max_capacity=6)
        scaling.scale_on_cpu_utilization("Cpu", target_utilization_percent=60)

    def _targets(self, vpc: ec2.IVpc) -> elbv2.ApplicationTargetGroup:
        return elbv2.ApplicationTargetGroup(
            self,
            "Targets",
            vpc=vpc,
            port=API_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,
            targets=[self.service],
            deregistration_delay=cdk.Duration.seconds(30),
            health_check=elbv2.HealthCheck(
                path=HEALTH_PATH, healthy_http_codes="200", interval=cdk.Duration.seconds(15)
            ),
        )

    def _listener(self, certificate_arn: str | None) -> elbv2.ApplicationListener:
        if certificate_arn is None:
            listener = self.load_balancer.add_listener("Http", port=80, open=False)
        else:
            self.load_balancer.add_redirect()  # 80 -> 443
            listener = self.load_balancer.add_listener(
                "Https",
                port=443,
                open=False,  # the network stack's group opens 80 and 443
                certificates=[elbv2.ListenerCertificate.from_arn(certificate_arn)],
                ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
            )
        listener.add_target_groups("Api", target_groups=[self.target_group])
        # Prometheus' scrape path is for the VPC, not the internet.
        listener.add_action(
            "HideMetrics",
            priority=1,
            conditions=[elbv2.ListenerCondition.path_patterns(["/metrics"])],
            action=elbv2.ListenerAction.fixed_response(404),
        )
        return listener
