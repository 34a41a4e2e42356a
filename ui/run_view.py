"""What the Playground shows of the latest run: its cells, which still stream, blind labels."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field

from playground.records import Result, Run


@dataclass
class RunView:
    """A run being shown in the Playground grid (rows variants, columns models)."""

    run: Run
    pending: set[str] = field(default_factory=set)  # not started yet
    finished: set[str] = field(default_factory=set)  # streamed to the end and saved
    model_order: list[str] = field(default_factory=list)
    blind: bool = False
    revealed: bool = False

    @classmethod
    def start(cls, run: Run, blind: bool, rng: random.Random | None = None) -> RunView:
        """A view whose every cell still has to stream; blind mode shuffles the columns."""
        order: list[str] = []
        for result in run.results:
            if result.model_id not in order:
                order.append(result.model_id)
        if blind:
            (rng or random.Random()).shuffle(order)
        return cls(run=run, pending={r.id for r in run.results}, model_order=order, blind=blind)

    @property
    def variants(self) -> list[str]:
        """Variant names in the order they were written."""
        names: list[str] = []
        for result in self.run.results:
            if result.variant_name not in names:
                names.append(result.variant_name)
        return names

    def row(self, variant: str) -> list[Result]:
        """The cells of one variant, in column order."""
        cells = [r for r in self.run.results if r.variant_name == variant]
        return sorted(cells, key=lambda r: self.model_order.index(r.model_id))

    def cell(self, result_id: str) -> Result:
        """One cell by result id."""
        return next(r for r in self.run.results if r.id == result_id)

    def position(self, result_id: str) -> int:
        """A cell's index in the run, as stored."""
        return next(i for i, r in enumerate(self.run.results) if r.id == result_id)

    @property
    def complete(self) -> bool:
        """True once every cell has streamed to the end."""
        return len(self.finished) == len(self.run.results)

    def interrupted(self, result_id: str) -> bool:
        """True for a cell that started but was cut off by a rerun before it finished."""
        return result_id not in self.pending and result_id not in self.finished

    @property
    def hidden(self) -> bool:
        """True while model names must stay hidden."""
        return self.blind and not self.revealed

    def label(self, result: Result) -> str:
        """The column heading: the model id, or 'Answer A' while blind."""
        if not self.hidden:
            return result.model_id
        index = self.model_order.index(result.model_id)
        letters = string.ascii_uppercase
        return f"Answer {letters[index % 26]}{'' if index < 26 else index // 26}"

    def labels(self) -> dict[str, str]:
        """Result id -> display label, for votes."""
        return {r.id: self.label(r) for r in self.run.results}
