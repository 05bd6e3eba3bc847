"""The deploy files: Dockerfile, docker-compose.yml, the GitHub workflows and deploy/.

No Docker engine runs here, so nothing is built or started: the files are linted (hadolint,
actionlint, shellcheck, the compose spec's JSON schema, all from PyPI wheels in the test
extra) and checked against the code they run (the CLI's commands, the settings, the health
route), and the scripts under deploy/ are run against a real Temporal dev server or a stubbed
AWS API.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.stub import ANY, Stubber
from pydantic import AliasChoices, SecretStr
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from api.dashboard.assets import HTMX
from cofounder.cli import app
from cofounder.logging import SECRET_SHAPES
from cofounder.settings import Settings
from cofounder.temporal import SEARCH_ATTRIBUTE_KEYS, temporal_binary
from deploy import ecs_task

ROOT = Path(__file__).parent.parent
BIN = Path(sys.executable).parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
DEPLOY = ROOT / ".github" / "workflows" / "deploy.yml"
PACKAGES = ("cofounder", "workflows", "activities", "api")
# AWS access keys besides the vendors' secret shapes the logs mask: OIDC needs none.
SECRET_VALUE = re.compile(rf"{SECRET_SHAPES.pattern}|\b(?:AKIA|ASIA)[0-9A-Z]{{16}}\b")
SECRET_NAME = re.compile(r"PASSWORD|PWD|SECRET|TOKEN|API_KEY|PRIVATE_KEY|ACCESS_KEY")


def lint(*command: str | Path) -> None:
    """Run a linter; any finding fails with its report."""
    done = subprocess.run([str(part) for part in command], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())  # merge keys (<<) resolved
    return loaded


def compose_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = load(COMPOSE)["services"]
    return services


def app_services() -> dict[str, dict[str, Any]]:
    """The services that run this project's image."""
    return {name: s for name, s in compose_services().items() if "build" in s}


def setting_variables() -> dict[str, str]:
    """Each environment variable Settings reads, and the field it sets."""
    variables = {}
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        variable = alias.choices[0] if isinstance(alias, AliasChoices) else f"COFOUNDER_{name}"
        variables[str(variable).upper()] = name
    return variables


def secret_variables() -> set[str]:
    """The environment variables of the settings that hold secrets."""
    return {
        variable
        for variable, name in setting_variables().items()
        if SecretStr in getattr(Settings.model_fields[name].annotation, "__args__", ())
    }


# --- linters ---------------------------------------------------------------------------------


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_workflow_passes_actionlint(workflow: Path) -> None:
    lint(BIN / "actionlint", "-no-color", "-shellcheck", BIN / "shellcheck", workflow)


def test_dockerfile_passes_hadolint() -> None:
    lint(BIN / "hadolint", "--no-color", DOCKERFILE)


def test_deploy_scripts_pass_shellcheck() -> None:
    lint(BIN / "shellcheck", *sorted((ROOT / "deploy").rglob("*.sh")))


def test_compose_file_matches_the_compose_spec() -> None:
    lint(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", COMPOSE)


def test_both_workflows_exist() -> None:
    assert [path.name for path in WORKFLOWS] == ["deploy.yml", "test.yml"]


# --- the Dockerfile --------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = (line.strip() for line in text.splitlines())
    return [
        (line.split(maxsplit=1)[0].upper(), line.split(maxsplit=1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_image_runs_cofounder_as_a_fixed_non_root_user() -> None:
    instructions = dockerfile_instructions()
    last = max(i for i, (kind, _) in enumerate(instructions) if kind == "FROM")
    final = instructions[last:]
    assert ("ENTRYPOINT", '["cofounder"]') in final and ("CMD", '["api"]') in final
    users = [value for kind, value in final if kind == "USER"]
    assert users and re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[-1]), users
    # The venv's interpreter is a link to the base image's: the builder must share it.
    bases = [value.split()[0] for kind, value in instructions if kind == "FROM"]
    assert bases[-1] == "${PYTHON_IMAGE}" and bases.count("${PYTHON_IMAGE}") == 2, bases
    runs = " ".join(value for kind, value in final if kind == "RUN")
    assert "git" in runs.split()
    assert not {"gcc", "build-essential", "bubblewrap", "nodejs", "npm"} & set(runs.split())


def test_image_declares_the_scratch_volumes_the_ecs_tasks_mount() -> None:
    # On a read-only root filesystem only declared volumes get the image's (non-root) owner.
    from infra.containers import SCRATCH

    volumes = [json.loads(value) for kind, value in dockerfile_instructions() if kind == "VOLUME"]
    assert set(SCRATCH.values()) <= {path for declared in volumes for path in declared}


def test_image_puts_htmx_where_the_dashboard_serves_it_from() -> None:
    copies = [v for kind, v in dockerfile_instructions() if kind == "COPY" and "htmx" in v]
    assert len(copies) == 1
    destination = copies[0].split()[-1]
    python = re.search(r"python:(\d+\.\d+)", DOCKERFILE.read_text())
    assert python is not None
    site = f"/opt/venv/lib/python{python.group(1)}/site-packages/"
    assert destination == site + HTMX.relative_to(ROOT).as_posix()


def test_the_installed_project_carries_every_file_the_app_reads(tmp_path: Path) -> None:
    """The image installs the project as a wheel (not the source tree): every template,
    static file and migration must be in it. htmx comes from its own build stage."""
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "node_modules")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, source / package, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "worker.py"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path / "out", source],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "out").glob("*.whl")
    carried = set(zipfile.ZipFile(wheel).namelist())
    needed = {
        path.relative_to(source).as_posix()
        for package in PACKAGES
        for path in (source / package).rglob("*")
        if path.is_file() and path.suffix != ".pyc"
    }
    assert needed - carried == set()


# --- docker-compose.yml ----------------------------------------------------------------------


def test_workers_scale() -> None:
    worker = compose_services()["worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert all("container_name" not in s for s in compose_services().values())


def test_every_service_is_health_checked_or_a_one_shot() -> None:
    services = compose_services()
    awaited = {
        name
        for s in services.values()
        for name, need in s.get("depends_on", {}).items()
        if need["condition"] == "service_completed_successfully"
    }
    for name, service in services.items():
        one_shot = service.get("restart") == "no" and name in awaited
        assert "healthcheck" in service or one_shot, name
        assert not (one_shot and "healthcheck" in service), name


def test_app_starts_after_migrations_and_temporal() -> None:
    services = compose_services()
    for name in ("api", "worker"):
        needs = {dep: need["condition"] for dep, need in services[name]["depends_on"].items()}
        assert needs["migrate"] == "service_completed_successfully", name
        assert needs["temporal"] == "service_healthy", name
        assert needs["temporal-setup"] == "service_completed_successfully", name
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["depends_on"]["postgresql"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])


def test_compose_references_resolve() -> None:
    compose = load(COMPOSE)
    services = compose["services"]
    for name, service in services.items():
        assert set(service.get("depends_on", {})) <= set(services), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source}"
            else:
                assert source in compose["volumes"], f"{name}: {source}"
        assert service.get("env_file", ".env") == ".env", name


def test_compose_sets_only_real_settings() -> None:
    variables = setting_variables()
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, re.MULTILINE))
    for name, service in app_services().items():
        environment = service["environment"]
        unknown = set(environment) - set(variables) - documented
        assert unknown == set(), f"{name} sets variables the app does not read: {unknown}"
        # Valid together too, a value from .env standing for each reference to it.
        told = {
            variables[k]: "from-dotenv" if "${" in str(v) else str(v)
            for k, v in environment.items()
            if k in variables
        }
        Settings(_env_file=None, **told)  # type: ignore[call-arg]


def test_compose_builds_run_in_e2b() -> None:
    worker = compose_services()["worker"]["environment"]
    assert worker["COFOUNDER_SANDBOX"] == "e2b"
    assert worker["E2B_API_KEY"].startswith("${E2B_API_KEY:?")


# --- secrets ---------------------------------------------------------------------------------


def secret_findings(path: Path) -> list[str]:
    """Values that are secrets written out, rather than references to them."""
    secret_settings = secret_variables()
    found = [
        f"a secret's shape: {m.group(0)[:12]}…" for m in SECRET_VALUE.finditer(path.read_text())
    ]
    for key, value in _environment_items(load(path)):
        if not (key in secret_settings or SECRET_NAME.search(key)):
            continue
        value = str(value)
        reference = re.fullmatch(r"\$\{[A-Z0-9_]+(?::?[-?][^}]*)?\}", value) or re.fullmatch(
            r"\$\{\{\s*(secrets|vars)\.[A-Za-z0-9_]+\s*\}\}", value
        )
        credential_free_url = re.fullmatch(r"[a-z]+://[^:@/\s]+(:\d+)?(/\S*)?", value)
        if not (reference or credential_free_url):
            found.append(f"{key}={value}")
    return found


def _environment_items(node: Any) -> list[tuple[str, Any]]:
    """Every (name, value) under an `environment:` or `env:` mapping, at any depth."""
    items: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("environment", "env") and isinstance(value, dict):
                items += [(str(k), v) for k, v in value.items()]
            items += _environment_items(value)
    elif isinstance(node, list):
        for value in node:
            items += _environment_items(value)
    return items


@pytest.mark.parametrize("path", [COMPOSE, *WORKFLOWS], ids=lambda path: path.name)
def test_no_secret_is_written_in(path: Path) -> None:
    assert secret_findings(path) == []


def test_the_secret_check_finds_a_written_secret(tmp_path: Path) -> None:
    leaky = tmp_path / "compose.yml"
    text = COMPOSE.read_text().replace(
        "E2B_API_KEY: ${E2B_API_KEY:?set E2B_API_KEY in .env (builds run in E2B sandboxes)}",
        "E2B_API_KEY: e2b_0123456789abcdef",
    )
    leaky.write_text(text.replace("REDIS_URL: redis://redis", "REDIS_URL: redis://:hunter2@redis"))
    assert len(secret_findings(leaky)) == 3  # the shape, and two secret settings' values


# --- the commands the files run ----------------------------------------------------------------


def commands_run() -> dict[str, list[list[str]]]:
    """Each file's `cofounder` command lines (the words after the entrypoint)."""
    image = [value for kind, value in dockerfile_instructions() if kind == "CMD"]
    deploy_runs = "\n".join(
        step.get("run", "") for job in load(DEPLOY)["jobs"].values() for step in job["steps"]
    ).replace("\\\n", " ")
    return {
        "Dockerfile": [yaml.safe_load(value) for value in image],
        "docker-compose.yml": [s["command"] for s in app_services().values()],
        "deploy.yml": [
            shlex.split(args)
            for args in re.findall(r"ecs_task\.py run [^\n]*? -- ([^\n|;&]+)", deploy_runs)
        ],
    }


def test_every_cofounder_command_used_exists() -> None:
    runner = CliRunner()
    used = commands_run()
    assert sorted(map(tuple, used["deploy.yml"])) == [
        ("db", "upgrade"),
        ("deployment", "live"),
        ("deployment", "set-current", "$IMAGE_TAG"),
        ("replay", "--recent", "$REPLAY_RECENT"),
    ]
    for where, lines in used.items():
        for line in lines:
            # --help after the whole line: an unknown command or option still fails to parse.
            result = runner.invoke(app, [*line, "--help"])
            assert result.exit_code == 0 and "Usage:" in result.output, (where, line)


def test_the_command_check_fails_on_an_unknown_command() -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["replay", "--latest", "5", "--help"]).exit_code != 0
    assert runner.invoke(app, ["deployment", "promote", "--help"]).exit_code != 0


# --- the workflows ---------------------------------------------------------------------------


def test_deploy_runs_its_gates_before_it_changes_anything() -> None:
    workflow = load(DEPLOY)
    on = workflow[True]  # YAML 1.1 reads the key `on` as true
    # Only after the whole suite passed on main (or by hand).
    assert on["workflow_run"] == {
        "workflows": ["test"],
        "types": ["completed"],
        "branches": ["main"],
    }
    assert "workflow_dispatch" in on and "push" not in on
    assert workflow["permissions"] == {"id-token": "write", "contents": "read"}
    assert {"ECS_CLUSTER", "OPS_TASK_FAMILY", "OPS_CONTAINER", "SERVICES_STACK"} <= set(
        workflow["env"]
    )
    (job,) = workflow["jobs"].values()
    assert job["environment"] == "production"
    assert "workflow_run.conclusion == 'success'" in job["if"]
    steps = [step.get("uses", "") + step.get("run", "") for step in job["steps"]]

    def first(text: str) -> int:
        return next(i for i, step in enumerate(steps) if text in step)

    credentials = job["steps"][first("configure-aws-credentials")]["with"]
    assert credentials["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    assert not {"aws-access-key-id", "aws-secret-access-key"} & set(credentials)
    order = [
        first("pytest tests/test_replay.py"),
        first("configure-aws-credentials"),
        first("build-push-action"),
        first("ecs_task.py register"),
        first("-- replay --recent"),
        first("-- db upgrade"),
        first("-- deployment live"),
        first("cdk@2 deploy"),
        first("wait-services"),
        first("-- deployment set-current"),
    ]
    assert order == sorted(order), order
    deploy_step = steps[first("cdk@2 deploy")]
    assert '-c "image_tag=$IMAGE_TAG"' in deploy_step and "worker_versions=" in deploy_step


def test_test_workflow_gives_scripts_test_its_database() -> None:
    (job,) = load(WORKFLOWS[1])["jobs"].values()
    assert "postgres" in job["services"]
    assert job["env"]["TEST_DATABASE_URL"].startswith("postgresql://postgres@postgres:5432/")
    assert any(step.get("run", "").startswith("scripts/test") for step in job["steps"])


# --- deploy/temporal/setup.sh against a real server ---------------------------------------------


async def test_temporal_setup_registers_the_search_attributes(env: WorkflowEnvironment) -> None:
    namespace = f"setup-{uuid.uuid4().hex[:8]}"
    environ = {
        **os.environ,
        "PATH": f"{temporal_binary().parent}:{os.environ['PATH']}",
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": namespace,
    }
    script = ["sh", str(ROOT / "deploy" / "temporal" / "setup.sh")]
    first = subprocess.run(script, env=environ, capture_output=True, text=True, timeout=150)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"creating namespace {namespace}" in first.stdout
    listed = await env.client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    keyword = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    for key in SEARCH_ATTRIBUTE_KEYS:
        assert listed.custom_attributes[key.name] == keyword
    again = subprocess.run(script, env=environ, capture_output=True, text=True, timeout=150)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "creating" not in again.stdout and "registering" not in again.stdout


# --- deploy/ecs_task.py against a stubbed AWS API ------------------------------------------------

FAMILY_ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/cofounder-ops"
TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/cofounder/0123abcd"
LOGGED = {
    "logDriver": "awslogs",
    "options": {"awslogs-group": "/cofounder/ops", "awslogs-stream-prefix": "ops"},
}


def ops_definition() -> dict[str, Any]:
    return {
        "taskDefinitionArn": f"{FAMILY_ARN}:7",
        "family": "cofounder-ops",
        "revision": 7,
        "status": "ACTIVE",
        "registeredAt": "2026-11-01T00:00:00Z",
        "compatibilities": ["FARGATE"],
        "requiresAttributes": [{"name": "ecs.capability.execution-role-awslogs"}],
        "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
        "containerDefinitions": [
            {"name": "ops", "image": "repo/cofounder:old", "logConfiguration": LOGGED},
            {"name": "sidecar", "image": "repo/sidecar:1"},
        ],
    }


def clients() -> tuple[Any, Any, Any]:
    import boto3

    region = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
    return tuple(boto3.client(name, **region) for name in ("ecs", "logs", "cloudformation"))


def test_register_replaces_only_the_app_image() -> None:
    ecs, _, _ = clients()
    with Stubber(ecs) as stub:
        stub.add_response(
            "describe_task_definition",
            {"taskDefinition": ops_definition()},
            {"taskDefinition": "cofounder-ops"},
        )
        expected = {
            "family": "cofounder-ops",
            "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
            "containerDefinitions": [
                {"name": "ops", "image": "repo/cofounder:new", "logConfiguration": LOGGED},
                {"name": "sidecar", "image": "repo/sidecar:1"},
            ],
        }
        stub.add_response(
            "register_task_definition",
            {"taskDefinition": {"taskDefinitionArn": f"{FAMILY_ARN}:8"}},
            expected,
        )
        arn = ecs_task.register(ecs, "cofounder-ops", "ops", "repo/cofounder:new")
        stub.assert_no_pending_responses()
    assert arn == f"{FAMILY_ARN}:8"
    with Stubber(ecs) as stub:
        stub.add_response("describe_task_definition", {"taskDefinition": ops_definition()})
        with pytest.raises(ecs_task.DeployError, match="no container 'web'"):
            ecs_task.register(ecs, "cofounder-ops", "web", "repo/cofounder:new")


def stub_task(ecs: Stubber, logs: Stubber, exit_code: int | None, lines: list[str]) -> None:
    """run-task, one poll while it runs, the stop, then its log."""
    ecs.add_response(
        "run_task",
        {"tasks": [{"taskArn": TASK_ARN}], "failures": []},
        {
            "cluster": "cofounder",
            "taskDefinition": f"{FAMILY_ARN}:8",
            "launchType": "FARGATE",
            "networkConfiguration": ANY,
            "overrides": {"containerOverrides": [{"name": "ops", "command": ANY}]},
            "startedBy": "deploy-workflow",
            "count": 1,
        },
    )
    running = {"taskArn": TASK_ARN, "lastStatus": "RUNNING", "containers": []}
    ecs.add_response("describe_tasks", {"tasks": [running], "failures": []})
    container: dict[str, Any] = {"name": "ops"}
    if exit_code is not None:
        container["exitCode"] = exit_code
    else:
        container["reason"] = "CannotPullContainerError: not found"
    stopped = {
        "taskArn": TASK_ARN,
        "lastStatus": "STOPPED",
        "stoppedReason": "Essential container in task exited",
        "containers": [container],
    }
    ecs.add_response("describe_tasks", {"tasks": [stopped], "failures": []})
    ecs.add_response("describe_task_definition", {"taskDefinition": ops_definition()})
    stream = {"logGroupName": "/cofounder/ops", "logStreamName": "ops/ops/0123abcd"}
    events = [{"timestamp": 1, "message": line, "ingestionTime": 1} for line in lines]
    page = {"events": events, "nextForwardToken": "f/1", "nextBackwardToken": "b/1"}
    logs.add_response("get_log_events", page, {**stream, "startFromHead": True})
    end = {"events": [], "nextForwardToken": "f/1", "nextBackwardToken": "b/1"}
    logs.add_response("get_log_events", end, {**stream, "startFromHead": True, "nextToken": "f/1"})


def run_stubbed(exit_code: int | None, lines: list[str]) -> ecs_task.TaskRun:
    ecs, logs, _ = clients()
    with Stubber(ecs) as ecs_stub, Stubber(logs) as logs_stub:
        stub_task(ecs_stub, logs_stub, exit_code, lines)
        ran = ecs_task.run(
            ecs,
            logs,
            cluster="cofounder",
            task_definition=f"{FAMILY_ARN}:8",
            container="ops",
            command=["deployment", "live"],
            network=ecs_task.Network(["subnet-1"], ["sg-1"]),
            timeout=60,
            poll=0,
        )
        ecs_stub.assert_no_pending_responses()
        logs_stub.assert_no_pending_responses()
    return ran


def test_run_waits_for_the_task_and_reads_its_log() -> None:
    lines = ['{"event": "connected", "level": "info"}', "abc123", "def456"]
    ran = run_stubbed(0, lines)
    assert (ran.exit_code, ran.lines) == (0, lines)
    assert ecs_task.worker_versions(ran.lines, "fff999") == ["abc123", "def456", "fff999"]


def test_run_reports_a_task_that_failed_or_never_ran() -> None:
    assert run_stubbed(3, ["replay failed: build-x: nondeterminism"]).exit_code == 3
    never = run_stubbed(None, [])
    assert never.exit_code is None and "CannotPullContainerError" in never.reason


def test_run_step_fails_the_deploy_unless_the_command_exited_0(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outcomes = iter([ecs_task.TaskRun(0, "", ["abc123"]), ecs_task.TaskRun(1, "exited", ["no"])])
    monkeypatch.setattr(ecs_task, "run", lambda *args, **kwargs: next(outcomes))
    monkeypatch.setattr(ecs_task.boto3, "client", lambda *args, **kwargs: None)
    network = ["--subnets", "subnet-1", "--security-groups", "sg-1"]
    out = tmp_path / "live.txt"
    argv = ["run", "--task-definition", "x", *network, "--output", str(out), "--"]
    assert ecs_task.main([*argv, "deployment", "live"]) == 0
    assert out.read_text() == "abc123\n"
    assert ecs_task.main([*argv, "db", "upgrade"]) == 1
    assert "cofounder db upgrade exited 1: exited" in capsys.readouterr().err


def test_tasks_run_in_the_network_the_services_stack_names() -> None:
    _, _, cloudformation = clients()
    outputs = [
        {"OutputKey": "OpsSubnets", "OutputValue": "subnet-1,subnet-2"},
        {"OutputKey": "OpsSecurityGroup", "OutputValue": "sg-1"},
    ]
    stack = {"StackName": "CofounderServices", "StackStatus": "UPDATE_COMPLETE"}
    created = {"CreationTime": "2026-11-01T00:00:00Z"}
    with Stubber(cloudformation) as stub:
        stub.add_response(
            "describe_stacks",
            {"Stacks": [{**stack, **created, "Outputs": outputs}]},
            {"StackName": "CofounderServices"},
        )
        stub.add_response("describe_stacks", {"Stacks": [{**stack, **created}]})
        network = ecs_task.stack_network(cloudformation, "CofounderServices")
        assert (network.subnets, network.security_groups) == (["subnet-1", "subnet-2"], ["sg-1"])
        with pytest.raises(ecs_task.DeployError, match="no OpsSubnets"):
            ecs_task.stack_network(cloudformation, "CofounderServices")


def test_worker_versions_refuse_what_is_not_a_build_id() -> None:
    assert ecs_task.worker_versions(["", "abc", "abc"], "abc") == ["abc"]
    with pytest.raises(ecs_task.DeployError, match="not a build id"):
        ecs_task.worker_versions(["Traceback (most recent call last):"], "abc")
