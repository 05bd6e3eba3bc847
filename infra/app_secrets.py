"""One Secrets Manager secret per secret setting (.env.example), named `cofounder/<VARIABLE>`.

The stack creates each with a placeholder value; an operator puts the real one once
(`aws secretsmanager put-secret-value --secret-id cofounder/ANTHROPIC_API_KEY ...`). Until
then a process refuses to start, naming the variable (cofounder/settings_checks.py refuses
placeholders in production). Later deploys leave the value alone: CloudFormation rewrites a
secret only when its template changes, so these definitions must stay as they are.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.names import APP_SECRETS, TEMPORAL_SECRETS, TemporalAuth

PLACEHOLDER = "changeme"  # one of the placeholders production refuses


def secret_id(variable: str) -> str:
    return f"cofounder/{variable}"


class SecretsStack(cdk.Stack):
    """The app's secrets, by variable name in `self.secrets`."""

    def __init__(self, scope: Construct, id: str, *, temporal_auth: TemporalAuth, **kwargs: Any):
        super().__init__(scope, id, **kwargs)
        self.secrets: dict[str, secretsmanager.ISecret] = {
            variable: self._secret(variable)
            for variable in (*APP_SECRETS, *TEMPORAL_SECRETS[temporal_auth])
        }

    def _secret(self, variable: str) -> secretsmanager.Secret:
        secret = secretsmanager.Secret(
            self,
            variable,
            secret_name=secret_id(variable),
            description=f"cofounder: {variable}",
            # A placeholder, not a secret: written in the template on purpose.
            secret_string_value=cdk.SecretValue.unsafe_plain_text(PLACEHOLDER),
            # Deleting the stack (or switching temporal_auth) must not lose a real key.
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        # Weak references (Fn::GetStackOutput, no export): switching temporal_auth drops
        # a secret here that the services stack still names until it is deployed next.
        cdk.CrossStackReferences.of(secret).produce(cdk.ReferenceStrength.WEAK)
        return secret
