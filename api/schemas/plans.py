"""A build's plan: reading it, and approving or rejecting it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas.fields import Comment


class ApprovalRequest(BaseModel):
    """Approve the plan (the build goes on) or reject it (the build is cancelled)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    approved: bool
    comment: Comment = ""


class PlanStep(BaseModel):
    """One step of a plan, with the files it expects to touch. A step given as plain text (plans
    from before steps named their files) is its title."""

    title: str = Field(examples=["Create the slugkit package with slugify()"])
    description: str | None = Field(default=None, examples=["slugify(text, separator='-')"])
    files: list[str] = Field(default_factory=list, examples=[["slugkit/__init__.py"]])

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: object) -> object:
        if isinstance(value, str):
            return {"title": value}
        if isinstance(value, dict) and not value.get("title") and value.get("description"):
            return {**value, "title": value["description"], "description": None}
        if isinstance(value, dict) and value.get("description") == "":
            return {**value, "description": None}
        return value


class PlanOut(BaseModel):
    """The architect's plan of a build: what it will do, in which steps and files."""

    # Lenient on purpose: plans recorded by older and newer architects all read; the ones that
    # predate a field get its default.
    build_id: str = Field(examples=["3f9c2a1b7d4e5f60"])
    title: str = Field(examples=["slugkit: a slugify library with tests"])
    summary: str = Field(default="", examples=["A dependency-free `slugify()` with pytest tests."])
    steps: list[PlanStep] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list, examples=[["slugkit/__init__.py"]])
    test_command: str | None = Field(
        default=None,
        description="How the tests run; null: the project's own (pytest, or `npm test`).",
        examples=["python -m pytest -q"],
    )
    estimated_cost_usd: float | None = Field(
        default=None,
        description="The architect's estimate of the build's model cost.",
        examples=[0.42],
    )
