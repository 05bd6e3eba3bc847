"""What outlives every deploy: PostgreSQL (the app database), Redis (rate limits) and the
S3 bucket of artifacts. Nothing here is reachable from the internet."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.cache import Cache
from infra.names import DATABASE_NAME, DATABASE_USER
from infra.network import NetworkStack

PRIVATE = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)


class DataStack(cdk.Stack):
    """The database, the cache and the artifact bucket, in the network's private subnets."""

    def __init__(self, scope: Construct, id: str, *, network: NetworkStack, **kwargs: Any):
        super().__init__(scope, id, **kwargs)
        self.database = self._database(network)
        self.cache = Cache(self, "Cache", vpc=network.vpc, security_group=network.cache)
        self.bucket = self._bucket()

    def _database(self, network: NetworkStack) -> rds.DatabaseInstance:
        # The generated password lives in a Secrets Manager secret (`password` field): the
        # containers get it as DATABASE_PASSWORD, the template never sees it.
        return rds.DatabaseInstance(
            self,
            "Database",
            engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_17),
            instance_type=ec2.InstanceType.of(
                ec2.InstanceClass.BURSTABLE4_GRAVITON, ec2.InstanceSize.SMALL
            ),
            vpc=network.vpc,
            vpc_subnets=PRIVATE,
            security_groups=[network.database],
            publicly_accessible=False,
            credentials=rds.Credentials.from_generated_secret(DATABASE_USER),
            database_name=DATABASE_NAME,
            storage_encrypted=True,
            allocated_storage=20,
            max_allocated_storage=200,
            # Every build's row, ledger and usage: a second zone and a week of backups.
            multi_az=True,
            backup_retention=cdk.Duration.days(7),
            deletion_protection=True,
            removal_policy=cdk.RemovalPolicy.SNAPSHOT,
        )

    def _bucket(self) -> s3.Bucket:
        return s3.Bucket(
            self,
            "Artifacts",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            # Artifacts are content-addressed and never rewritten; versions keep a deleted or
            # overwritten one recoverable for a month (a bug, or a task's stolen credentials).
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                    noncurrent_version_expiration=cdk.Duration.days(30),
                )
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
