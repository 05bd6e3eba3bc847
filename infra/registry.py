"""The image repository, a stack of its own: CI pushes the new image into it before the
services stack, which runs that image, is deployed."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ecr as ecr
from constructs import Construct

from infra.names import REPOSITORY_NAME

# Images kept: every worker version still draining runs its own image, so this must stay
# well above the number of deploys a long build can outlive.
KEEP_IMAGES = 50


class RegistryStack(cdk.Stack):
    """ECR repository `cofounder`, tagged by git sha."""

    def __init__(self, scope: Construct, id: str, **kwargs: Any):
        super().__init__(scope, id, **kwargs)
        self.repository = ecr.Repository(
            self,
            "Repository",
            repository_name=REPOSITORY_NAME,
            image_scan_on_push=True,
            # A tag is a build id: the image a worker version runs must never change under it.
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            lifecycle_rules=[
                ecr.LifecycleRule(
                    description=f"keep the last {KEEP_IMAGES} images",
                    max_image_count=KEEP_IMAGES,
                )
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        cdk.CfnOutput(self, "RepositoryUri", value=self.repository.repository_uri)
