"""Project memory as activities: recall what bears on a goal or on feedback (in words, in the
artifact store, so the workflow carries a reference), and remember what a build decided, made
of its goal and was told. Which store keeps them (the database or Mem0) is the worker's choice.
"""

from __future__ import annotations

from typing import Any

from temporalio import activity

from activities.errors import activity_boundary
from cofounder.artifacts import ArtifactStore
from cofounder.memory import Memory, MemoryStore, NewMemory, Scope
from cofounder.memory.model import TEXT_LIMIT
from cofounder.payloads import Recalled, RecallRequest, Remembered, RememberRequest
from cofounder.settings import Settings

# Opens the recalled memories in a prompt (the offline model looks for it too).
MEMORY_HEADING = "What this project remembers"
MEMORY_GUIDE = (
    "(most relevant first). Keep to its decisions and conventions unless the goal or the "
    "feedback says otherwise, and name the source, e.g. (build 1a2b), of any you rely on:"
)


class MemoryActivities:
    def __init__(self, memory: MemoryStore, store: ArtifactStore, settings: Settings) -> None:
        self.memory = memory
        self.store = store
        self.settings = settings

    @activity.defn
    @activity_boundary
    async def recall(self, request: RecallRequest) -> Recalled:
        """The project's memories most relevant to the query, within the recall budget."""
        limit = self.settings.memory_recall_limit
        if limit == 0:
            return Recalled()
        scope = Scope(owner=request.owner, project=request.project)
        found = await self.memory.search(scope, request.query, limit)
        chosen = within(found, self.settings.memory_recall_chars)
        if not chosen:
            return Recalled()
        text = f"{MEMORY_HEADING} {MEMORY_GUIDE}\n" + "\n".join(line(m) for m in chosen)
        store = self.store.for_owner(request.owner)
        ref = await store.put_json({"text": text, "ids": [m.id for m in chosen]})
        activity.logger.info("recalled %d memories for %s", len(chosen), request.build_id)
        return Recalled(memory_ref=ref, ids=[m.id for m in chosen])

    @activity.defn
    @activity_boundary
    async def remember(self, request: RememberRequest) -> Remembered:
        """Keep the build's decisions, conventions and outcome, or an iteration's feedback.
        Keys make it idempotent: a retry (or the same plan seen again) adds nothing."""
        store = self.store.for_owner(request.owner)
        plan = await store.get_json(request.plan_ref) if request.plan_ref else {}
        items = [outcome(request, plan), *from_plan(request.build_id, plan)]
        if request.feedback_ref:
            items = from_feedback(request, await store.get_json(request.feedback_ref))
        scope = Scope(owner=request.owner, project=request.project)
        return Remembered(ids=await self.memory.add(scope, items))


def within(found: list[Memory], chars: int) -> list[Memory]:
    """The best memories whose lines fit in `chars`, in rank order; a text already chosen
    (each build records the decisions it kept to again) is not repeated."""
    chosen: list[Memory] = []
    used, seen = 0, set()
    for memory in found:
        size = len(line(memory)) + 1
        if used + size > chars:
            break
        if memory.text in seen:
            continue
        chosen.append(memory)
        used += size
        seen.add(memory.text)
    return chosen


def line(memory: Memory) -> str:
    source = f"build {memory.source}" if memory.source == memory.build_id else memory.source
    return f"- {memory.kind} ({source}): {memory.text}"


def outcome(request: RememberRequest, plan: dict[str, Any]) -> NewMemory:
    what = f"{plan['title']}: {plan.get('summary', '')}" if plan else "no plan was made"
    text = f"Build {request.build_id} for '{request.goal}' is {request.status.value}. {what}"
    if request.error:
        text += f" Why: {request.error}"
    if request.pull_request_url:
        text += f" Pull request: {request.pull_request_url}"
    return _new(f"{request.build_id}:outcome:{request.status.value}", "outcome", text, request)


def from_plan(build_id: str, plan: dict[str, Any]) -> list[NewMemory]:
    """The plan's decisions with their reasons, and the conventions the founder stated."""
    items = []
    for n, decision in enumerate(plan.get("decisions", []), 1):
        text = f"{decision['decision']} Because: {decision['reason']}"
        items.append(_new(f"{build_id}:decision:{n}", "decision", text, build_id))
    for n, convention in enumerate(plan.get("conventions", []), 1):
        items.append(_new(f"{build_id}:convention:{n}", "convention", convention, build_id))
    return items


def from_feedback(request: RememberRequest, gathered: dict[str, Any]) -> list[NewMemory]:
    """Each piece of feedback an iteration answered: who said what, where."""
    items = []
    for item in gathered.get("items", []):
        if not item.get("body", "").strip():
            continue
        where = f" on {item['path']}" if item.get("path") else ""
        text = f"@{item.get('author', '?')} ({item.get('kind', 'comment')}{where}): {item['body']}"
        source = item.get("url") or request.build_id
        key = f"{request.build_id}:feedback:{item['id']}"
        items.append(_new(key, "feedback", text, request, source))
    return items


def _new(
    key: str, kind: str, text: str, origin: RememberRequest | str, source: str | None = None
) -> NewMemory:
    build_id = origin if isinstance(origin, str) else origin.build_id
    return NewMemory.model_validate(
        {
            "key": key[:128],
            "kind": kind,
            "text": text[:TEXT_LIMIT],
            "source": (source or build_id)[:500],
            "build_id": build_id,
        }
    )
