"""The dashboard's forms posted: start a build, decide its plan, raise its budget, give feedback,
cancel it. Each calls the function the JSON route calls, so a refusal carries the same words;
htmx gets the form back with the outcome in it, a plain post a redirect or an error page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from api import controls, creation, queries
from api.dashboard.assets import fragment, is_htmx, page
from api.dashboard.errors import DashboardRoute, refusal
from api.dashboard.forms import FormDep, FormRefused, new_key, optional, validated
from api.dashboard.listing import list_projects
from api.deps import CurrentUser, SessionDep, SettingsDep, TemporalDep
from api.errors import ServiceError
from api.routes.builds import BuildId
from api.schemas.budget import BudgetRequest
from api.schemas.builds import BuildCreate, BuildOut
from api.schemas.feedback import FeedbackCreate
from api.schemas.plans import ApprovalRequest
from cofounder.payloads import ApprovalDecision

router = APIRouter(prefix="/app", include_in_schema=False, route_class=DashboardRoute)


async def owned(build_id: BuildId, session: SessionDep, user: CurrentUser) -> str:
    """The caller's build id: another owner's (or none) answers 404 before the form is read."""
    await queries.load_build(session, user.id, build_id)
    return build_id


OwnedBuildId = Annotated[str, Depends(owned)]

# Tells htmx to refresh the build page's fragments (they listen for it on the body).
CHANGED = {"HX-Trigger": "build-changed"}


def _messages(err: ServiceError) -> list[str]:
    return err.messages if isinstance(err, FormRefused) else [err.detail]


@router.post("/builds")
async def create_build(
    request: Request,
    form: FormDep,
    session: SessionDep,
    client: TemporalDep,
    settings: SettingsDep,
    user: CurrentUser,
) -> Response:
    values = {
        "project": form.get("project", ""),
        "goal": form.get("goal", ""),
        "require_approval": "require_approval" in form,
        "budget_usd": optional(form.get("budget_usd")),
    }
    try:
        body = validated(BuildCreate, values)
        request_id = getattr(request.state, "request_id", None)
        key = optional(form.get("key"))
        build = await creation.create_build(
            session, client, settings, user.id, body, request_id, key
        )
    except ServiceError as err:
        await session.rollback()
        known = await list_projects(session, settings, user.id)
        context = {
            "user": user.id,
            "dev_mode": request.app.state.clerk is None,
            "projects": known,
            "values": {**form, "require_approval": values["require_approval"]},
            "key": new_key(),
            "default_budget": settings.default_budget_usd,
            "messages": _messages(err),
        }
        if is_htmx(request):
            return fragment(request, "forms/new_build.html", context, err.status_code)
        return page(request, "new_build.html", context, err.status_code)
    return _go(request, f"/app/builds/{build.id}")


def _go(request: Request, url: str) -> Response:
    """To the page at `url`: htmx follows HX-Redirect, a browser the 303."""
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


Act = Callable[[], Awaitable[BuildOut]]


async def _answer(
    request: Request,
    build_id: str,
    form_name: str,
    act: Act,
    done: Callable[[BuildOut], str],
    form: dict[str, str],
) -> Response:
    """Do `act` and answer with the form (`forms/<form_name>.html`) telling its outcome: `done`
    of the build, or the refusal in the API's words (the values kept to correct them)."""
    try:
        build = await act()
    except ServiceError as err:
        if not is_htmx(request):
            return refusal(request, err.status_code, _messages(err), err.headers)
        refused = _form_context(build_id, form, ok=False, messages=_messages(err))
        return fragment(request, f"forms/{form_name}.html", refused, err.status_code)
    if not is_htmx(request):
        return _go(request, f"/app/builds/{build_id}")
    # Emptied, with a new key: the next feedback is new, not a repeat of this one.
    answered = _form_context(build_id, {}, ok=True, messages=[done(build)])
    return fragment(request, f"forms/{form_name}.html", answered, headers=CHANGED)


def _form_context(
    build_id: str, values: dict[str, str], ok: bool, messages: list[str]
) -> dict[str, Any]:
    return {
        "build_id": build_id,
        "key": new_key(),
        "values": values,
        "ok": ok,
        "messages": messages,
    }


@router.post("/builds/{build_id}/approve")
async def approve(
    request: Request,
    build_id: OwnedBuildId,
    form: FormDep,
    session: SessionDep,
    client: TemporalDep,
    user: CurrentUser,
) -> Response:
    async def act() -> BuildOut:
        body = validated(ApprovalRequest, {**form, "approved": form.get("approved", "")})
        decision = ApprovalDecision(approved=body.approved, comment=body.comment)
        return await controls.approve_build(session, client, user.id, build_id, decision)

    def done(_: BuildOut) -> str:
        if form.get("approved") == "true":
            return "Plan approved: the build goes on."
        return "Plan rejected: the build is cancelled."

    return await _answer(request, build_id, "approve", act, done, form)


@router.post("/builds/{build_id}/budget")
async def extend_budget(
    request: Request,
    build_id: OwnedBuildId,
    form: FormDep,
    session: SessionDep,
    client: TemporalDep,
    settings: SettingsDep,
    user: CurrentUser,
) -> Response:
    async def act() -> BuildOut:
        body = validated(BudgetRequest, {"add_usd": form.get("add_usd", "")})
        return await controls.extend_budget(
            session, client, settings, user.id, build_id, body.add_usd
        )

    def done(build: BuildOut) -> str:
        budget = build.budget
        if budget is None:
            return "Budget raised."
        return f"Budget raised to ${budget.limit_usd:.2f}; ${budget.remaining_usd:.2f} left."

    return await _answer(request, build_id, "budget", act, done, form)


@router.post("/builds/{build_id}/feedback")
async def add_feedback(
    request: Request,
    build_id: OwnedBuildId,
    form: FormDep,
    session: SessionDep,
    client: TemporalDep,
    user: CurrentUser,
) -> Response:
    async def act() -> BuildOut:
        body = validated(FeedbackCreate, {"body": form.get("body", "")})
        key = optional(form.get("key"))
        return await controls.add_feedback(session, client, user.id, build_id, body.body, key)

    def done(_: BuildOut) -> str:
        return "Feedback sent: the next iteration answers it on the pull request."

    return await _answer(request, build_id, "feedback", act, done, form)


@router.post("/builds/{build_id}/cancel")
async def cancel(
    request: Request,
    build_id: OwnedBuildId,
    form: FormDep,
    session: SessionDep,
    client: TemporalDep,
    user: CurrentUser,
) -> Response:
    async def act() -> BuildOut:
        return await controls.cancel_build(session, client, user.id, build_id)

    def done(_: BuildOut) -> str:
        return "Cancelling: the build winds down and ends cancelled."

    return await _answer(request, build_id, "cancel", act, done, form)
