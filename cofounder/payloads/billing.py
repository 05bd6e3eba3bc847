"""What the metering workflow and its activity exchange: which ledger rows to send to Stripe as
billing meter events, and what became of them."""

from __future__ import annotations

from pydantic import BaseModel, Field

# Rows one activity sends; each is one request to Stripe, so a batch takes seconds.
METER_BATCH_ROWS = 100


class MeterBatch(BaseModel):
    """Send up to `limit` due ledger rows, oldest first. `retry_refused`: rows Stripe refused
    before are sent again too (once per metering run: the refusal may have been fixed)."""

    limit: int = Field(default=METER_BATCH_ROWS, ge=1, le=1000)
    retry_refused: bool = True


class MeterReport(BaseModel):
    """One batch: rows Stripe accepted now, rows it already held (their identifier was sent
    before, e.g. by a worker that died before marking them), rows it refused, and how many
    rows are still due (not counting refused ones)."""

    accepted: int = 0
    duplicates: int = 0
    refused: int = 0
    remaining: int = 0

    @property
    def sent(self) -> int:
        """Rows settled by this batch, whoever sent them first."""
        return self.accepted + self.duplicates


class MeteringInput(BaseModel):
    batch_rows: int = Field(default=METER_BATCH_ROWS, ge=1, le=1000)


class MeteringResult(BaseModel):
    """A metering run's batches summed."""

    batches: int = 0
    accepted: int = 0
    duplicates: int = 0
    refused: int = 0
    remaining: int = 0

    def add(self, report: MeterReport) -> MeteringResult:
        return MeteringResult(
            batches=self.batches + 1,
            accepted=self.accepted + report.accepted,
            duplicates=self.duplicates + report.duplicates,
            refused=self.refused + report.refused,
            remaining=report.remaining,
        )
