"""Typed payloads that cross the workflow/activity boundary.

Everything here travels through Temporal history, so it carries references into the artifact
store and short summaries, never file contents, transcripts or logs. Fields are only ever added
with defaults, so recorded histories keep decoding. Every name is imported from this package
(workflows, activities, the API and recorded-history replay alike); the modules only sort them.
"""

from cofounder.payloads.build import (
    BUILD_STATUS,
    ENDED,
    LOCAL_OWNER,
    OWNER,
    PROJECT,
    ApprovalDecision,
    BillingHold,
    Budget,
    BudgetExtension,
    BuildInput,
    BuildStatus,
    Deadlines,
    RepositoryLink,
    ReviewSettings,
    Usage,
    build_workflow_id,
)
from cofounder.payloads.calls import (
    Brief,
    ChangeRequest,
    CodeRequest,
    CodeResult,
    DebugRequest,
    DebugResult,
    PlanRequest,
    PlanResult,
    ReviewRequest,
    ReviewResult,
    ToolCall,
    TurnRequest,
    TurnResult,
)
from cofounder.payloads.memory import Recalled, RecallRequest, Remembered, RememberRequest
from cofounder.payloads.records import (
    CostSummary,
    PublishRequest,
    PullRequestRef,
    RecordedEvent,
)
from cofounder.payloads.resume import GuardState, Resume
from cofounder.payloads.sandbox import (
    SUMMARY_LIMIT,
    SandboxRef,
    SandboxRequest,
    TestReport,
    TestRequest,
    ToolOutcomeSummary,
    ToolsRequest,
    ToolsResult,
)
from cofounder.payloads.session import (
    FEEDBACK_LIMIT,
    SEEN_LIMIT,
    Feedback,
    FeedbackBrief,
    FeedbackRequest,
    IterationRequest,
    IterationResult,
    PullRequestClosed,
    SessionState,
)
from cofounder.payloads.view import (
    ITERATIONS_SHOWN,
    BuildView,
    IterationView,
    StatusUpdate,
    StepView,
)

__all__ = [
    # build.py
    "BUILD_STATUS",
    "ENDED",
    "LOCAL_OWNER",
    "OWNER",
    "PROJECT",
    "ApprovalDecision",
    "BillingHold",
    "Budget",
    "BudgetExtension",
    "BuildInput",
    "BuildStatus",
    "Deadlines",
    "RepositoryLink",
    "ReviewSettings",
    "Usage",
    "build_workflow_id",
    # calls.py
    "Brief",
    "ChangeRequest",
    "CodeRequest",
    "CodeResult",
    "DebugRequest",
    "DebugResult",
    "PlanRequest",
    "PlanResult",
    "ReviewRequest",
    "ReviewResult",
    "ToolCall",
    "TurnRequest",
    "TurnResult",
    # records.py
    "CostSummary",
    "PublishRequest",
    "PullRequestRef",
    "RecordedEvent",
    # memory.py
    "RecallRequest",
    "Recalled",
    "RememberRequest",
    "Remembered",
    # resume.py
    "GuardState",
    "Resume",
    # session.py
    "FEEDBACK_LIMIT",
    "SEEN_LIMIT",
    "Feedback",
    "FeedbackBrief",
    "FeedbackRequest",
    "IterationRequest",
    "IterationResult",
    "PullRequestClosed",
    "SessionState",
    # sandbox.py
    "SUMMARY_LIMIT",
    "SandboxRef",
    "SandboxRequest",
    "TestReport",
    "TestRequest",
    "ToolOutcomeSummary",
    "ToolsRequest",
    "ToolsResult",
    # view.py
    "ITERATIONS_SHOWN",
    "BuildView",
    "IterationView",
    "StatusUpdate",
    "StepView",
]
