"""The bounded Jinja2 sandbox that renders prompt templates (imported only when one needs it).

Jinja2 takes about 40 ms to import; a template that is only text and `{{ name }}` placeholders
is rendered by playground.prompts without it, so a command's first request does not wait for it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from playground.prompts import (
    _GUARD,
    _MAX_POWER_BITS,
    MAX_RENDERED_CHARS,
    RenderLimitError,
    _bounded,
    _check_deadline,
    _check_replace,
    _check_size,
    _guard_args,
    _guarded_filter,
    _size_guard,
    _sized,
    _too_big,
    _wide_format,
)


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox plus time and size bounds on everything a template computes."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, guard_loops: bool, **options: Any) -> None:
        super().__init__(**options)
        # Guarded filters and intercepted operators also keep the compiler's constant folding
        # from computing `'a' * 10**9` while merely listing a template's variables.
        self.filters = {name: _guarded_filter(f) for name, f in self.filters.items()}
        self.guard_loops = guard_loops
        self.globals[_GUARD] = _bounded
        self.globals[_GUARD + "_size"] = _size_guard

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        if not self.guard_loops:
            return tree
        for loop in tree.find_all(nodes.For):
            loop.iter = self._guarded(_GUARD, loop.iter)
        for concat in list(tree.find_all(nodes.Concat)):
            concat.nodes = [self._guarded(_GUARD + "_size", part) for part in concat.nodes]
        return tree

    @staticmethod
    def _guarded(guard: str, node: nodes.Expr) -> nodes.Expr:
        return nodes.Call(nodes.Name(guard, "load"), [node], [], None, None, lineno=node.lineno)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """Refuse `*`, `**`, `+` and `%` whose result would pass the size bound."""
        _check_deadline()
        if operator == "*":
            count = right if isinstance(right, int) else left if isinstance(left, int) else 0
            if max(_sized(left), _sized(right)) * max(count, 0) > MAX_RENDERED_CHARS:
                raise _too_big("would build a value")
        elif operator == "**":
            big = isinstance(left, int) and isinstance(right, int) and abs(left) > 1
            if big and right * abs(left).bit_length() > _MAX_POWER_BITS:
                raise RenderLimitError("computed a number too large to show")
        elif operator == "+":
            if _sized(left) + _sized(right) > MAX_RENDERED_CHARS:
                raise _too_big("would build a value")
        elif operator == "%" and isinstance(left, str) and _wide_format(left):
            raise _too_big("asked for a size")
        return _check_size(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Refuse calls asking for sizes above the bound (ljust, zfill, format widths, ...)."""
        _guard_args(args, kwargs)
        method = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        owner = getattr(method, "__self__", None)
        if isinstance(owner, str):
            called = getattr(method, "__name__", "")
            if called in {"format", "format_map"} and _wide_format(owner):
                raise _too_big("asked for a size")
            if called == "replace" and len(args) >= 2:
                _check_replace(owner, args[0], args[1])
        return _check_size(super().call(__context, __obj, *args, **kwargs))


_OPTIONS: dict[str, Any] = {
    "undefined": StrictUndefined,
    "autoescape": False,
    "keep_trailing_newline": True,
}


@lru_cache(maxsize=1)
def env() -> _BoundedSandbox:
    """The sandbox that parses templates and lists their variables."""
    # Parsing and variable discovery: no guard calls in the tree, so none among the variables.
    return _BoundedSandbox(guard_loops=False, **_OPTIONS)


@lru_cache(maxsize=1)
def render_env() -> _BoundedSandbox:
    """The sandbox that renders (loops and concatenations bounded)."""
    # Immutable sandbox: templates cannot reach Python internals nor mutate the values they get.
    return _BoundedSandbox(guard_loops=True, **_OPTIONS)
