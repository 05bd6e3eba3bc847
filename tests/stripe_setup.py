"""How the tests configure billing through the Stripe double: the prices it knows, the webhook
secret, and the settings (or a worker process's environment) that point at it."""

from __future__ import annotations

from pydantic import SecretStr

from cofounder.settings import Settings
from tests.doubles.stripe import StripeDouble

PLAN_PRICE = "price_partner_monthly"
USAGE_PRICE = "price_usage_metered"
WEBHOOK_SECRET = "whsec_test_double_secret"


def stripe_settings(settings: Settings, double: StripeDouble) -> Settings:
    """`settings` billing through the double."""
    return settings.model_copy(
        update={
            "stripe_secret_key": SecretStr(double.api_key),
            "stripe_webhook_secret": SecretStr(WEBHOOK_SECRET),
            "stripe_api_base": double.url,
            "stripe_price_partner_monthly": PLAN_PRICE,
            "stripe_price_usage": USAGE_PRICE,
        }
    )


def stripe_env(double: StripeDouble, meter_every_seconds: float = 1) -> dict[str, str]:
    """The same, as a worker process's environment."""
    return {
        "STRIPE_SECRET_KEY": double.api_key,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": double.url,
        "STRIPE_PRICE_PARTNER_MONTHLY": PLAN_PRICE,
        "STRIPE_PRICE_USAGE": USAGE_PRICE,
        "COFOUNDER_METER_EVERY_SECONDS": str(meter_every_seconds),
    }
