"""Usage sent to Stripe as billing meter events, on SQLite and PostgreSQL, against the Stripe
double: each due ledger row once, with its idempotency key as the identifier; nothing of users
Stripe does not bill; outages leave rows pending, refusals leave the rest going."""

from __future__ import annotations

import dataclasses
from datetime import UTC, timedelta

import pytest
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.billing.metering import MeterActivities, pending_meter_events
from activities.billing.stripe_api import StripeBilling
from cofounder.db.models import utcnow
from cofounder.payloads.billing import MeterBatch, MeterReport
from cofounder.settings import Settings
from tests.doubles.stripe import StripeDouble
from tests.metering_rows import Sessions, add_rows, add_user, ledger

# `stripe_double` and `stripe_billing` (until conftest.py lists it with the other plugins)

METER_EVENTS = "POST /v1/billing/meter_events"
CUSTOMER = "cus_alice"


@pytest.fixture
def meter(db: Sessions, stripe_billing: StripeBilling, settings: Settings) -> MeterActivities:
    return MeterActivities(db, stripe_billing, settings)


async def pending(db: Sessions, owner: str = "alice") -> tuple[int, int]:
    async with db() as session:
        return await pending_meter_events(session, owner)


async def test_each_billed_row_is_sent_once_with_its_key_as_identifier(
    db: Sessions, meter: MeterActivities, stripe_double: StripeDouble, settings: Settings
) -> None:
    since = utcnow() - timedelta(hours=1)
    await add_user(db, "alice", CUSTOMER, metered_since=since)
    await add_user(db, "bob")  # no customer: Stripe bills him nothing
    await add_user(db, "carol", "cus_carol")  # a customer, but nothing billed yet
    before = await add_rows(db, "alice", 2, start=since - timedelta(minutes=5))
    billed = await add_rows(db, "alice", 5)
    unbilled = await add_rows(db, "bob", 3) + await add_rows(db, "carol", 2)
    assert await pending(db) == (5, 5 * 1000 + 10)

    report = await meter.send_meter_events(MeterBatch())
    assert report == MeterReport(accepted=5, remaining=0)
    assert list(stripe_double.state.meter_events) == billed  # oldest first
    for row in await ledger(db, billed):
        event = stripe_double.state.meter_events[row.idempotency_key]
        assert (event.customer, event.value, event.event_name) == (
            CUSTOMER,
            row.cost_micro_usd,
            settings.stripe_meter_event_name,
        )
        assert event.timestamp == int(row.created_at.replace(tzinfo=UTC).timestamp())
        assert row.metered_at is not None and row.meter_error is None
    assert all(row.metered_at is None for row in await ledger(db, before + unbilled))
    assert await pending(db) == (0, 0)

    assert await meter.send_meter_events(MeterBatch()) == MeterReport()
    assert stripe_double.requests(METER_EVENTS) == 5


async def test_an_outage_leaves_rows_pending_and_the_next_run_sends_them(
    db: Sessions, meter: MeterActivities, stripe_double: StripeDouble
) -> None:
    await add_user(db, "alice", CUSTOMER, metered_since=utcnow() - timedelta(hours=1))
    keys = await add_rows(db, "alice", 5)
    assert await meter.send_meter_events(MeterBatch(limit=2)) == MeterReport(
        accepted=2, remaining=3
    )
    stripe_double.fail_next("/v1/billing/meter_events", status=503)
    with pytest.raises(ApplicationError) as failed:
        await meter.send_meter_events(MeterBatch())
    assert not failed.value.non_retryable and failed.value.type == "APIError"
    assert await pending(db) == (3, 3 * 1000 + 2 + 3 + 4)
    assert all(row.meter_error is None for row in await ledger(db, keys))

    assert await meter.send_meter_events(MeterBatch()) == MeterReport(accepted=3)
    assert set(stripe_double.state.meter_events) == set(keys)
    assert stripe_double.meter_totals() == {CUSTOMER: 5 * 1000 + 10}


async def test_a_refused_row_keeps_its_error_and_the_others_go(
    db: Sessions, meter: MeterActivities, stripe_double: StripeDouble
) -> None:
    # Stripe takes no event more than 35 days old: this row can never be sent.
    since = utcnow() - timedelta(days=41)
    await add_user(db, "alice", CUSTOMER, metered_since=since)
    [old] = await add_rows(db, "alice", 1, start=since + timedelta(days=1))
    keys = await add_rows(db, "alice", 3)
    report = await meter.send_meter_events(MeterBatch())
    assert report == MeterReport(accepted=3, refused=1, remaining=0)
    [row] = await ledger(db, [old])
    assert row.metered_at is None and row.meter_error is not None
    assert "Timestamp" in row.meter_error
    assert set(stripe_double.state.meter_events) == set(keys)
    assert await pending(db) == (1, 1000)

    # Within a run it is not asked again; the next run's first batch asks once more.
    asked = stripe_double.requests(METER_EVENTS)
    assert await meter.send_meter_events(MeterBatch(retry_refused=False)) == MeterReport()
    assert await meter.send_meter_events(MeterBatch()) == MeterReport(refused=1)
    assert stripe_double.requests(METER_EVENTS) == asked + 1


async def test_a_row_stripe_already_holds_is_marked_without_a_second_event(
    db: Sessions,
    meter: MeterActivities,
    stripe_double: StripeDouble,
    stripe_billing: StripeBilling,
) -> None:
    await add_user(db, "alice", CUSTOMER, metered_since=utcnow() - timedelta(hours=1))
    keys = await add_rows(db, "alice", 3)
    # What a worker that died after Stripe took the row, before marking it, leaves behind.
    [first] = await ledger(db, keys[:1])
    at = int(first.created_at.replace(tzinfo=UTC).timestamp())
    await stripe_billing.send_meter_event("cofounder_usage", CUSTOMER, 1000, keys[0], at, "x")
    assert await meter.send_meter_events(MeterBatch()) == MeterReport(accepted=2, duplicates=1)
    assert stripe_double.meter_totals() == {CUSTOMER: 3 * 1000 + 3}
    assert all(row.metered_at is not None for row in await ledger(db, keys))


async def test_a_5xx_stripe_keeps_under_its_key_does_not_pin_the_row(
    db: Sessions, meter: MeterActivities, stripe_double: StripeDouble
) -> None:
    await add_user(db, "alice", CUSTOMER, metered_since=utcnow() - timedelta(hours=1))
    keys = await add_rows(db, "alice", 2)
    stripe_double.fail_next("/v1/billing/meter_events", status=500, kept=True)
    env = ActivityEnvironment()
    with pytest.raises(ApplicationError):
        await env.run(meter.send_meter_events, MeterBatch())
    env.info = dataclasses.replace(env.info, attempt=2)  # Temporal's retry
    assert await env.run(meter.send_meter_events, MeterBatch()) == MeterReport(accepted=2)
    assert set(stripe_double.state.meter_events) == set(keys)


async def test_a_refused_key_fails_the_batch_and_blames_no_row(
    db: Sessions, stripe_double: StripeDouble, settings: Settings
) -> None:
    await add_user(db, "alice", CUSTOMER, metered_since=utcnow() - timedelta(hours=1))
    keys = await add_rows(db, "alice", 2)
    wrong = StripeBilling(SecretStr("sk_test_revoked_0000000000"), stripe_double.url)
    with pytest.raises(ApplicationError) as failed:
        await MeterActivities(db, wrong, settings).send_meter_events(MeterBatch())
    assert failed.value.non_retryable and failed.value.type == "AuthenticationError"
    assert all(row.meter_error is None for row in await ledger(db, keys))
    await wrong.aclose()
