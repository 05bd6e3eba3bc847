"""The CDK app: `python3 infra/app.py image_tag=SHA github_repo=OWNER/NAME
temporal_address=HOST:PORT temporal_auth=api_key [KEY=VALUE ...]` synthesizes every stack
into infra/cdk.out; `cdk deploy -c KEY=VALUE ...` (run in infra/, see cdk.json) deploys.
The context keys are infra/config.py's."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# Run as a script, Python puts infra/ itself first on the path, where these modules' plain
# names could shadow others; `infra` is imported from the repository's root instead.
_INFRA = Path(__file__).resolve().parent
sys.path[:] = [str(_INFRA.parent), *(p for p in sys.path if Path(p or ".").resolve() != _INFRA)]

import aws_cdk as cdk  # noqa: E402

from infra import names  # noqa: E402
from infra.app_secrets import SecretsStack  # noqa: E402
from infra.ci import CiStack  # noqa: E402
from infra.config import from_context  # noqa: E402
from infra.data import DataStack  # noqa: E402
from infra.network import NetworkStack  # noqa: E402
from infra.observability import ObservabilityStack  # noqa: E402
from infra.registry import RegistryStack  # noqa: E402
from infra.services import ServicesStack  # noqa: E402

# CloudFormation's own template rules as errors, not warnings: a synth that passes them is
# not refused at deploy for a malformed property.
VALIDATE = "@aws-cdk/core:validateAgainstDefaultRules"
# Exports between the stacks: a stack in use cannot be deleted from under another (the
# secrets stack weakens its own, see app_secrets.py).
REFERENCES = "@aws-cdk/core:defaultCrossStackReferences"


def build_app(context: Mapping[str, Any], outdir: str | None = None) -> cdk.App:
    """Every stack of one deployment, as the context describes it (ValueError if it is
    incomplete). Tests synthesize it in process; the cdk CLI runs this file."""
    app = cdk.App(context={VALIDATE: True, REFERENCES: "strong", **context}, outdir=outdir)
    config = from_context(app.node.try_get_context)
    env = cdk.Environment(account=config.account, region=config.region)
    network = NetworkStack(app, names.NETWORK_STACK, env=env)
    data = DataStack(app, names.DATA_STACK, network=network, env=env)
    secrets = SecretsStack(app, names.SECRETS_STACK, temporal_auth=config.temporal_auth, env=env)
    registry = RegistryStack(app, names.REGISTRY_STACK, env=env)
    services = ServicesStack(
        app,
        names.SERVICES_STACK,
        config=config,
        network=network,
        data=data,
        secrets=secrets,
        env=env,
    )
    services.add_stack_dependency(registry)  # it pulls from the repository, found by name
    ObservabilityStack(
        app, names.OBSERVABILITY_STACK, config=config, services=services, data=data, env=env
    )
    CiStack(app, names.CI_STACK, config=config, env=env)
    return app


def main(argv: Sequence[str]) -> None:
    context = dict(arg.split("=", 1) for arg in argv if "=" in arg)
    # The cdk CLI says where to write (CDK_OUTDIR); alone, next to cdk.json as the CLI would.
    outdir = None if "CDK_OUTDIR" in os.environ else str(_INFRA / "cdk.out")
    try:
        app = build_app(context, outdir)
    except ValueError as err:
        sys.exit(f"error: {err}")
    app.synth()


if __name__ == "__main__":
    main(sys.argv[1:])
