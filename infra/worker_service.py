"""One worker version: its service, and scaling on CPU and on Temporal's task backlog.

The backlog signal is the schedule-to-start latency the workers publish to CloudWatch
(cofounder/cloudwatch.py puts the SDK's `temporal_*` histograms with every label as a
dimension): a task waits in its queue while no worker has a free slot. Metrics Insights
folds every series (task queues, activity and workflow types) into one. The series carry no
build id, so every version scales on the whole fleet's backlog; a draining version idles
back down on CPU.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from infra.names import METRICS_NAMESPACE, worker_service_name

BACKLOG_METRICS = (
    "temporal_workflow_task_schedule_to_start_latency",
    "temporal_activity_schedule_to_start_latency",
)
# The metric's Maximum is the upper edge of the bucket the slowest task fell in (..., 2.5,
# 5, 10, 30, 60, ...: cofounder/temporal_metrics.py): 10 means one waited over 5 s for a
# worker, 60 over 30 s.
BACKLOG_STEPS = (
    autoscaling.ScalingInterval(upper=10, change=0),
    autoscaling.ScalingInterval(lower=10, change=1),
    autoscaling.ScalingInterval(lower=60, change=3),
)
MAX_WORKERS = 10


def backlog(metric_name: str) -> cloudwatch.MathExpression:
    """The longest a task of this kind waited to start, across the fleet, per minute."""
    return cloudwatch.MathExpression(
        expression=f'SELECT MAX({metric_name}) FROM "{METRICS_NAMESPACE}"',
        label=metric_name,
        period=cdk.Duration.minutes(1),
    )


class WorkerService(Construct):
    """`cofounder worker` tasks of one build id, in the private subnets."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        build_id: str,
        cluster: ecs.ICluster,
        security_group: ec2.ISecurityGroup,
        task_definition: ecs.FargateTaskDefinition,
    ) -> None:
        super().__init__(scope, id)
        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=cluster,
            # A fixed name: the observability stack finds it without an export, which would
            # pin the version in place once the deploy wants it gone.
            service_name=worker_service_name(build_id),
            task_definition=task_definition,
            desired_count=1,
            min_healthy_percent=100,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            security_groups=[security_group],
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        )
        self._scaling()

    def _scaling(self) -> None:
        # At least one worker while the version is listed: builds pinned to it need a poller.
        scaling = self.service.auto_scale_task_count(min_capacity=1, max_capacity=MAX_WORKERS)
        scaling.scale_on_cpu_utilization("Cpu", target_utilization_percent=60)
        for name in BACKLOG_METRICS:
            scaling.scale_on_metric(
                name.removeprefix("temporal_").removesuffix("_schedule_to_start_latency"),
                metric=backlog(name),
                scaling_steps=list(BACKLOG_STEPS),
                adjustment_type=autoscaling.AdjustmentType.CHANGE_IN_CAPACITY,
                cooldown=cdk.Duration.minutes(2),
                evaluation_periods=2,
            )
