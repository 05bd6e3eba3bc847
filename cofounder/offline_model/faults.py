"""Faults the tests queue on the offline model, and the server's counters."""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, Field

# Anthropic's error type for each status the fault injector can answer.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

FaultRole = Literal["architect", "coder", "debugger", "reviewer"]


class Fault(BaseModel):
    """One injected fault; it applies to the next request of its role (any role when unset)."""

    status: int | None = Field(default=None, ge=400, le=599)
    retry_after: float | None = Field(default=None, ge=0)
    delay: float | None = Field(default=None, ge=0, le=600)
    malformed: bool = False
    # A 200 whose body is not a Messages API response: not JSON at all, or content of the
    # wrong shape. Counted as `garbled`, not `served`: it carries no usage to bill.
    garbled: Literal["not-json", "bad-content"] | None = None
    # The coder adds a test that sleeps this long: a sandbox run to cancel or time out.
    slow_tests: float | None = Field(default=None, ge=0, le=3600)
    # The agent loop's coder only lists the files this turn: queued a few times, it repeats
    # itself until the loop guard steps in.
    stuck: bool = False
    # The agent loop's coder runs one more command this turn, a different one each time, and
    # does not finish: a model that always asks to go on.
    endless: bool = False
    # The reviewer also wants a test that digits are kept (the agent's first pass has none),
    # so it sends the code back once with that finding.
    picky: bool = False
    role: FaultRole | None = None


class ServerState:
    """Queued faults, request counters and the prompts already cached."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget faults, counters and cached prompts (tests start from a clean model)."""
        self.faults: list[Fault] = []
        self.requests = 0
        self.served = 0
        self.garbled = 0
        self.in_flight = 0
        # Answers are a pure function of the request, so a request asked again after its answer
        # was lost (a worker killed mid-response) gets the same message id: counted once here.
        self.answers: set[str] = set()
        self.requests_by_role: Counter[str] = Counter()
        self.served_by_role: Counter[str] = Counter()
        self.cached_prompts: set[str] = set()

    def take_fault(self, role: str) -> Fault | None:
        """Remove and return the first queued fault that matches this role."""
        for index, fault in enumerate(self.faults):
            if fault.role is None or fault.role == role:
                return self.faults.pop(index)
        return None

    def count_request(self, role: str) -> None:
        self.requests += 1
        self.requests_by_role[role] += 1

    def count_served(self, role: str, message_id: str) -> None:
        self.served += 1
        self.served_by_role[role] += 1
        self.answers.add(message_id)

    def stats(self) -> dict[str, Any]:
        roles = sorted(self.requests_by_role)
        return {
            "requests": self.requests,
            "served": self.served,
            "garbled": self.garbled,
            "distinct_answers": len(self.answers),
            "in_flight": self.in_flight,
            "by_role": {
                role: {"requests": self.requests_by_role[role], "served": self.served_by_role[role]}
                for role in roles
            },
            "pending_faults": len(self.faults),
        }
