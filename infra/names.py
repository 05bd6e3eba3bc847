"""Names other things rely on, defined once: the deploy workflow finds the cluster, the ops
task, the image repository and the stacks' outputs by them, and the stacks refer to each
other's resources by them where a cross-stack export would pin a per-version resource."""

from __future__ import annotations

from typing import Literal

TemporalAuth = Literal["api_key", "mtls", "none"]

NETWORK_STACK = "CofounderNetwork"
DATA_STACK = "CofounderData"
SECRETS_STACK = "CofounderSecrets"
REGISTRY_STACK = "CofounderRegistry"
SERVICES_STACK = "CofounderServices"
OBSERVABILITY_STACK = "CofounderObservability"
CI_STACK = "CofounderCi"

REPOSITORY_NAME = "cofounder"
CLUSTER_NAME = "cofounder"
OPS_FAMILY = "cofounder-ops"
API_CONTAINER = "api"
WORKER_CONTAINER = "worker"
OPS_CONTAINER = "ops"
API_PORT = 8000
HEALTH_PATH = "/healthz"  # api/routes/health.py: liveness, not the dependencies (/readyz)

# Worker Deployment Versioning: every worker says it belongs to this deployment, with its
# image's build id (cofounder/settings.py: deployment_name, build_id).
DEPLOYMENT_NAME = "cofounder"
# Where the processes put their metrics (COFOUNDER_CLOUDWATCH_NAMESPACE, cofounder/cloudwatch.py).
METRICS_NAMESPACE = "cofounder"
ARTIFACTS_PREFIX = "artifacts"
DATABASE_NAME = "cofounder"
DATABASE_USER = "cofounder"
REDIS_PORT = 6379

# The secret settings of .env.example, each its own Secrets Manager secret, injected into the
# containers as ECS secrets. REDIS_URL (it carries the cache's auth token) is made by the data
# stack and DATABASE_PASSWORD comes from the database's generated secret.
APP_SECRETS = (
    "ANTHROPIC_API_KEY",
    "E2B_API_KEY",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "GITHUB_PRIVATE_KEY",
    "GITHUB_WEBHOOK_SECRET",
    "CLERK_SECRET_KEY",
)
# Secret settings of .env.example the stacks do not deploy: project memory stays in the RDS
# database here (its full-text search), and Mem0's platform is an opt-in they leave out.
UNDEPLOYED_SECRETS = ("MEM0_API_KEY",)
# temporalio.envconfig's own variables, by how the workers authenticate to Temporal.
TEMPORAL_SECRETS: dict[TemporalAuth, tuple[str, ...]] = {
    "api_key": ("TEMPORAL_API_KEY",),
    "mtls": ("TEMPORAL_TLS_CLIENT_CERT_DATA", "TEMPORAL_TLS_CLIENT_KEY_DATA"),
    "none": (),
}
REDIS_URL = "REDIS_URL"
DATABASE_PASSWORD = "DATABASE_PASSWORD"


def secret_names(auth: TemporalAuth) -> tuple[str, ...]:
    """Every secret setting a container gets, for this way of reaching Temporal."""
    return (*APP_SECRETS, *TEMPORAL_SECRETS[auth], REDIS_URL, DATABASE_PASSWORD)


def worker_service_name(build_id: str) -> str:
    """The ECS service running one worker version (the observability stack finds it by it)."""
    return f"cofounder-worker-{build_id}"


def worker_family(build_id: str) -> str:
    return f"cofounder-worker-{build_id}"
