"""One place for configuration: every knob is an environment variable (see `.env.example`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL

from cofounder.payloads.build import ReviewSettings
from cofounder.plans import DEFAULT_PLANS, PAID_TIERS, PERIODS, Period, PlanLimits
from cofounder.settings_checks import check
from workflows.queues import KINDS, QueueKind


class ModelPrice(BaseModel):
    """USD per million tokens, which is the same number as micro-dollars per token."""

    input: float
    output: float
    cache_write: float
    cache_read: float


DEFAULT_PRICES: dict[str, ModelPrice] = {
    "claude-sonnet-4-6": ModelPrice(input=3, output=15, cache_write=3.75, cache_read=0.30),
    "claude-sonnet-4-5": ModelPrice(input=3, output=15, cache_write=3.75, cache_read=0.30),
    "claude-haiku-4-5": ModelPrice(input=1, output=5, cache_write=1.25, cache_read=0.10),
    "claude-opus-4-6": ModelPrice(input=5, output=25, cache_write=6.25, cache_read=0.50),
}

Role = Literal["architect", "coder", "debugger", "reviewer"]


def _env(name: str) -> AliasChoices:
    # Vendor-standard variable names keep working without our prefix.
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    """Settings for the API, the worker and the CLI alike."""

    model_config = SettingsConfigDict(
        env_prefix="COFOUNDER_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
        # A refusal names the variable to fix; it never repeats the values, secrets among them.
        hide_input_in_errors=True,
    )

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path(".cofounder")
    database_url: str | None = Field(default=None, validation_alias=_env("DATABASE_URL"))
    # Or the URL's parts, as a managed database's secret hands them out (RDS on ECS): used when
    # DATABASE_URL is unset and DATABASE_HOST is set.
    database_host: str | None = Field(default=None, validation_alias=_env("DATABASE_HOST"))
    database_port: int = Field(default=5432, validation_alias=_env("DATABASE_PORT"))
    database_name: str = Field(default="cofounder", validation_alias=_env("DATABASE_NAME"))
    database_user: str = Field(default="cofounder", validation_alias=_env("DATABASE_USER"))
    database_password: SecretStr | None = Field(
        default=None, validation_alias=_env("DATABASE_PASSWORD")
    )

    temporal_address: str = Field(
        default="127.0.0.1:7233", validation_alias=_env("TEMPORAL_ADDRESS")
    )
    temporal_namespace: str = Field(default="default", validation_alias=_env("TEMPORAL_NAMESPACE"))
    # A Temporal Cloud or cluster connection by configuration alone: a `temporalio.envconfig`
    # profile (TOML) and its TEMPORAL_* variables (TLS, mTLS, API key). An address or namespace
    # set here explicitly wins over the profile's.
    temporal_profile: str | None = Field(default=None, validation_alias=_env("TEMPORAL_PROFILE"))
    temporal_config_file: Path | None = Field(
        default=None, validation_alias=_env("TEMPORAL_CONFIG_FILE")
    )
    temporal_api_key: SecretStr | None = Field(
        default=None, validation_alias=_env("TEMPORAL_API_KEY")
    )
    # The workflows' queue; model calls and sandbox work run on `<it>-models`, `<it>-sandbox`.
    task_queue: str = "cofounder-builds"
    # What this worker process serves (comma-separated: workflows, models, sandbox).
    worker_queues: Annotated[list[QueueKind], NoDecode] = Field(default_factory=lambda: [*KINDS])
    # Model calls started per second by the whole fleet (Temporal enforces it on the queue).
    model_calls_per_second: float | None = Field(default=None, gt=0)
    # Sandbox activities one worker runs at once.
    sandbox_concurrency: int = Field(default=8, ge=1)
    # On SIGTERM a worker stops polling and gives running activities this long to finish.
    worker_grace_seconds: float = Field(default=60.0, ge=0)
    worker_cached_workflows: int = Field(default=1000, ge=0)
    # Worker Deployment Versioning: with a deployment name, builds are pinned to the build id
    # (the image's version) of the workers they started on.
    deployment_name: str | None = None
    build_id: str | None = None
    temporal_ui_port: int = 8233

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_url: str = "http://127.0.0.1:8000"
    # Who calls the API: `dev` acts as the one local user for everyone; `clerk` verifies a Clerk
    # session token (RS256, keys from the JWKS URL, `iss` equal to the issuer).
    auth_mode: Literal["dev", "clerk"] = Field(
        default="dev", validation_alias=_env("COFOUNDER_AUTH")
    )
    clerk_jwks_url: str | None = Field(default=None, validation_alias=_env("CLERK_JWKS_URL"))
    clerk_issuer: str | None = Field(default=None, validation_alias=_env("CLERK_ISSUER"))
    # Without a JWKS URL, the keys come from Clerk's Backend API with the secret key.
    clerk_secret_key: SecretStr | None = Field(
        default=None, validation_alias=_env("CLERK_SECRET_KEY")
    )
    clerk_api_url: str = Field(
        default="https://api.clerk.com", validation_alias=_env("CLERK_API_URL")
    )
    # Browser origins allowed by CORS and as a token's `azp` (comma-separated or a JSON list).
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    anthropic_api_key: SecretStr | None = Field(
        default=None, validation_alias=_env("ANTHROPIC_API_KEY")
    )
    anthropic_base_url: str | None = Field(
        default=None, validation_alias=_env("ANTHROPIC_BASE_URL")
    )
    offline_model_port: int = 8787
    # An Opus-class model plans and reviews, a Sonnet-class one writes and debugs.
    model_architect: str = "claude-opus-4-6"
    model_coder: str = "claude-sonnet-4-6"
    model_debugger: str = "claude-sonnet-4-6"
    model_reviewer: str = "claude-opus-4-6"
    llm_timeout_seconds: float = 120.0
    llm_max_tokens: int = 8192
    model_prices: dict[str, ModelPrice] = Field(default_factory=lambda: dict(DEFAULT_PRICES))

    # Bounds of the coder's work: test runs per step, model turns per coding pass, and the
    # times the reviewer may send the code back.
    max_attempts: int = Field(default=3, ge=1, le=10)
    max_turns: int = Field(default=30, ge=1, le=500)
    max_review_rounds: int = Field(default=1, ge=0, le=10)
    # A build's hard dollar limit on model calls unless its request names one, and how long a
    # build that needs more waits for an extension before it is cancelled.
    default_budget_usd: float = Field(default=5.0, gt=0)
    budget_wait_seconds: float = Field(default=86_400, gt=0)
    # After its pull request opens a build stays in review, iterating on feedback, until the
    # pull request is merged or closed or no feedback comes for review_idle_hours. Each
    # iteration may spend iteration_budget_usd (unset: only the build's budget); a review's
    # comments are awaited review_settle_seconds; a run continues as new every N iterations.
    review_sessions: bool = True
    review_idle_hours: float = Field(default=14 * 24, gt=0)
    iteration_budget_usd: float | None = Field(default=None, gt=0)
    review_settle_seconds: float = Field(default=5.0, ge=0)
    review_iterations_per_run: int = Field(default=10, ge=1)
    sandbox_timeout_seconds: float = 120.0
    sandbox_output_limit_bytes: int = 1_000_000
    sandbox_memory_mb: int = 2048
    # No single file written in the sandbox grows past this: a runaway writer cannot fill the disk.
    sandbox_file_size_mb: int = 1024
    bwrap_path: str = "bwrap"
    # The install step alone reaches the network, with its own time limit. Unset index and
    # registry: pip's and npm's public defaults.
    sandbox_install_timeout_seconds: float = 300.0
    sandbox_package_index: str | None = None
    sandbox_npm_registry: str | None = None
    # Where builds run: `local` (bubblewrap on the worker) or `e2b` (needs E2B_API_KEY).
    sandbox: Literal["local", "e2b"] = "local"
    e2b_api_key: SecretStr | None = Field(default=None, validation_alias=_env("E2B_API_KEY"))
    # The E2B template per project language; each needs python3 with pytest, or node and npm.
    e2b_template_python: str = "code-interpreter-v1"
    e2b_template_node: str = "base"
    # An idle sandbox is paused after this long (a build pauses it between phases anyway).
    e2b_sandbox_timeout_seconds: int = 1800

    # A GitHub App publishes to GitHub when its id and key are set; the local bare remotes
    # otherwise. GitHub Enterprise: its API URL (https://HOST/api/v3).
    github_app_id: int | None = Field(default=None, validation_alias=_env("GITHUB_APP_ID"))
    github_private_key: SecretStr | None = Field(
        default=None, validation_alias=_env("GITHUB_PRIVATE_KEY")
    )
    github_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias=_env("GITHUB_WEBHOOK_SECRET")
    )
    github_api_url: str = Field(
        default="https://api.github.com", validation_alias=_env("GITHUB_API_URL")
    )
    # A failing check suite on a build's pull request is feedback it iterates on. Off by default:
    # a flaky or unrelated check would otherwise spend budget on its own.
    github_iterate_on_failing_checks: bool = Field(
        default=False, validation_alias=_env("GITHUB_ITERATE_ON_FAILING_CHECKS")
    )

    # Project memory: the database's full-text search by default. Mem0 when MEM0_API_KEY is
    # set (its platform, at MEM0_HOST) or COFOUNDER_MEM0_CONFIG names a JSON file of Mem0's
    # open-source config (its vector store, embedder and history database).
    mem0_api_key: SecretStr | None = Field(default=None, validation_alias=_env("MEM0_API_KEY"))
    mem0_host: str = Field(default="https://api.mem0.ai", validation_alias=_env("MEM0_HOST"))
    mem0_config: Path | None = None
    # What a plan or review iteration is shown: at most this many memories and characters.
    memory_recall_limit: int = Field(default=8, ge=0, le=50)
    memory_recall_chars: int = Field(default=4_000, ge=0, le=50_000)

    # Requests per user per minute on the API's mutating routes (0: no limit), counted in Redis
    # when REDIS_URL is set, so every API instance shares the count; in the process otherwise,
    # which only the single-process embedded stack may rely on.
    redis_url: SecretStr | None = Field(default=None, validation_alias=_env("REDIS_URL"))
    rate_limit_per_minute: int = Field(default=120, ge=0)

    # Plan tiers and their limits (COFOUNDER_PLANS as JSON replaces them all). New users start
    # on default_tier; in dev auth mode the local user is on local_tier.
    plans: dict[str, PlanLimits] = Field(default_factory=lambda: dict(DEFAULT_PLANS))
    default_tier: str = "free"
    local_tier: str = "unlimited"

    # Stripe: subscriptions (a price per tier and period, STRIPE_PRICE_<TIER>_<PERIOD>), the
    # customer portal, signed webhooks, and usage sent as billing meter events (value: the
    # ledger row's cost in micro-dollars). Unset secret key: no billing, plans set by admins.
    stripe_secret_key: SecretStr | None = Field(
        default=None, validation_alias=_env("STRIPE_SECRET_KEY")
    )
    stripe_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias=_env("STRIPE_WEBHOOK_SECRET")
    )
    # Another address for Stripe's API (a local double in tests).
    stripe_api_base: str | None = Field(default=None, validation_alias=_env("STRIPE_API_BASE"))
    stripe_price_bootstrapper_monthly: str | None = Field(
        default=None, validation_alias=_env("STRIPE_PRICE_BOOTSTRAPPER_MONTHLY")
    )
    stripe_price_bootstrapper_annual: str | None = Field(
        default=None, validation_alias=_env("STRIPE_PRICE_BOOTSTRAPPER_ANNUAL")
    )
    stripe_price_partner_monthly: str | None = Field(
        default=None, validation_alias=_env("STRIPE_PRICE_PARTNER_MONTHLY")
    )
    stripe_price_partner_annual: str | None = Field(
        default=None, validation_alias=_env("STRIPE_PRICE_PARTNER_ANNUAL")
    )
    stripe_price_cto_monthly: str | None = Field(
        default=None, validation_alias=_env("STRIPE_PRICE_CTO_MONTHLY")
    )
    stripe_price_cto_annual: str | None = Field(
        default=None, validation_alias=_env("STRIPE_PRICE_CTO_ANNUAL")
    )
    # The metered price usage is billed at, added to every subscription's checkout.
    stripe_price_usage: str | None = Field(
        default=None, validation_alias=_env("STRIPE_PRICE_USAGE")
    )
    stripe_meter_event_name: str = Field(
        default="cofounder_usage", validation_alias=_env("STRIPE_METER_EVENT_NAME")
    )
    # Unsent ledger rows are sent to Stripe this often.
    meter_every_seconds: float = Field(default=60, gt=0)
    # Where Checkout and the portal send the founder back to (the dashboard).
    app_url: str = "http://127.0.0.1:8000"

    # Unset: a folder under the data dir. `s3://bucket/prefix` (with an endpoint for S3-compatible
    # stores) lets workers on other machines read what this one wrote.
    artifacts: str | None = None
    artifacts_endpoint_url: str | None = None

    # A worker serves its Prometheus metrics here (0: not served); the API serves GET /metrics.
    # Another worker on the same machine finds the port taken and serves none (it logs so).
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = Field(default=9464, ge=0, le=65535)
    # Set: every process also puts its metrics to CloudWatch under this namespace this often
    # (credentials and region from boto3's chain; an endpoint for a local double in tests).
    cloudwatch_namespace: str | None = None
    cloudwatch_every_seconds: float = Field(default=60, gt=0)
    cloudwatch_endpoint_url: str | None = None

    @field_validator("github_private_key")
    @classmethod
    def _pem_lines(cls, key: SecretStr | None) -> SecretStr | None:
        # A one-line .env value (or a secret store's) carries the PEM's newlines as "\n".
        if key is None or "\n" in key.get_secret_value():
            return key
        return SecretStr(key.get_secret_value().replace("\\n", "\n"))

    @field_validator("worker_queues", mode="before")
    @classmethod
    def _queues(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [kind.strip() for kind in value.split(",") if kind.strip()]
        return value

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value.strip().startswith("["):
            return json.loads(value)
        return [origin.strip() for origin in value.split(",") if origin.strip()]

    @model_validator(mode="after")
    def _check(self) -> Settings:
        check(self)
        return self

    def plan(self, tier: str) -> PlanLimits:
        """A tier's limits; a tier no longer configured has the default tier's."""
        return self.plans.get(tier) or self.plans[self.default_tier]

    def stripe_price(self, tier: str, period: Period) -> str | None:
        """The Stripe price id of a paid tier and period; None when not configured."""
        if tier not in PAID_TIERS or period not in PERIODS:
            return None
        price: str | None = getattr(self, f"stripe_price_{tier}_{period}")
        return price

    def tier_of_price(self, price: str) -> tuple[str, Period] | None:
        """The tier and period a Stripe price id is configured for."""
        for tier in PAID_TIERS:
            for period in PERIODS:
                if self.stripe_price(tier, period) == price:
                    return tier, period
        return None

    @property
    def billing(self) -> bool:
        """True when Stripe bills this deployment's users."""
        return self.stripe_secret_key is not None

    def model_for(self, role: Role) -> str:
        return str(getattr(self, f"model_{role}"))

    @property
    def offline(self) -> bool:
        """True when builds are served by the local scripted model."""
        return self.anthropic_api_key is None

    @property
    def resolved_database_url(self) -> str:
        url = self.database_url or self._database_url_from_parts()
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+asyncpg://" + url.split("://", 1)[1]
        return url

    def _database_url_from_parts(self) -> str:
        if self.database_host is None:
            return f"sqlite+aiosqlite:///{self.data_dir.resolve()}/cofounder.db"
        password = self.database_password.get_secret_value() if self.database_password else ""
        return URL.create(
            "postgresql+asyncpg",
            username=self.database_user,
            password=password or None,
            host=self.database_host,
            port=self.database_port,
            database=self.database_name,
        ).render_as_string(hide_password=False)

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir.resolve() / "artifacts"

    @property
    def git_dir(self) -> Path:
        return self.data_dir.resolve() / "git"

    def git_remote(self, owner: str, project: str) -> Path:
        """A project's local bare remote; under its owner's folder, so owners never share one."""
        return self.git_dir / owner / f"{project}.git"

    @property
    def model_base_url(self) -> str:
        if self.anthropic_base_url:
            return self.anthropic_base_url
        if self.offline:
            return f"http://127.0.0.1:{self.offline_model_port}"
        return "https://api.anthropic.com"

    def review(self) -> ReviewSettings | None:
        """A new build's review session, or None when builds end at their pull request."""
        if not self.review_sessions:
            return None
        budget = self.iteration_budget_usd
        return ReviewSettings(
            idle_seconds=self.review_idle_hours * 3600,
            iterations_per_run=self.review_iterations_per_run,
            iteration_budget_micro_usd=round(budget * 1_000_000) if budget else None,
            settle_seconds=self.review_settle_seconds,
        )
