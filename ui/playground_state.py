"""The Playground editor's widget keys and their mapping to and from a Draft.

Kept apart from the page so that loading a run or a flow into the editor, and reading the
editor back, are plain functions over a mapping (tested without a browser).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from playground.models.base import Message, ModelParams
from playground.prompts import find_variables
from playground.records import Draft, PromptVariant, RetrievalSettings

MODELS = "pg_models"
VARIANT_IDS = "pg_variant_ids"
NEXT_VARIANT = "pg_next_variant"
USE_RAG = "pg_use_rag"
STORE = "pg_store"
TOP_K = "pg_top_k"
QUERY = "pg_query"
BLIND = "pg_blind"
ACTIVE_VARIANT = "pg_active_variant"  # the variant whose tab the user last edited

# Streamlit forgets a widget's value on a page that does not draw it; the editor must survive
# a visit to another page (whatever ran there, fragments included), so its widgets keep theirs.
KEEP = "session"

DEFAULT_SYSTEM = "You are a helpful assistant. Answer in two sentences."
DEFAULT_USER = "{{ question }}"
DEFAULT_QUESTION = "Why is the sky blue?"


def variant_key(vid: int, part: str) -> str:
    """Widget key of one part (name, note, system, user) of variant `vid`."""
    return f"pg_v{vid}_{part}"


def example_key(vid: int, eid: int, part: str) -> str:
    """Widget key of one part (role, content) of few-shot message `eid` of variant `vid`."""
    return f"pg_v{vid}_ex{eid}_{part}"


def example_ids(state: Mapping[str, Any], vid: int) -> list[int]:
    """Ids of variant `vid`'s few-shot messages, in order."""
    return list(state.get(variant_key(vid, "examples")) or [])


def _set_examples(state: MutableMapping[str, Any], vid: int, examples: list[Message]) -> None:
    for eid in example_ids(state, vid):
        state.pop(example_key(vid, eid, "role"), None)
        state.pop(example_key(vid, eid, "content"), None)
    for eid, message in enumerate(examples):
        state[example_key(vid, eid, "role")] = message.role
        state[example_key(vid, eid, "content")] = message.content
    state[variant_key(vid, "examples")] = list(range(len(examples)))
    state[variant_key(vid, "next_example")] = len(examples)


def add_example(state: MutableMapping[str, Any], vid: int) -> int:
    """Add a few-shot message to variant `vid`: a user message, or an assistant one after a
    user message (so that adding twice makes one example pair); return its id."""
    ids = example_ids(state, vid)
    eid = int(state.get(variant_key(vid, "next_example")) or len(ids))
    last_role = state.get(example_key(vid, ids[-1], "role")) if ids else "assistant"
    state[example_key(vid, eid, "role")] = "assistant" if last_role == "user" else "user"
    state[example_key(vid, eid, "content")] = ""
    state[variant_key(vid, "examples")] = [*ids, eid]
    state[variant_key(vid, "next_example")] = eid + 1
    state[ACTIVE_VARIANT] = vid
    return eid


def remove_example(state: MutableMapping[str, Any], vid: int, eid: int) -> None:
    """Remove one few-shot message of variant `vid`."""
    state[variant_key(vid, "examples")] = [i for i in example_ids(state, vid) if i != eid]
    state.pop(example_key(vid, eid, "role"), None)
    state.pop(example_key(vid, eid, "content"), None)
    state[ACTIVE_VARIANT] = vid


def examples_from_state(state: Mapping[str, Any], vid: int) -> list[Message]:
    """Variant `vid`'s few-shot messages as the editor holds them (unchecked)."""
    return [
        Message(
            role=str(state.get(example_key(vid, eid, "role")) or "user"),  # type: ignore[arg-type]
            content=str(state.get(example_key(vid, eid, "content")) or ""),
        )
        for eid in example_ids(state, vid)
    ]


def var_key(name: str) -> str:
    """Widget key of a template variable."""
    return f"pg_var_{name}"


def param_key(model_id: str, name: str) -> str:
    """Widget key of one parameter of one model."""
    return f"pg_p_{model_id}_{name}"


def init_state(state: MutableMapping[str, Any], default_model: str) -> None:
    """Give a fresh session one variant with a sample prompt and the default model."""
    if VARIANT_IDS in state:
        return
    state[VARIANT_IDS] = [0]
    state[NEXT_VARIANT] = 1
    state[variant_key(0, "name")] = "default"
    state[variant_key(0, "note")] = ""
    state[variant_key(0, "system")] = DEFAULT_SYSTEM
    state[variant_key(0, "user")] = DEFAULT_USER
    state[var_key("question")] = DEFAULT_QUESTION
    state[MODELS] = [default_model]


def add_variant(state: MutableMapping[str, Any]) -> int:
    """Add a variant that starts as a copy of the last one; return its id."""
    ids: list[int] = list(state[VARIANT_IDS])
    vid = int(state[NEXT_VARIANT])
    last = ids[-1]
    state[variant_key(vid, "name")] = f"variant {len(ids) + 1}"
    state[variant_key(vid, "note")] = ""
    state[variant_key(vid, "system")] = state.get(variant_key(last, "system"), "")
    state[variant_key(vid, "user")] = state.get(variant_key(last, "user"), "")
    _set_examples(state, vid, examples_from_state(state, last))
    state[VARIANT_IDS] = [*ids, vid]
    state[NEXT_VARIANT] = vid + 1
    state[ACTIVE_VARIANT] = vid  # a new variant opens in its own tab
    return vid


def remove_variant(state: MutableMapping[str, Any], vid: int) -> None:
    """Remove a variant (the last one always stays)."""
    old = list(state[VARIANT_IDS])
    ids = [i for i in old if i != vid]
    if ids:
        state[VARIANT_IDS] = ids
        # the tab next to the removed one opens, as closing a browser tab does
        state[ACTIVE_VARIANT] = ids[min(old.index(vid), len(ids) - 1)]


def focus_variant(state: MutableMapping[str, Any], vid: int) -> None:
    """Remember the variant being edited, so that its tab stays open when its name changes."""
    state[ACTIVE_VARIANT] = vid


def variant_tab_labels(state: Mapping[str, Any]) -> list[str]:
    """One tab label per variant, made unique (two variants may share a name)."""
    labels: list[str] = []
    for vid in state.get(VARIANT_IDS, [0]):
        name = str(state.get(variant_key(vid, "name")) or "").strip() or f"variant {vid + 1}"
        label, n = name, 2
        while label in labels:
            label, n = f"{name} ({n})", n + 1
        labels.append(label)
    return labels


def active_tab(state: Mapping[str, Any], labels: list[str]) -> str:
    """The label of the tab to show open: the variant last edited (or added), else the first.

    Streamlit draws tabs whose labels changed as new tabs, opened at their default: without
    this a rename would jump back to the first tab and the next keystrokes land there.
    """
    ids = list(state.get(VARIANT_IDS, [0]))
    active = state.get(ACTIVE_VARIANT)
    return labels[ids.index(active)] if active in ids else labels[0]


def variants_from_state(state: Mapping[str, Any]) -> list[PromptVariant]:
    """The prompt variants as the editor holds them."""
    variants = []
    for vid in state.get(VARIANT_IDS, [0]):
        name = str(state.get(variant_key(vid, "name")) or "").strip() or f"variant {vid + 1}"
        variants.append(
            PromptVariant(
                name=name,
                system=str(state.get(variant_key(vid, "system")) or ""),
                user=str(state.get(variant_key(vid, "user")) or ""),
                note=str(state.get(variant_key(vid, "note")) or ""),
                examples=examples_from_state(state, vid),
            )
        )
    return variants


def template_variables(state: Mapping[str, Any]) -> list[str]:
    """Variables used by any variant's templates (and the retrieval query), in order."""
    sources: list[str] = []
    for variant in variants_from_state(state):
        sources += [variant.system, *(m.content for m in variant.examples), variant.user]
    if state.get(USE_RAG):
        sources.append(str(state.get(QUERY) or ""))
    return find_variables(*sources)


def broken_template_notes(state: Mapping[str, Any]) -> list[str]:
    """Why variable fields are missing: one note per template that does not parse."""
    from playground.errors import TemplateError
    from playground.prompts import check_syntax

    notes: list[str] = []
    for variant in variants_from_state(state):
        parts = [("system message", variant.system)]
        parts += [
            (f"few-shot message {i} ({m.role})", m.content)
            for i, m in enumerate(variant.examples, start=1)
        ]
        parts.append(("user message", variant.user))
        for part, source in parts:
            try:
                check_syntax(source, part)
            except TemplateError as exc:
                notes.append(
                    f"The variables of variant “{variant.name}” are not shown while its {part} "
                    f"is broken. {exc}"
                )
    return notes


def params_from_state(state: Mapping[str, Any], model_id: str) -> ModelParams:
    """A model's parameters from its expander; raises ParamError naming the field."""
    defaults = ModelParams()
    data: dict[str, object] = {}
    for name in ("temperature", "top_p", "max_tokens", "seed"):
        value = state.get(param_key(model_id, name), getattr(defaults, name))
        data[name] = value
    if data["seed"] is not None:
        data["seed"] = int(data["seed"])  # type: ignore[call-overload]
    stops = str(state.get(param_key(model_id, "stop")) or "")
    data["stop"] = [line for line in stops.splitlines() if line]
    return ModelParams.parse(data, where=model_id)


def draft_from_state(state: Mapping[str, Any], context_variable: str = "context") -> Draft:
    """Read the whole editor into a Draft; raises ParamError for a bad parameter."""
    model_ids = list(state.get(MODELS) or [])
    retrieval = None
    if state.get(USE_RAG) and state.get(STORE):
        retrieval = RetrievalSettings(
            store=str(state[STORE]),
            top_k=int(state.get(TOP_K) or 4),
            query=str(state.get(QUERY) or "{{ question }}"),
            context_variable=context_variable,
        )
    names = [n for n in template_variables(state) if not (retrieval and n == context_variable)]
    return Draft(
        variants=variants_from_state(state),
        model_ids=model_ids,
        params={m: params_from_state(state, m) for m in model_ids},
        variables={n: str(state.get(var_key(n)) or "") for n in names},
        retrieval=retrieval,
    )


def apply_draft(
    state: MutableMapping[str, Any], draft: Draft, available: set[str] | None = None
) -> list[str]:
    """Load a Draft into the editor; return the model ids that are no longer available."""
    for vid in state.get(VARIANT_IDS, []):
        for part in ("name", "note", "system", "user"):
            state.pop(variant_key(vid, part), None)
        _set_examples(state, vid, [])
    ids = list(range(len(draft.variants)))
    for vid, variant in zip(ids, draft.variants, strict=True):
        state[variant_key(vid, "name")] = variant.name
        state[variant_key(vid, "note")] = variant.note
        state[variant_key(vid, "system")] = variant.system
        state[variant_key(vid, "user")] = variant.user
        _set_examples(state, vid, list(variant.examples))
    state[VARIANT_IDS] = ids or [0]
    state[NEXT_VARIANT] = len(ids)
    for name, value in draft.variables.items():
        state[var_key(name)] = value
    missing = [m for m in draft.model_ids if available is not None and m not in available]
    state[MODELS] = [m for m in draft.model_ids if m not in missing]
    for model_id, params in draft.params.items():
        for name in ("temperature", "top_p", "max_tokens", "seed"):
            state[param_key(model_id, name)] = getattr(params, name)
        state[param_key(model_id, "stop")] = "\n".join(params.stop)
    state[USE_RAG] = draft.retrieval is not None
    if draft.retrieval is not None:
        state[STORE] = draft.retrieval.store
        state[TOP_K] = draft.retrieval.top_k
        state[QUERY] = draft.retrieval.query
    return missing
