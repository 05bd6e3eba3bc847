"""One-off ECS tasks for the deploy workflow (.github/workflows/deploy.yml).

    python deploy/ecs_task.py register --image IMAGE        # prints the new revision's ARN
    python deploy/ecs_task.py run --task-definition ARN [--output FILE] -- COMMAND...
    python deploy/ecs_task.py worker-versions --live FILE --new BUILD_ID
    python deploy/ecs_task.py wait-services

`register` copies the ops task family's latest revision with the ops container's image
replaced (everything else stays as the infra stack defined it); `run` runs `cofounder
COMMAND...` once in that container, in the network the services stack names in its outputs
(OpsSubnets, OpsSecurityGroup), waits for it to stop, prints its log and fails unless it
exited 0. Names default to infra/names.py's and can be set in the environment (ECS_CLUSTER,
OPS_TASK_FAMILY, OPS_CONTAINER, SERVICES_STACK, OPS_SUBNETS, OPS_SECURITY_GROUPS); AWS
credentials and region come from boto3's chain (the workflow's OIDC role).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import boto3

# A worker version's build id (the image tag: a git sha), as infra/config.py takes it; anything
# else in `cofounder deployment live`'s output is a log record or a surprise, and a surprise
# stops the deploy.
BUILD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
# Log events reach CloudWatch shortly after the task stops.
LOG_PATIENCE = 30.0


class DeployError(RuntimeError):
    """The step cannot go on; the message says why."""


@dataclass
class Network:
    subnets: list[str]
    security_groups: list[str]
    launch_type: str = "FARGATE"

    def configuration(self) -> dict[str, Any]:
        return {
            "awsvpcConfiguration": {
                "subnets": self.subnets,
                "securityGroups": self.security_groups,
                "assignPublicIp": "DISABLED",
            }
        }


@dataclass
class TaskRun:
    exit_code: int | None
    reason: str
    lines: list[str] = field(default_factory=list)


def register(ecs: Any, family: str, container: str, image: str) -> str:
    """Register `family`'s latest revision again with `container` running `image`; its ARN.
    Tags are not copied: registering with tags needs ecs:TagResource, which the deploy role
    (infra/ci.py) does not have."""
    definition = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
    names = [c["name"] for c in definition["containerDefinitions"]]
    if container not in names:
        raise DeployError(f"task definition {family} has no container {container!r}: {names}")
    for c in definition["containerDefinitions"]:
        if c["name"] == container:
            c["image"] = image
    # What describe answers beyond what register takes (revision, status, ...) is dropped.
    accepted = ecs.meta.service_model.operation_model("RegisterTaskDefinition").input_shape
    new = {k: v for k, v in definition.items() if k in accepted.members}
    arn: str = ecs.register_task_definition(**new)["taskDefinition"]["taskDefinitionArn"]
    return arn


def stack_network(cloudformation: Any, stack: str) -> Network:
    """The one-off tasks' network, as the services stack's outputs name it."""
    described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    if "OpsSubnets" not in outputs or "OpsSecurityGroup" not in outputs:
        raise DeployError(f"stack {stack} has no OpsSubnets and OpsSecurityGroup outputs")
    return Network(_split(outputs["OpsSubnets"]), _split(outputs["OpsSecurityGroup"]))


def run(
    ecs: Any,
    logs: Any,
    *,
    cluster: str,
    task_definition: str,
    container: str,
    command: list[str],
    network: Network,
    timeout: float,
    poll: float = 10.0,
) -> TaskRun:
    """Run `command` once in `container` of `task_definition`; wait for it to stop."""
    started = ecs.run_task(
        cluster=cluster,
        taskDefinition=task_definition,
        launchType=network.launch_type,
        networkConfiguration=network.configuration(),
        overrides={"containerOverrides": [{"name": container, "command": command}]},
        startedBy="deploy-workflow",
        count=1,
    )
    if not started.get("tasks"):
        raise DeployError(f"the task did not start: {started.get('failures')}")
    task_arn: str = started["tasks"][0]["taskArn"]
    say(f"task {task_arn}: cofounder {' '.join(command)}")
    task = _wait_stopped(ecs, cluster, task_arn, timeout, poll)
    ran: dict[str, Any] = next(
        (c for c in task.get("containers", []) if c["name"] == container), {}
    )
    reason = "; ".join(filter(None, [task.get("stoppedReason"), ran.get("reason")]))
    lines = task_logs(ecs, logs, task_definition, container, task_arn)
    return TaskRun(exit_code=ran.get("exitCode"), reason=reason, lines=lines)


def _wait_stopped(
    ecs: Any, cluster: str, task_arn: str, timeout: float, poll: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task: dict[str, Any] = ecs.describe_tasks(cluster=cluster, tasks=[task_arn])["tasks"][0]
        if task["lastStatus"] == "STOPPED":
            return task
        if time.monotonic() > deadline:
            ecs.stop_task(cluster=cluster, task=task_arn, reason="deploy: timed out")
            raise DeployError(f"task {task_arn} still {task['lastStatus']} after {timeout:.0f} s")
        time.sleep(poll)


def task_logs(
    ecs: Any, logs: Any, task_definition: str, container: str, task_arn: str
) -> list[str]:
    """The container's log lines (awslogs), oldest first; [] when it logs elsewhere."""
    definition = ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
    spec = next(c for c in definition["containerDefinitions"] if c["name"] == container)
    config = spec.get("logConfiguration") or {}
    options = config.get("options") or {}
    if config.get("logDriver") != "awslogs" or "awslogs-stream-prefix" not in options:
        return []
    stream = f"{options['awslogs-stream-prefix']}/{container}/{task_arn.rsplit('/', 1)[-1]}"
    return _read_stream(logs, options["awslogs-group"], stream)


def _read_stream(logs: Any, group: str, stream: str, patience: float = LOG_PATIENCE) -> list[str]:
    deadline = time.monotonic() + patience
    request: dict[str, Any] = {"logGroupName": group, "logStreamName": stream}
    lines: list[str] = []
    while True:
        try:
            page = logs.get_log_events(startFromHead=True, **request)
        except logs.exceptions.ResourceNotFoundException:
            if time.monotonic() > deadline:
                return lines  # the container never wrote a line
            time.sleep(2)
            continue
        lines += [event["message"] for event in page["events"]]
        if page["nextForwardToken"] == request.get("nextToken"):
            return lines
        request["nextToken"] = page["nextForwardToken"]


def worker_versions(lines: list[str], new: str) -> list[str]:
    """The build ids whose workers must keep running (`cofounder deployment live`'s lines)
    with the new one, in order and once each."""
    found = []
    for line in (line.strip() for line in lines):
        if not line or line.startswith("{"):
            continue  # a structured log record (stderr shares the task's log)
        if not BUILD_ID.fullmatch(line):
            raise DeployError(f"not a build id in `deployment live`'s output: {line!r}")
        found.append(line)
    return list(dict.fromkeys([*found, new]))


def wait_services(ecs: Any, cluster: str) -> list[str]:
    """Wait until every service of `cluster` runs its desired tasks of its latest revision."""
    pages = ecs.get_paginator("list_services").paginate(cluster=cluster)
    services = [arn for page in pages for arn in page["serviceArns"]]
    waiter = ecs.get_waiter("services_stable")
    for start in range(0, len(services), 10):  # the waiter takes 10 services at a time
        waiter.wait(
            cluster=cluster,
            services=services[start : start + 10],
            WaiterConfig={"Delay": 15, "MaxAttempts": 120},
        )
    return services


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.step == "register":
            say(register(boto3.client("ecs"), args.family, args.container, args.image))
        elif args.step == "run":
            return _run(boto3.client("ecs"), args)
        elif args.step == "worker-versions":
            lines = Path(args.live).read_text().splitlines()
            say(",".join(worker_versions(lines, args.new)))
        else:
            for service in wait_services(boto3.client("ecs"), args.cluster):
                say(f"stable: {service}")
    except DeployError as err:
        say(f"error: {err}", sys.stderr)
        return 1
    return 0


def _run(ecs: Any, args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise DeployError("no command to run")
    if args.subnets and args.security_groups:
        network = Network(_split(args.subnets), _split(args.security_groups))
    else:
        network = stack_network(boto3.client("cloudformation"), args.stack)
    network.launch_type = args.launch_type
    ran = run(
        ecs,
        boto3.client("logs"),
        cluster=args.cluster,
        task_definition=args.task_definition,
        container=args.container,
        command=command,
        network=network,
        timeout=args.timeout,
    )
    say(f"::group::log of cofounder {' '.join(command)}")
    say("\n".join(ran.lines))
    say("::endgroup::")
    if args.output:
        Path(args.output).write_text("".join(f"{line}\n" for line in ran.lines))
    if ran.exit_code != 0:
        raise DeployError(f"cofounder {' '.join(command)} exited {ran.exit_code}: {ran.reason}")
    return 0


def say(text: str, stream: TextIO = sys.stdout) -> None:
    """A line for the workflow's log (this is a command-line program)."""
    stream.write(f"{text}\n")
    stream.flush()


def _split(names: str) -> list[str]:
    return [name.strip() for name in names.split(",") if name.strip()]


def _parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cluster", default=env("ECS_CLUSTER", "cofounder"))
    parser.add_argument("--family", default=env("OPS_TASK_FAMILY", "cofounder-ops"))
    parser.add_argument("--container", default=env("OPS_CONTAINER", "ops"))
    steps = parser.add_subparsers(dest="step", required=True)
    steps.add_parser("register").add_argument("--image", required=True)
    run_step = steps.add_parser("run")
    run_step.add_argument("--task-definition", required=True)
    run_step.add_argument("--stack", default=env("SERVICES_STACK", "CofounderServices"))
    # Unset: the services stack's outputs say.
    run_step.add_argument("--subnets", default=env("OPS_SUBNETS", ""))
    run_step.add_argument("--security-groups", default=env("OPS_SECURITY_GROUPS", ""))
    run_step.add_argument("--launch-type", default=env("OPS_LAUNCH_TYPE", "FARGATE"))
    run_step.add_argument("--timeout", type=float, default=float(env("OPS_TASK_TIMEOUT", "1800")))
    run_step.add_argument("--output", help="also write the task's log lines to this file")
    run_step.add_argument("command", nargs=argparse.REMAINDER)
    versions = steps.add_parser("worker-versions")
    versions.add_argument("--live", required=True, help="`cofounder deployment live`'s output")
    versions.add_argument("--new", required=True, help="the build id being deployed")
    steps.add_parser("wait-services")
    return parser


if __name__ == "__main__":
    sys.exit(main())
