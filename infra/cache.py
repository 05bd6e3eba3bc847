"""Redis (ElastiCache), where every API instance counts the per-user rate limits.

It takes TLS connections with an auth token only, so REDIS_URL carries a secret (as
.env.example says it may) and reaches the containers as one: a Secrets Manager secret whose
value CloudFormation composes from the generated token and the cache's address, neither of
them ever written in the template in plain text.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.names import REDIS_PORT


class Cache(Construct):
    """One small node: it holds a minute of counts, which a failover may lose harmlessly."""

    def __init__(
        self, scope: Construct, id: str, *, vpc: ec2.IVpc, security_group: ec2.ISecurityGroup
    ) -> None:
        super().__init__(scope, id)
        # Letters and digits only: ElastiCache refuses some punctuation, a URL some more.
        self.token = secretsmanager.Secret(
            self,
            "AuthToken",
            description="cofounder: the Redis auth token",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                exclude_punctuation=True, password_length=64
            ),
        )
        self.redis = self._redis(vpc, security_group)
        self.url = secretsmanager.Secret(
            self,
            "Url",
            description="cofounder: REDIS_URL",
            secret_string_value=cdk.SecretValue.unsafe_plain_text(self._url()),
        )

    def _redis(
        self, vpc: ec2.IVpc, security_group: ec2.ISecurityGroup
    ) -> elasticache.CfnReplicationGroup:
        subnets = elasticache.CfnSubnetGroup(
            self,
            "Subnets",
            description="cofounder: Redis in the private subnets",
            subnet_ids=vpc.select_subnets(
                subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS
            ).subnet_ids,
        )
        return elasticache.CfnReplicationGroup(
            self,
            "Redis",
            replication_group_description="cofounder: per-user rate limits",
            engine="redis",
            engine_version="7.1",
            cache_node_type="cache.t4g.micro",
            num_cache_clusters=1,
            port=REDIS_PORT,
            cache_subnet_group_name=subnets.ref,
            security_group_ids=[security_group.security_group_id],
            at_rest_encryption_enabled=True,
            transit_encryption_enabled=True,
            auth_token=self.token.secret_value.unsafe_unwrap(),  # a dynamic reference
        )

    def _url(self) -> str:
        # rediss: TLS. The token stays a {{resolve:secretsmanager:...}} reference that
        # CloudFormation resolves as it writes the secret.
        return cdk.Fn.join(
            "",
            [
                "rediss://:",
                self.token.secret_value.unsafe_unwrap(),
                "@",
                self.redis.attr_primary_end_point_address,
                f":{REDIS_PORT}/0",
            ],
        )
