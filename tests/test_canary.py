"""No secret leaves where it belongs: a build end to end with a canary in every secret setting,
then every place a secret could leak to is searched for every canary.

The places: the API's and the worker's log lines, the API's answers (the build, its plan, pull
request, events and error answers from paths that use a secret-bearing client), the pull request
on GitHub, what each command in the build's sandboxes saw (environment and argv), every file
on disk (artifacts, the app database, git remotes, sandboxes), and every workflow run's history.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.sandbox import Command, SessionSpec
from activities.sandbox.local import LocalRuntime
from tests.canary_stack import REPOSITORY, CanaryStack, canary_doubles, canary_stack
from tests.clerk_tokens import STRANGER_KID, bearer, token
from tests.github_fixtures import deliver
from tests.helpers import api_status, inject_faults, model_stats

__all__ = ["canary_doubles", "canary_stack"]  # the fixtures this module uses

GOAL = "Let slugify cut long slugs to a maximum length"
# Each secret setting under the variable name a deployment gives it.
ENVIRONMENT_NAMES = {
    "anthropic_api_key": "ANTHROPIC_API_KEY",
    "e2b_api_key": "E2B_API_KEY",
    "stripe_secret_key": "STRIPE_SECRET_KEY",
    "stripe_webhook_secret": "STRIPE_WEBHOOK_SECRET",
    "github_webhook_secret": "GITHUB_WEBHOOK_SECRET",
    "github_private_key": "GITHUB_PRIVATE_KEY",
    "clerk_secret_key": "CLERK_SECRET_KEY",
}

Places = dict[str, bytes]


def forms(value: str) -> list[bytes]:
    """What a leak of `value` could look like: itself, base64, and for a PEM each body line."""
    found = [value.encode(), base64.b64encode(value.encode())]
    found += [
        line.encode() for line in value.splitlines() if re.fullmatch(r"[A-Za-z0-9+/=]{32,}", line)
    ]
    return found


def leaks(canaries: dict[str, str], places: Places) -> dict[str, list[str]]:
    """Each place where some canary shows, with the names of the canaries it shows."""
    found = {
        place: [name for name, value in canaries.items() if any(f in text for f in forms(value))]
        for place, text in places.items()
    }
    return {place: names for place, names in found.items() if names}


async def test_no_canary_leaks_anywhere(
    canary_stack: CanaryStack,
    env: WorkflowEnvironment,
    tmp_path: Path,
    offline_model: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stack, http = canary_stack, canary_stack.http
    build_id = await _build_in_review(stack)
    places = await _answers(http, build_id) | await _error_answers(stack, offline_model)
    places |= await _sandbox_environments(stack, monkeypatch)
    places |= _pull_request_on_github(stack) | _files(tmp_path)
    places |= await _histories(env, stack)
    places["logs"] = stack.logs.text.encode()

    assert leaks(stack.canaries, places) == {}
    _every_secret_was_used(stack, offline_model)
    # Both the API's and the worker's lines were captured.
    assert stack.logs.events("request") and stack.logs.events("sandbox opened")


async def _build_in_review(stack: CanaryStack) -> str:
    http, installation = stack.http, stack.github.installation_id
    claimed = await http.post(f"/api/github/installations/{installation}/claim")
    assert claimed.status_code == 200, claimed.text
    linked = await http.put("/api/projects/slugs/repository", json={"repository": REPOSITORY})
    assert linked.status_code == 200, linked.text
    started = await http.post("/api/builds", json={"project": "slugs", "goal": GOAL})
    assert started.status_code == 202, started.text
    build_id: str = started.json()["id"]
    await api_status(http, build_id, "in_review", timeout=180)
    return build_id


async def _answers(http: httpx.AsyncClient, build_id: str) -> Places:
    """Every read of the build, and the answers of the calls that used a secret."""
    paths = ["", "/plan", "/pull-request", "/events?until=settled"]
    answers = {f"GET build{p}": await http.get(f"/api/builds/{build_id}{p}") for p in paths}
    answers["GET builds"] = await http.get("/api/builds")
    answers["GET project"] = await http.get("/api/projects/slugs")
    answers["POST checkout"] = await http.post("/api/billing/checkout", json={"tier": "partner"})
    for name, answer in answers.items():
        assert answer.status_code == 200, (name, answer.text)
    return {f"answer: {name}": _whole(answer) for name, answer in answers.items()}


async def _error_answers(stack: CanaryStack, offline_model: str) -> Places:
    """Refusals from paths that hold a secret: Clerk's Backend API asked for an unknown key,
    forged webhooks, Stripe failing, and a build the model API refuses."""
    http = stack.http
    stranger = bearer(token(kid=STRANGER_KID))
    stack.stripe.fail_next("/v1/checkout/sessions", status=500)
    refused = {
        "unknown signing key": (await http.get("/api/builds", headers=stranger), 401),
        "forged GitHub webhook": (await deliver(http, "ping", {}, secret="forged"), 401),
        "forged Stripe webhook": (await _forged_stripe_webhook(http), 401),
        "Stripe failing": (await http.post("/api/billing/checkout", json={"tier": "partner"}), 503),
    }
    inject_faults(offline_model, {"status": 401})
    started = await http.post("/api/builds", json={"project": "demo", "goal": GOAL})
    failed = await api_status(http, started.json()["id"], "failed")
    assert "401" in failed["error"]
    refused["build the model refused"] = (await http.get(f"/api/builds/{failed['id']}"), 200)
    for name, (answer, status) in refused.items():
        assert answer.status_code == status, (name, answer.text)
    return {f"error answer: {name}": _whole(answer) for name, (answer, _) in refused.items()}


async def _forged_stripe_webhook(http: httpx.AsyncClient) -> httpx.Response:
    headers = {"Stripe-Signature": "t=1700000000,v1=" + "0" * 64}
    return await http.post("/api/webhooks/stripe", content=b'{"id": "evt_1"}', headers=headers)


def _whole(answer: httpx.Response) -> bytes:
    headers = "\n".join(f"{name}: {value}" for name, value in answer.headers.items())
    return headers.encode() + b"\n\n" + answer.content


async def _sandbox_environments(stack: CanaryStack, monkeypatch: pytest.MonkeyPatch) -> Places:
    """What the build's commands saw on E2B, and what `env` sees in a local sandbox on a worker
    whose own environment holds every secret."""
    assert stack.sandbox_commands, "the build ran no command in its sandbox"
    seen = "\n".join(repr(command) for command in stack.sandbox_commands)
    with monkeypatch.context() as patched:
        for name, variable in ENVIRONMENT_NAMES.items():
            patched.setenv(variable, stack.canaries[name])
        runtime = LocalRuntime(stack.settings)
        session = await runtime.open(SessionSpec("canary-env", "user_1", "slugs"))
        try:
            shown = await session.run(Command(argv=["env"]))
        finally:
            await runtime.close(session.session_id)
    assert shown.exit_code == 0 and b"PATH=" in shown.log, shown.log
    return {"E2B commands' environment": seen.encode(), "local sandbox `env`": shown.log}


def _pull_request_on_github(stack: CanaryStack) -> Places:
    [pull] = stack.github.double.pulls(REPOSITORY)
    comments = [c.body for c in stack.github.double.comments(REPOSITORY, pull.number)]
    return {"pull request on GitHub": "\n".join([pull.title, pull.body or "", *comments]).encode()}


def _files(root: Path) -> Places:
    """Every file the test's stack wrote: the data dir (artifacts, the app database, git
    remotes, sandboxes) and the doubles' own folders (GitHub's repositories, E2B's sandboxes)."""
    files = [path for path in root.rglob("*") if path.is_file()]
    assert any(path.name == "cofounder.db" for path in files)
    return {f"file {path.relative_to(root)}": path.read_bytes() for path in files}


async def _histories(env: WorkflowEnvironment, stack: CanaryStack) -> Places:
    """Every run of every workflow on the test's task queue: its history as JSON, and its
    events as bytes (payloads are base64 in the JSON)."""
    client, places = env.client, {}
    query = f"TaskQueue = '{stack.settings.task_queue}'"
    async for run in client.list_workflows(query):
        history = await client.get_workflow_handle(run.id, run_id=run.run_id).fetch_history()
        events = b"".join(event.SerializeToString() for event in history.events)
        places[f"history {run.id}/{run.run_id}"] = history.to_json().encode() + events
    assert len(places) >= 2, "both builds' histories"
    return places


def _every_secret_was_used(stack: CanaryStack, offline_model: str) -> None:
    """The canaries were really in play: each double was called with its own."""
    assert model_stats(offline_model)["requests"] > 0  # the model's key
    assert stack.e2b.sandboxes  # E2B's key
    assert len(stack.github.double.pulls(REPOSITORY)) == 1  # the App's private key
    assert stack.stripe.requests("POST /v1/checkout/sessions") >= 1  # Stripe's key
    assert stack.jwks.fetches >= 1  # Clerk's secret key (the keys come from its Backend API)
