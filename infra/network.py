"""The VPC and every security group, with the rules between them kept in one place: the
internet reaches the load balancer only, the load balancer the API only, and the database
and the cache take connections from the tasks only."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from infra.names import API_PORT, REDIS_PORT


class NetworkStack(cdk.Stack):
    """Public subnets (the load balancer, the NAT gateway) and private ones (everything else)."""

    def __init__(self, scope: Construct, id: str, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            # One NAT gateway: the tasks' outbound calls (Temporal, Anthropic, E2B, GitHub)
            # survive the loss of its zone only after a redeploy, at a third of the cost.
            nat_gateways=1,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC),
                ec2.SubnetConfiguration(
                    name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS
                ),
            ],
        )
        self.alb = self._group("Alb", "the API load balancer, internet-facing")
        self.api = self._group("Api", "the API tasks")
        self.workers = self._group("Workers", "the worker tasks and one-off ops tasks")
        self.database = self._group("Database", "PostgreSQL", outbound=False)
        self.cache = self._group("Cache", "Redis", outbound=False)
        self._rules()

    def _group(self, id: str, what: str, outbound: bool = True) -> ec2.SecurityGroup:
        return ec2.SecurityGroup(
            self, id, vpc=self.vpc, description=f"cofounder: {what}", allow_all_outbound=outbound
        )

    def _rules(self) -> None:
        self.alb.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS")
        # Plain HTTP is redirected to HTTPS when there is a certificate, served otherwise.
        self.alb.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(80), "HTTP")
        self.api.add_ingress_rule(self.alb, ec2.Port.tcp(API_PORT), "from the load balancer")
        for tasks in (self.api, self.workers):
            self.database.add_ingress_rule(tasks, ec2.Port.tcp(5432), "PostgreSQL")
            self.cache.add_ingress_rule(tasks, ec2.Port.tcp(REDIS_PORT), "Redis")
