"""What a run will cost before it is sent, when the selected models have configured prices.

The prompt side is estimated from the rendered messages (about four characters a token, as
for servers that report no usage); the answer side is bounded by each model's max_tokens, so
the figure is an upper bound. Nothing here touches Streamlit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from playground.config import Settings
from playground.errors import PlaygroundError
from playground.formatting import usd
from playground.models.base import Usage
from playground.prompts import render
from playground.records import Draft
from playground.runner import cost_usd, estimate_tokens


@dataclass
class CostEstimate:
    """An upper bound of a run's cost over the priced models, and the models without a price."""

    usd: float = 0.0
    priced: list[str] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)
    without_context: bool = False

    def sentence(self) -> str:
        """'Estimated cost: up to $0.000420 for openai/gpt-4o-mini (...).', shown under Run."""
        text = (
            f"Estimated cost: up to {usd(self.usd)} for {', '.join(self.priced)} "
            "(prompt tokens estimated, answers at their max_tokens"
            + (", retrieved context not counted)" if self.without_context else ")")
        )
        if self.unpriced:
            text += f"; price unknown for {', '.join(self.unpriced)}"
        return text + "."


def estimate_run_cost(draft: Draft, settings: Settings) -> CostEstimate | None:
    """The run's cost upper bound, or None when no selected model has a price (or a template
    does not render yet: the Run button will say why)."""
    priced = [m for m in draft.model_ids if m in settings.prices]
    if not priced:
        return None
    estimate = CostEstimate(priced=priced)
    # models on this machine cost nothing; any other without a price is unknown, not free
    estimate.unpriced = [
        m for m in draft.model_ids if m not in settings.prices and not m.startswith("local/")
    ]
    variables: dict[str, object] = dict(draft.variables)
    if draft.retrieval is not None:  # chunks are not known before retrieval runs
        variables[draft.retrieval.context_variable] = "(retrieved context)"
        estimate.without_context = True
    for variant in draft.variants:
        try:
            text = render(variant.system, variables) + render(variant.user, variables)
        except PlaygroundError:
            return None
        prompt_tokens = estimate_tokens(text)
        for model_id in priced:
            params = draft.params.get(model_id)
            answer_tokens = params.max_tokens if params is not None else 256
            usage = Usage(prompt_tokens, answer_tokens, estimated=True)
            estimate.usd += cost_usd(usage, settings.prices[model_id])
    return estimate
