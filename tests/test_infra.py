"""The AWS deployment (infra/, AWS CDK), synthesized in process and read with
aws_cdk.assertions: what production must hold (private and encrypted data, every secret an
ECS secret, one worker service per worker version, a deploy role only the production
environment of one repository may assume), asserted on the CloudFormation it would deploy.

Synthesis is slow (seconds, in a Node.js child process), so two apps are made once for the
module: Temporal Cloud by API key with two worker versions, and mTLS with one.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match, Template
from pydantic import ValidationError

from api.routes.health import router as health_router
from cofounder.metrics import BUILDS_ENDED
from cofounder.settings import Settings
from infra import names
from infra.app import build_app
from infra.config import from_context
from infra.containers import app_environment

ENV_EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"
# `# CLERK_SECRET_KEY=   # a secret; ...`: a variable whose comment says it is a secret.
SECRET_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=.*#.*\ba secret\b")
TEMPORAL_AUTH_SECRETS = {name for names_ in names.TEMPORAL_SECRETS.values() for name in names_}

# The variables Settings reads (and the test process may have set).
SETTINGS_PREFIXES = (
    "COFOUNDER_",
    "TEMPORAL_",
    "DATABASE_",
    "REDIS_",
    "STRIPE_",
    "GITHUB_",
    "CLERK_",
    "E2B_",
    "ANTHROPIC_",
)
REPO = "acme/cofounder"
API_KEY = {
    "image_tag": "b2c3d4e",
    "worker_versions": "b2c3d4e,a1b2c3d",  # the new version, and one still draining
    "github_repo": REPO,
    "temporal_address": "acme.a1b2c.tmprl.cloud:7233",
    "temporal_namespace": "acme.a1b2c",
    "temporal_auth": "api_key",
    "settings": json.dumps({"GITHUB_APP_ID": "12345", "CLERK_ISSUER": "https://clerk.acme.dev"}),
}
MTLS = {**API_KEY, "image_tag": "f00d", "worker_versions": "f00d", "temporal_auth": "mtls"}
CONTEXTS = {"api_key": API_KEY, "mtls": MTLS}  # by the name of the fixture synthesizing it


def synthesize(context: dict[str, Any]) -> dict[str, Template]:
    app = build_app(context)
    return {stack.node.id: Template.from_stack(stack) for stack in app.node.children}


@pytest.fixture(scope="module")
def api_key() -> dict[str, Template]:
    return synthesize(API_KEY)


@pytest.fixture(scope="module")
def mtls() -> dict[str, Template]:
    return synthesize(MTLS)


def env_example_secrets() -> set[str]:
    """The secret settings .env.example documents (the deployment must carry each)."""
    lines = ENV_EXAMPLE.read_text().splitlines()
    return {m.group(1) for line in lines if (m := SECRET_LINE.match(line.strip()))}


def containers(template: Template) -> list[dict[str, Any]]:
    definitions = template.find_resources("AWS::ECS::TaskDefinition").values()
    return [c for d in definitions for c in d["Properties"]["ContainerDefinitions"]]


def container(template: Template, family: str) -> dict[str, Any]:
    (definition,) = template.find_resources(
        "AWS::ECS::TaskDefinition", {"Properties": {"Family": family}}
    ).values()
    (found,) = definition["Properties"]["ContainerDefinitions"]
    return found


def environment(found: dict[str, Any]) -> dict[str, Any]:
    return {e["Name"]: e["Value"] for e in found["Environment"]}


def secrets(found: dict[str, Any]) -> dict[str, Any]:
    return {s["Name"]: s["ValueFrom"] for s in found["Secrets"]}


def settings_of(
    found: dict[str, Any], monkeypatch: pytest.MonkeyPatch, secret: str = "s3cr3t-value"
) -> Settings:
    """The app's own settings, as this container would read them: the template's values,
    a sample for each value CloudFormation fills in, `secret` for each secret."""
    for key in list(os.environ):
        if key.startswith(SETTINGS_PREFIXES):
            monkeypatch.delenv(key)
    samples = {"DATABASE_HOST": "db.internal", "DATABASE_PORT": "5432"}
    samples["COFOUNDER_ARTIFACTS"] = "s3://artifacts-bucket/artifacts"
    for name, value in environment(found).items():
        monkeypatch.setenv(name, value if isinstance(value, str) else samples[name])
    for name in secrets(found):
        monkeypatch.setenv(name, secret)
    return Settings(_env_file=None)


def test_env_example_names_its_secrets() -> None:
    # The parser itself: if it found nothing, the test below would pass vacuously.
    assert {"STRIPE_SECRET_KEY", "GITHUB_PRIVATE_KEY", "REDIS_URL"} <= env_example_secrets()


@pytest.mark.parametrize("app", ["api_key", "mtls"])
def test_every_secret_setting_is_an_ecs_secret_and_never_plain(
    app: str, request: pytest.FixtureRequest
) -> None:
    templates: dict[str, Template] = request.getfixturevalue(app)
    auth = CONTEXTS[app]["temporal_auth"]
    deployed = env_example_secrets() - TEMPORAL_AUTH_SECRETS - set(names.UNDEPLOYED_SECRETS)
    expected = deployed | set(names.TEMPORAL_SECRETS[auth])
    every_secret = set(names.secret_names("api_key")) | TEMPORAL_AUTH_SECRETS | expected
    found = containers(templates[names.SERVICES_STACK])
    assert len(found) == (4 if app == "api_key" else 3)  # api, the workers, ops
    for each in found:
        assert expected <= secrets(each).keys(), each["Name"]
        assert not every_secret & environment(each).keys(), each["Name"]


@pytest.mark.parametrize("app", ["api_key", "mtls"])
def test_each_secret_comes_from_its_secrets_manager_secret(
    app: str, request: pytest.FixtureRequest
) -> None:
    templates: dict[str, Template] = request.getfixturevalue(app)
    auth = CONTEXTS[app]["temporal_auth"]
    stored = templates[names.SECRETS_STACK].find_resources("AWS::SecretsManager::Secret")
    by_name = {r["Properties"]["Name"]: logical for logical, r in stored.items()}
    in_secrets_stack = (*names.APP_SECRETS, *names.TEMPORAL_SECRETS[auth])
    assert set(by_name) == {f"cofounder/{name}" for name in in_secrets_stack}
    api = secrets(container(templates[names.SERVICES_STACK], "cofounder-api"))
    for name in in_secrets_stack:
        assert by_name[f"cofounder/{name}"] in json.dumps(api[name]), name
        assert "Fn::GetStackOutput" in api[name]  # weak: no export pins a dropped secret
    # REDIS_URL: the data stack's secret made of the cache's token and address.
    data = templates[names.DATA_STACK].find_resources("AWS::SecretsManager::Secret")
    (url,) = (logical for logical, r in data.items() if "rediss://" in json.dumps(r))
    assert url in json.dumps(api[names.REDIS_URL])
    # DATABASE_PASSWORD: the `password` field of the database's generated secret.
    assert json.dumps(api[names.DATABASE_PASSWORD]).endswith('":password::"]]}')


def test_temporal_api_key_or_mtls(api_key: dict[str, Template], mtls: dict[str, Template]) -> None:
    for templates, present, absent in (
        (api_key, {"TEMPORAL_API_KEY"}, {"TEMPORAL_TLS_CLIENT_CERT_DATA"}),
        (
            mtls,
            {"TEMPORAL_TLS_CLIENT_CERT_DATA", "TEMPORAL_TLS_CLIENT_KEY_DATA"},
            {"TEMPORAL_API_KEY"},
        ),
    ):
        for each in containers(templates[names.SERVICES_STACK]):
            assert present <= secrets(each).keys()
            assert not absent & secrets(each).keys()
            assert environment(each)["TEMPORAL_TLS"] == "true"
            assert environment(each)["TEMPORAL_ADDRESS"] == API_KEY["temporal_address"]
            assert environment(each)["TEMPORAL_NAMESPACE"] == API_KEY["temporal_namespace"]


def test_a_self_hosted_temporal_is_plaintext() -> None:
    config = replace(from_context(API_KEY.get), temporal_auth="none")
    data = SimpleNamespace(
        bucket=SimpleNamespace(bucket_name="bucket"),
        database=SimpleNamespace(db_instance_endpoint_address="db", db_instance_endpoint_port="1"),
    )
    env = app_environment(config, data)
    assert "TEMPORAL_TLS" not in env
    assert names.secret_names("none") == (*names.APP_SECRETS, "REDIS_URL", "DATABASE_PASSWORD")


def test_the_database_is_encrypted_private_and_kept(api_key: dict[str, Template]) -> None:
    data = api_key[names.DATA_STACK]
    data.has_resource_properties(
        "AWS::RDS::DBInstance",
        {
            "Engine": "postgres",
            "StorageEncrypted": True,
            "PubliclyAccessible": False,
            "DeletionProtection": True,
            "MasterUserPassword": {
                "Fn::Join": ["", Match.array_with(["{{resolve:secretsmanager:"])]
            },
        },
    )
    data.has_resource("AWS::RDS::DBInstance", {"DeletionPolicy": "Snapshot"})
    subnets = Capture()
    data.has_resource_properties("AWS::RDS::DBSubnetGroup", {"SubnetIds": subnets})
    assert all("privateSubnet" in json.dumps(subnet) for subnet in subnets.as_array())
    data.has_resource_properties(
        "AWS::ElastiCache::ReplicationGroup",
        {"TransitEncryptionEnabled": True, "AtRestEncryptionEnabled": True},
    )


def test_only_the_tasks_reach_the_database_and_the_cache(api_key: dict[str, Template]) -> None:
    ingress = api_key[names.NETWORK_STACK].find_resources("AWS::EC2::SecurityGroupIngress")
    for port in (5432, names.REDIS_PORT):
        rules = [r["Properties"] for r in ingress.values() if r["Properties"]["FromPort"] == port]
        assert len(rules) == 2  # from the API's group and the workers'
        assert all("SourceSecurityGroupId" in rule for rule in rules)


def test_the_bucket_is_private_and_takes_tls_only(api_key: dict[str, Template]) -> None:
    data = api_key[names.DATA_STACK]
    data.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "BucketEncryption": Match.any_value(),
        },
    )
    data.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_one_worker_service_per_worker_version(api_key: dict[str, Template]) -> None:
    services = api_key[names.SERVICES_STACK]
    versions = API_KEY["worker_versions"].split(",")
    services.resource_count_is("AWS::ECS::Service", 1 + len(versions))  # and the API
    for build_id in versions:
        services.has_resource_properties(
            "AWS::ECS::Service", {"ServiceName": f"cofounder-worker-{build_id}"}
        )
        worker = container(services, f"cofounder-worker-{build_id}")
        assert worker["Command"] == ["worker"]  # the entrypoint is `cofounder`
        assert environment(worker)["COFOUNDER_BUILD_ID"] == build_id
        assert environment(worker)["COFOUNDER_DEPLOYMENT_NAME"] == "cofounder"
        assert json.dumps(worker["Image"]).endswith(f'"/cofounder:{build_id}"]]}}')


def test_the_api_is_behind_the_load_balancer_with_its_health_check(
    api_key: dict[str, Template],
) -> None:
    assert names.HEALTH_PATH in {route.path for route in health_router.routes}
    services = api_key[names.SERVICES_STACK]
    services.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": "internet-facing"}
    )
    services.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {"HealthCheckPath": names.HEALTH_PATH, "Port": names.API_PORT, "TargetType": "ip"},
    )
    services.has_resource_properties(
        "AWS::ECS::Service",
        {"LoadBalancers": [{"ContainerName": "api", "ContainerPort": names.API_PORT}]},
    )
    api = container(services, "cofounder-api")
    assert api["Command"] == ["api"]
    assert environment(api)["COFOUNDER_API_HOST"] == "0.0.0.0"


def test_workers_scale_on_cpu_and_on_the_task_backlog(api_key: dict[str, Template]) -> None:
    services = api_key[names.SERVICES_STACK]
    versions = API_KEY["worker_versions"].split(",")
    targets = services.find_resources("AWS::ApplicationAutoScaling::ScalableTarget")
    worker_targets = [t for t in targets if t.startswith("Worker")]
    assert len(worker_targets) == len(versions)
    for target in worker_targets:
        services.has_resource_properties(
            "AWS::ApplicationAutoScaling::ScalingPolicy",
            {
                "ScalingTargetId": {"Ref": target},
                "TargetTrackingScalingPolicyConfiguration": {
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "ECSServiceAverageCPUUtilization"
                    },
                    "TargetValue": Match.any_value(),
                },
            },
        )
        services.has_resource_properties(
            "AWS::ApplicationAutoScaling::ScalingPolicy",
            {"ScalingTargetId": {"Ref": target}, "PolicyType": "StepScaling"},
        )
    worker = environment(container(services, f"cofounder-worker-{versions[0]}"))
    namespace = worker["COFOUNDER_CLOUDWATCH_NAMESPACE"]
    for metric in (
        "temporal_activity_schedule_to_start_latency",
        "temporal_workflow_task_schedule_to_start_latency",
    ):
        alarms = services.find_resources(
            "AWS::CloudWatch::Alarm",
            {
                "Properties": {
                    "Metrics": [{"Expression": f'SELECT MAX({metric}) FROM "{namespace}"'}],
                    "AlarmActions": [{"Ref": Match.string_like_regexp("^Worker.*Policy")}],
                }
            },
        )
        assert len(alarms) == len(versions), metric


def test_task_roles_hold_the_artifacts_and_metrics_only(api_key: dict[str, Template]) -> None:
    services = api_key[names.SERVICES_STACK]
    policies = services.find_resources("AWS::IAM::Policy")
    for logical, policy in policies.items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            for action in [actions] if isinstance(actions, str) else actions:
                assert "*" not in action, (logical, action)
    for role in ("ApiTaskRole", "WorkerTaskRole"):
        (policy,) = (p for logical, p in policies.items() if logical.startswith(role))
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        granted = {
            a
            for s in statements
            for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        }
        assert granted == {
            "s3:GetObject",
            "s3:PutObject",
            "s3:ListBucket",
            "cloudwatch:PutMetricData",
        }
        (metrics,) = (s for s in statements if s["Action"] == "cloudwatch:PutMetricData")
        assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "cofounder"}}
        (objects,) = (s for s in statements if "s3:GetObject" in s["Action"])
        assert json.dumps(objects["Resource"]).endswith('"/artifacts/*"]]}')
    assert not [p for p in policies if p.startswith("OpsTaskRole")]  # the ops task: none


def test_containers_are_read_only_log_to_cloudwatch_and_run_production(
    api_key: dict[str, Template],
) -> None:
    services = api_key[names.SERVICES_STACK]
    for each in containers(services):
        assert each["ReadonlyRootFilesystem"] is True
        assert {m["ContainerPath"] for m in each["MountPoints"]} == {"/tmp", "/data"}
        assert each["LogConfiguration"]["LogDriver"] == "awslogs"
        env = environment(each)
        assert env["COFOUNDER_ENVIRONMENT"] == "production"
        assert env["COFOUNDER_SANDBOX"] == "e2b"
        assert env["COFOUNDER_AUTH"] == "clerk"
        assert env["GITHUB_APP_ID"] == "12345"  # the context's plain settings
        assert json.dumps(env["COFOUNDER_ARTIFACTS"]).startswith('{"Fn::Join": ["", ["s3://"')
        assert {"DATABASE_HOST", "DATABASE_PORT", "DATABASE_NAME", "DATABASE_USER"} <= env.keys()
    for group in services.find_resources("AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] > 0


def test_the_app_takes_the_containers_settings_for_production(
    api_key: dict[str, Template], monkeypatch: pytest.MonkeyPatch
) -> None:
    for found in containers(api_key[names.SERVICES_STACK]):
        settings = settings_of(found, monkeypatch)  # its checks refuse an unworkable production
        assert settings.environment == "production"
        assert settings.resolved_database_url.startswith("postgresql+asyncpg://cofounder:")


def test_until_a_secret_is_set_the_app_refuses_to_start(
    api_key: dict[str, Template], monkeypatch: pytest.MonkeyPatch
) -> None:
    (secret, *_) = (
        api_key[names.SECRETS_STACK].find_resources("AWS::SecretsManager::Secret").values()
    )
    placeholder = secret["Properties"]["SecretString"]
    api = container(api_key[names.SERVICES_STACK], "cofounder-api")
    with pytest.raises(ValidationError, match="is a placeholder"):
        settings_of(api, monkeypatch, secret=placeholder)


def test_the_ops_task_runs_the_new_image(api_key: dict[str, Template]) -> None:
    services = api_key[names.SERVICES_STACK]
    ops = container(services, names.OPS_FAMILY)
    assert ops["Name"] == "ops"
    assert environment(ops)["COFOUNDER_BUILD_ID"] == API_KEY["image_tag"]
    for output in ("ClusterName", "OpsTaskFamily", "OpsSubnets", "OpsSecurityGroup", "ApiUrl"):
        services.has_output(output, {})
    services.has_resource_properties("AWS::ECS::Cluster", {"ClusterName": "cofounder"})


def test_the_registry_scans_and_keeps_recent_images(api_key: dict[str, Template]) -> None:
    api_key[names.REGISTRY_STACK].has_resource_properties(
        "AWS::ECR::Repository",
        {
            "RepositoryName": "cofounder",
            "ImageScanningConfiguration": {"ScanOnPush": True},
            "LifecyclePolicy": {"LifecyclePolicyText": Match.string_like_regexp("countNumber")},
        },
    )


def test_only_the_repository_production_environment_assumes_the_deploy_role(
    api_key: dict[str, Template],
) -> None:
    ci = api_key[names.CI_STACK]
    ci.has_resource_properties(
        "AWS::IAM::OIDCProvider",
        {
            "Url": "https://token.actions.githubusercontent.com",
            "ClientIdList": ["sts.amazonaws.com"],
        },
    )
    trust = Capture()
    ci.has_resource_properties("AWS::IAM::Role", {"AssumeRolePolicyDocument": trust})
    (statement,) = trust.as_object()["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": f"repo:{REPO}:environment:production",
        }
    }
    ci.has_output("DeployRoleArn", {})
    (policy,) = ci.find_resources("AWS::IAM::Policy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (pass_role,) = (s for s in statements if s["Action"] == "iam:PassRole")
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }
    (assume,) = (s for s in statements if "sts:AssumeRole" in s["Action"])
    assert json.dumps(assume["Resource"]).endswith(':role/cdk-*"]]}')


def test_alarms_and_a_dashboard(api_key: dict[str, Template]) -> None:
    observability = api_key[names.OBSERVABILITY_STACK]
    observability.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    for metric, extra in (
        ("HTTPCode_Target_5XX_Count", {}),
        ("UnHealthyHostCount", {}),
        ("CPUUtilization", {"Namespace": "AWS/RDS"}),
        ("FreeStorageSpace", {}),
        (
            f"{BUILDS_ENDED._name}_total",  # what cofounder/cloudwatch.py puts for a counter
            {"Namespace": "cofounder", "Dimensions": [{"Name": "outcome", "Value": "failed"}]},
        ),
    ):
        observability.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {"MetricName": metric, "AlarmActions": [Match.any_value()], **extra},
        )
    for build_id in API_KEY["worker_versions"].split(","):
        observability.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "Namespace": "AWS/ECS",
                "MetricName": "CPUUtilization",
                "Dimensions": Match.array_with(
                    [{"Name": "ServiceName", "Value": f"cofounder-worker-{build_id}"}]
                ),
            },
        )


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({"github_repo": None}, "missing context: github_repo"),
        ({"worker_versions": "a1b2c3d"}, "must include image_tag"),
        ({"temporal_auth": "password"}, "temporal_auth must be"),
        ({"image_tag": "v1.2", "worker_versions": "v1.2"}, "not a build id"),
        ({"settings": '{"STRIPE_SECRET_KEY": "sk_live_1"}'}, "may not hold secrets"),
    ],
)
def test_a_bad_context_is_refused_by_name(change: dict[str, Any], refusal: str) -> None:
    context = {**API_KEY, **change}
    with pytest.raises(ValueError, match=refusal):
        from_context(context.get)
