"""The request's correlation id, carried from the API to every activity in a Temporal header.

The API binds `request_id` to structlog's contextvars; the client interceptor below copies it into
a header of each start, signal and update. A workflow remembers the newest id it received and
puts it on every activity, child, signal and continue-as-new it schedules; an activity binds it
(with its build and attempt) to structlog's contextvars while it runs, so its log lines name the
request that caused them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

import structlog
from temporalio import activity
from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Interceptor as ClientInterceptor,
)
from temporalio.client import (
    OutboundInterceptor,
    SignalWorkflowInput,
    StartWorkflowInput,
    StartWorkflowUpdateInput,
    StartWorkflowUpdateWithStartInput,
    WorkflowHandle,
    WorkflowUpdateHandle,
)
from temporalio.converter import PayloadConverter
from temporalio.worker import (
    ActivityInboundInterceptor,
    ContinueAsNewInput,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    HandleSignalInput,
    HandleUpdateInput,
    Interceptor,
    SignalExternalWorkflowInput,
    StartActivityInput,
    StartChildWorkflowInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)
from temporalio.workflow import ActivityHandle, ChildWorkflowHandle

from cofounder.payloads import build_workflow_id

# The Temporal header that carries the correlation id (named once: clients and workers agree).
HEADER = "cofounder-request-id"
CONTEXT_KEY = "request_id"  # what the API's middleware binds in structlog's contextvars
_BUILD_PREFIX = build_workflow_id("")

Headers = Mapping[str, Payload]


def current_request_id() -> str | None:
    """The correlation id bound to this context (by the API's middleware or an activity)."""
    value = structlog.contextvars.get_contextvars().get(CONTEXT_KEY)
    return value if isinstance(value, str) else None


def with_request_id(headers: Headers, payload: Payload | None) -> Headers:
    """`headers` plus the correlation header, unless there is none to add."""
    if payload is None:
        return headers
    return {**headers, HEADER: payload}


def request_id_of(headers: Headers) -> str | None:
    """The correlation id a header set carries; None when absent or unreadable."""
    payload = headers.get(HEADER)
    if payload is None:
        return None
    try:
        value = PayloadConverter.default.from_payload(payload, str)
    except Exception:  # a foreign or corrupt header must never fail the call it rides on
        return None
    return value if isinstance(value, str) else None


class CorrelationInterceptor(ClientInterceptor, Interceptor):
    """Client and worker interceptor; a worker built on a client that has it uses it too."""

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _ClientOutbound(next)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _WorkflowInbound

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityInbound(next)


def _outgoing() -> Payload | None:
    rid = current_request_id()
    return PayloadConverter.default.to_payload(rid) if rid else None


class _ClientOutbound(OutboundInterceptor):
    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        input.headers = with_request_id(input.headers, _outgoing())
        return await super().start_workflow(input)

    async def signal_workflow(self, input: SignalWorkflowInput) -> None:
        input.headers = with_request_id(input.headers, _outgoing())
        await super().signal_workflow(input)

    async def start_workflow_update(
        self, input: StartWorkflowUpdateInput
    ) -> WorkflowUpdateHandle[Any]:
        input.headers = with_request_id(input.headers, _outgoing())
        return await super().start_workflow_update(input)

    async def start_update_with_start_workflow(
        self, input: StartWorkflowUpdateWithStartInput
    ) -> WorkflowUpdateHandle[Any]:
        payload = _outgoing()
        start, update = input.start_workflow_input, input.update_workflow_input
        start.headers = with_request_id(start.headers, payload)
        update.headers = with_request_id(update.headers, payload)
        return await super().start_update_with_start_workflow(input)


class _WorkflowInbound(WorkflowInboundInterceptor):
    """One per workflow instance: remembers the newest correlation header it was sent.

    Deterministic: the header comes from the history (start, signal and update events), so a
    replay remembers the same one at the same point.
    """

    latest: Payload | None = None

    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_WorkflowOutbound(outbound, self))

    def _remember(self, headers: Headers) -> None:
        if HEADER in headers:
            self.latest = headers[HEADER]

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        self._remember(input.headers)
        return await super().execute_workflow(input)

    async def handle_signal(self, input: HandleSignalInput) -> None:
        self._remember(input.headers)
        await super().handle_signal(input)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        # Not the validator: a rejected update is not in the history and must change nothing.
        self._remember(input.headers)
        return await super().handle_update_handler(input)


class _WorkflowOutbound(WorkflowOutboundInterceptor):
    def __init__(self, next: WorkflowOutboundInterceptor, inbound: _WorkflowInbound) -> None:
        super().__init__(next)
        self._inbound = inbound

    def _headers(self, headers: Headers) -> Headers:
        return with_request_id(headers, self._inbound.latest)

    def start_activity(self, input: StartActivityInput) -> ActivityHandle[Any]:
        input.headers = self._headers(input.headers)
        return super().start_activity(input)

    def start_local_activity(self, input: StartLocalActivityInput) -> ActivityHandle[Any]:
        input.headers = self._headers(input.headers)
        return super().start_local_activity(input)

    async def start_child_workflow(
        self, input: StartChildWorkflowInput
    ) -> ChildWorkflowHandle[Any, Any]:
        input.headers = self._headers(input.headers)
        return await super().start_child_workflow(input)

    async def signal_external_workflow(self, input: SignalExternalWorkflowInput) -> None:
        input.headers = self._headers(input.headers)
        await super().signal_external_workflow(input)

    def continue_as_new(self, input: ContinueAsNewInput) -> NoReturn:
        input.headers = self._headers(input.headers)
        super().continue_as_new(input)


class _ActivityInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        with structlog.contextvars.bound_contextvars(**activity_context(input.headers)):
            return await super().execute_activity(input)


def activity_context(headers: Headers) -> dict[str, Any]:
    """What an activity's log lines carry: the correlation id, the build, the activity, the try."""
    info = activity.info()
    bound: dict[str, Any] = {
        "workflow_id": info.workflow_id,
        "activity": info.activity_type,
        "attempt": info.attempt,
    }
    if info.workflow_id and info.workflow_id.startswith(_BUILD_PREFIX):
        bound["build_id"] = info.workflow_id.removeprefix(_BUILD_PREFIX)
    rid = request_id_of(headers)
    if rid is not None:
        bound[CONTEXT_KEY] = rid
    return bound
