"""Run a flow spec headless: the same rendering, model lookup and measurements as the Playground."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from playground.config import Settings, load_settings
from playground.errors import TemplateError
from playground.flows.endpoints import endpoint_access, same_endpoint
from playground.flows.spec import (
    FlowSpec,
    InputSpec,
    check_templates,
    few_shot_of,
    template_fields,
)
from playground.models.base import ChatModel, Message, ModelParams
from playground.models.registry import get_model, model_for_endpoint_url, provider_of
from playground.prompts import render
from playground.records import Result, RetrievalSettings, Run
from playground.runner import CellFinisher, MeasuredStream

log = logging.getLogger(__name__)

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def coerce_input(name: str, spec: InputSpec, value: object) -> object:
    """Turn a given input (often text from the command line) into the declared type."""
    kind = spec.type
    if kind == "string":
        return value if isinstance(value, str) else str(value)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
    elif kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
    elif kind == "number":
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                number = float(value.strip())
        # 1e309, inf and NaN (JSON bodies may carry NaN) are not numbers a prompt can use
        if number is not None and math.isfinite(number):
            return number
        if number is not None:
            raise TemplateError(
                f"Input '{name}' is {_shown(value)}, not a finite number; give an ordinary number."
            )
    raise TemplateError(f"Input '{name}' is {_shown(value)}, which is not a {kind}; give a {kind}.")


def _shown(value: object) -> str:
    # a value sent from outside may be a megabyte long: the sentence shows its start
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


class Flow:
    """A loaded flow spec that runs headless: `Flow.load(path_or_ref).run(**inputs)`."""

    def __init__(
        self, spec: FlowSpec, settings: Settings | None = None, source: str | None = None
    ) -> None:
        self.spec = spec
        self.settings = settings or load_settings()
        self.source = source

    @classmethod
    def load(cls, path_or_ref: str | Path, settings: Settings | None = None) -> Flow:
        """Load a spec file, or `name`, `name@3`, `name@production` from the registry."""
        from playground.flows.registry import FlowRegistry

        settings = settings or load_settings()
        spec, source = FlowRegistry(settings).resolve(path_or_ref)
        return cls(spec, settings, source)

    @property
    def retrieval(self) -> RetrievalSettings | None:
        """The retrieval settings as the runner and store know them."""
        r = self.spec.retrieval
        if r is None:
            return None
        return RetrievalSettings(
            store=r.store, top_k=r.top_k, query=r.query, context_variable=r.context_variable
        )

    def variables(self, given: Mapping[str, object]) -> dict[str, object]:
        """Inputs with defaults filled in and types checked; unknown or missing ones refused."""
        declared = self.spec.inputs
        unknown = [k for k in given if k not in declared]
        if unknown:
            known = ", ".join(declared) or "no inputs"
            raise TemplateError(
                f"Flow {self.spec.name} has no input '{unknown[0]}'; it takes {known}."
            )
        values: dict[str, object] = {}
        for name, spec in declared.items():
            if name in given and given[name] is not None:
                values[name] = coerce_input(name, spec, given[name])
            elif spec.default is not None:
                values[name] = spec.default
            else:
                raise TemplateError(
                    f"Input '{name}' is required by flow {self.spec.name}; "
                    f"pass --input {name}=... (or {name}=... in Python)."
                )
        return values

    def render(self, variables: Mapping[str, object]) -> list[Message]:
        """Render every message template in the sandbox, naming the message on failure."""
        return [
            Message(
                role=m.role,
                content=render(m.content, variables, f"flow message {i} ({m.role})"),
            )
            for i, m in enumerate(self.spec.prompt.messages)
        ]

    def check(self) -> None:
        """What `flow validate` checks beyond the schema: templates render in the sandbox and
        the endpoint's key may go to its URL on this machine (SpecError naming the problem)."""
        check_templates(self.spec)
        endpoint_access(self.spec, self.settings)

    def model(self) -> ChatModel:
        """The model the spec names: from config, or at the endpoint URL the spec carries.

        A key goes only where this machine declared it (see playground.flows.endpoints).
        """
        spec = self.spec.model
        access = endpoint_access(self.spec, self.settings)
        if access is None:
            return get_model(spec.id, self.settings)
        configured = provider_of(spec.id, self.settings).endpoint
        if configured is not None and same_endpoint(configured.base_url, access.base_url):
            return get_model(spec.id, self.settings)  # same server: use its timeouts and key
        return model_for_endpoint_url(
            spec.id, access.base_url, access.api_key_env, access.timeout, access.max_retries
        )

    def execute(self, inputs: Mapping[str, object] | None = None, source: str = "flow") -> Run:
        """Run the flow once; the returned Run holds variables, retrieval and one Result.

        Input, template and retrieval problems raise PlaygroundError before any model call;
        a failing model is recorded in `result.error`, as in the Playground.
        """
        run, stream = self.start(inputs, source)
        stream.drain()
        return run

    def start(
        self,
        inputs: Mapping[str, object] | None = None,
        source: str = "flow",
        params: ModelParams | None = None,
    ) -> tuple[Run, MeasuredStream]:
        """Prepare one run and return it with the stream that fills its Result when iterated.

        For callers that stream the answer (the served API); `execute` drains it. `params`
        replaces the spec's sampling parameters (e.g. a served call's capped max_tokens).
        """
        variables = self.variables(inputs or {})
        run = Run(
            source=source,
            variables={k: str(v) for k, v in variables.items()},
            flow_name=self.spec.name,
            flow_version=self.spec.version,
        )
        retrieval = self.retrieval
        retrieved_ids: list[str] | None = None
        if retrieval is not None:
            # Imported only here: retrieval pulls in the embedder and the vector store.
            from playground.rag.retrieval import retrieve_for_run

            outcome = retrieve_for_run(self.settings, retrieval, variables)
            variables[retrieval.context_variable] = outcome.context
            run.retrieval = retrieval
            run.retrieved = list(outcome.retrieved)
            retrieved_ids = list(outcome.chunk_ids)
        messages = self.render(variables)
        model = self.model()
        system, user = template_fields(self.spec)
        result = Result(
            model_id=self.spec.model.id,
            messages=messages,
            params=params or self.spec.model.params,
            variant_name=self.spec.ref,
            system_template=system,
            user_template=user,
            examples=few_shot_of(self.spec) or [],
            retrieval=retrieval,
            chunk_ids=retrieved_ids,
            response_format=self.spec.model.structured_format,
        )
        run.results = [result]
        return run, MeasuredStream(model, result, self.settings.price_for(result.model_id))

    def run(self, **inputs: Any) -> Result:
        """Run the flow with these inputs and return the measured Result."""
        return self.execute(inputs).results[0]


def run_and_record(
    flow: Flow, inputs: Mapping[str, object], source: str = "flow", save: bool = True
) -> Run:
    """Execute a flow, score and moderate its answer like the app does, and save the run."""
    run = flow.execute(inputs, source=source)
    record_run(flow.settings, run, save)
    return run


def record_run(settings: Settings, run: Run, save: bool = True) -> None:
    """Score and moderate a finished run like the app does, then save it (when asked)."""
    finisher = CellFinisher(settings, run)
    for position, result in enumerate(run.results):
        notes = finisher.finish(result, position) if save else finisher.check([result])
        for problem in notes:
            log.warning(problem)  # a check that failed must not lose the answer
