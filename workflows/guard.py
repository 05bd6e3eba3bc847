"""The agent loop's guard: an agent repeating the same tool calls with the same results is
told so once; if it goes on, its step fails instead of spending the budget on nothing."""

from __future__ import annotations

from collections.abc import Sequence

# The same calls with the same results this many times in a row is pointed out to the model.
REPEATS_NOTED = 3
NOTE = (
    "Note from the build: your last {n} turns made the same tool calls with the same results. "
    "Repeating them will not change the outcome; try a different approach, or finish."
)


class LoopGuard:
    def __init__(self, last: Sequence[str] | None = None, repeats: int = 0) -> None:
        self._last: tuple[str, ...] | None = None if last is None else tuple(last)
        self.repeats = repeats

    @property
    def last(self) -> list[str] | None:
        """The last turn's signatures, to carry into a continued run."""
        return None if self._last is None else list(self._last)

    def observe(self, signatures: Sequence[str]) -> str | None:
        """Record one turn's tool calls (by signature); the note to give the model, if any."""
        turn = tuple(signatures)
        self.repeats = self.repeats + 1 if turn == self._last else 1
        self._last = turn
        return NOTE.format(n=self.repeats) if self.repeats == REPEATS_NOTED else None

    @property
    def stuck(self) -> bool:
        """Still repeating after the note: the step should fail."""
        return self.repeats > REPEATS_NOTED

    def reason(self) -> str:
        return (
            f"the coder repeated the same tool calls with the same results {self.repeats} times "
            "in a row, after being told"
        )
