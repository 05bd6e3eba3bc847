"""Fixtures for code that talks to Stripe: the local Stripe double, knowing the plan and usage
prices the test settings name, and our adapter pointed at it (tests/stripe_setup.py has the
settings to match).

def test_checkout(stripe_double: StripeDouble, stripe_billing: StripeBilling) -> None: ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from pydantic import SecretStr

from activities.billing.stripe_api import StripeBilling
from tests.doubles.stripe import StripeDouble
from tests.stripe_setup import PLAN_PRICE, USAGE_PRICE


@pytest.fixture
def stripe_double() -> Iterator[StripeDouble]:
    """Stripe served locally, knowing the partner plan's monthly price and the usage price."""
    with StripeDouble() as double:
        double.add_price(PLAN_PRICE)
        double.add_price(USAGE_PRICE, usage_type="metered")
        yield double


@pytest_asyncio.fixture
async def stripe_billing(stripe_double: StripeDouble) -> AsyncIterator[StripeBilling]:
    """Our adapter, talking to the double through the real SDK."""
    billing = StripeBilling(SecretStr(stripe_double.api_key), stripe_double.url)
    yield billing
    await billing.aclose()
