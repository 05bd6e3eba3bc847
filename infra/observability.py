"""Alarms (to an SNS topic) and one dashboard over the API, the workers, the database and
the builds themselves. The log groups live with the services that write them."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.config import Config
from infra.data import DataStack
from infra.names import CLUSTER_NAME, METRICS_NAMESPACE, worker_service_name
from infra.services import ServicesStack
from infra.worker_service import BACKLOG_METRICS, backlog

FIVE_MINUTES = cdk.Duration.minutes(5)
GIB = 1024**3


class ObservabilityStack(cdk.Stack):
    """Who is told when the product is unwell, and where to look."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: Config,
        services: ServicesStack,
        data: DataStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self.topic = sns.Topic(self, "Alarms", display_name="cofounder alarms")
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        self.metrics = _metrics(config, services, data)
        for name, (metric, threshold, comparison) in _alarms(self.metrics).items():
            self._alarm(name, metric, threshold, comparison)
        self._dashboard()

    def _alarm(
        self,
        name: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            name,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            # No data is no trouble: no requests, no builds, a version that just drained.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))

    def _dashboard(self) -> None:
        m = self.metrics
        workers = [m[key] for key in m if key.startswith("WorkerCpu")]
        builds = cloudwatch.MathExpression(
            expression=(
                f'SELECT SUM(cofounder_builds_ended_total) FROM "{METRICS_NAMESPACE}"'
                " GROUP BY outcome"
            ),
            label="builds ended",
            period=cdk.Duration.hours(1),
        )
        rows: list[tuple[str, list[cloudwatch.IMetric]]] = [
            ("API 5xx", [m["Api5xx"]]),
            ("API unhealthy targets", [m["ApiUnhealthy"]]),
            ("Worker CPU (per version)", workers),
            ("Task backlog: schedule-to-start (s)", [backlog(name) for name in BACKLOG_METRICS]),
            ("Database CPU", [m["DatabaseCpu"]]),
            ("Database free storage", [m["DatabaseStorage"]]),
            ("Builds ended, by outcome", [builds]),
            ("Builds failed", [m["BuildsFailing"]]),
        ]
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name="cofounder")
        for title, metrics in rows:
            dashboard.add_widgets(cloudwatch.GraphWidget(title=title, left=metrics, width=12))


def _metrics(
    config: Config, services: ServicesStack, data: DataStack
) -> dict[str, cloudwatch.IMetric]:
    balancer = services.api.load_balancer.metrics
    metrics: dict[str, cloudwatch.IMetric] = {
        "Api5xx": balancer.http_code_target(
            elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=FIVE_MINUTES, statistic="Sum"
        ),
        "ApiUnhealthy": services.api.target_group.metrics.unhealthy_host_count(
            period=cdk.Duration.minutes(1), statistic="Maximum"
        ),
        "DatabaseCpu": data.database.metric_cpu_utilization(period=FIVE_MINUTES),
        "DatabaseStorage": data.database.metric_free_storage_space(period=FIVE_MINUTES),
        # cofounder/metrics.py BUILDS_ENDED, put by cofounder/cloudwatch.py: its labels (only
        # `outcome`) are the dimensions, a period's Sum the builds that ended in it.
        "BuildsFailing": cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name="cofounder_builds_ended_total",
            dimensions_map={"outcome": "failed"},
            statistic="Sum",
            period=cdk.Duration.hours(1),
        ),
    }
    for build_id in config.worker_versions:
        # By name (the services stack fixes it): an export would outlive the version.
        metrics[f"WorkerCpu-{build_id}"] = cloudwatch.Metric(
            namespace="AWS/ECS",
            metric_name="CPUUtilization",
            dimensions_map={
                "ClusterName": CLUSTER_NAME,
                "ServiceName": worker_service_name(build_id),
            },
            statistic="Average",
            period=FIVE_MINUTES,
        )
    return metrics


Threshold = tuple[cloudwatch.IMetric, float, cloudwatch.ComparisonOperator]


def _alarms(metrics: dict[str, cloudwatch.IMetric]) -> dict[str, Threshold]:
    above = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
    below = cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD
    alarms: dict[str, Threshold] = {
        "Api5xx": (metrics["Api5xx"], 10, above),
        "ApiUnhealthy": (metrics["ApiUnhealthy"], 1, above),
        "DatabaseCpu": (metrics["DatabaseCpu"], 80, above),
        "DatabaseStorage": (metrics["DatabaseStorage"], 2 * GIB, below),
        "BuildsFailing": (metrics["BuildsFailing"], 5, above),
    }
    for key, metric in metrics.items():
        if key.startswith("WorkerCpu"):
            alarms[key] = (metric, 85, above)
    return alarms
