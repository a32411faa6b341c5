"""The template sandbox: Jinja's immutable sandbox plus resource bounds.

Jinja's :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` keeps templates away from Python
internals. This adds what an untrusted pull request could otherwise use to hold a CI machine:

* a **step budget** per render (``limits.templateSteps``): every loop iteration (loops are
  instrumented at parse time, recursive ones and ``if`` filters included), every call (macros,
  methods, functions) and every filter costs one step, so nested loops and recursive macros
  end, deterministically, with a diagnostic at the template line;
* a **deadline** per render (``limits.templateSeconds``), checked at every step;
* an **output bound** (``limits.templateOutput``): on what a render produces, and before any
  operation that could build a huge value in one go (``'x' * 10**9``, ``s ~ s``, ``'%9999999d'``,
  ``'x'.center(10**9)``, ``10 ** 10**9``, big joins and replaces);
* no ``lipsum`` (it makes text in a loop no step sees).

Python's recursion limit turns runaway recursion into a ``RecursionError`` and the process
memory limit (:mod:`compiler.core.limits`) turns any allocation that slips through into a
``MemoryError``; both become diagnostics like the rest (:func:`limit_message`). Everything is
per process, so forked workers are bounded alike.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import _PassArg
from jinja2.visitor import NodeTransformer

from ..core import limits
from ..core.limits import describe

_POWER_BITS = 1 << 20           # the largest integer ** may build, in bits
_SLICE_MAX = 100_000            # slice/batch counts (Jinja's own range cap)
_WIDE = re.compile(r"%[-#0 +]*(\*|\d{7,})")  # printf widths of a million or more, or '*'
_WIDE_FORMAT = re.compile(r"\{[^{}]*:[^{}]*\d{7,}[^{}]*\}")  # the same in str.format
_NESTED_FIELD = re.compile(r"\{[^{}]*\{")  # '{:{}}': a width from the arguments
_WIDTH_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs"})
_CHECKED_FILTERS = frozenset({"center", "indent", "nindent", "slice", "batch", "format",
                              "replace", "join"})
# What getattr() finds on a dict: its class's attributes (dict instances have no __dict__).
_DICT_ATTRIBUTES = frozenset(dir(dict))
_SERIALIZERS = frozenset({"tojson", "toyaml", "string", "pprint", "quote", "b64enc", "sha256",
                          "join", "indent", "nindent", "wordwrap", "center", "e", "escape",
                          "safe", "urlencode", "format"})


class ResourceLimit(Exception):
    """A template exceeded one of its limits; the message says which and how to raise it."""


class Budget:
    """What one render may still spend."""

    __slots__ = ("deadline", "limits", "output", "overall", "steps")

    def __init__(self, bounds: limits.Limits) -> None:
        self.limits = bounds
        self.steps = bounds.template_steps
        self.deadline = time.monotonic() + bounds.template_seconds
        self.overall = limits.command_deadline()
        if self.overall is not None and self.overall < self.deadline:
            self.deadline = self.overall
        else:
            self.overall = None
        self.output = bounds.template_output

    def tick(self) -> None:
        self.steps -= 1
        if self.steps & 15 == 0:  # every 16 steps: cheap enough for every loop item
            self.check()

    def check(self) -> None:
        if self.steps < 0:
            raise ResourceLimit(
                f"ran more than {self.limits.template_steps:,} loop iterations and calls "
                f"({describe('template_steps', self.limits.template_steps)}); a runaway loop "
                "or recursion?")
        if time.monotonic() > self.deadline:
            if self.overall is not None:
                raise ResourceLimit(
                    f"ran past the command's total template time: more than "
                    f"{self.limits.total_seconds:g} s in all "
                    f"({describe('total_seconds', self.limits.total_seconds)})")
            raise ResourceLimit(
                f"ran longer than {self.limits.template_seconds:g} s "
                f"({describe('template_seconds', self.limits.template_seconds)})")

    def size(self, length: int, what: str) -> None:
        if length > self.output:
            raise ResourceLimit(
                f"would build {what} of {length:,} characters, over "
                f"{describe('template_output', self.output)}")


class GuardedSandbox(ImmutableSandboxedEnvironment):
    """An immutable sandbox whose renders are bounded (see the module docstring).

    Render through :meth:`render_bounded`; outside it (e.g. a trace re-rendering a template
    that already rendered within bounds) steps are not counted.
    """

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("optimized", False)  # no constant folding: it would run template
        super().__init__(*args, **kwargs)      # code at compile time, outside any budget
        self.budget: Budget | None = None
        self.globals.pop("lipsum", None)
        self.filters = _Guarded(self, self.filters)
        if self.finalize is not None and not _PassArg.from_obj(self.finalize):
            plain = self.finalize

            def finalize(value: Any) -> Any:  # {{ a_list }} prints its whole text
                if isinstance(value, (dict, list, tuple)):
                    self.check_text(value, "the text of a value")
                return plain(value)

            self.finalize = finalize

    # --- rendering ----------------------------------------------------------------------

    def render_bounded(self, template: jinja2.Template, context: Mapping[str, Any]) -> str:
        """Render ``template`` within the limits in force; raises what the template raises,
        :class:`ResourceLimit`, ``RecursionError`` or ``MemoryError``."""
        outer, budget = self.budget, Budget(limits.current())
        self.budget = budget
        try:
            chunks: list[str] = []
            left = budget.output
            for chunk in template.generate(context):
                left -= len(chunk)
                if left < 0:
                    raise ResourceLimit(
                        f"produced more than {budget.output:,} characters "
                        f"({describe('template_output', budget.output)})")
                chunks.append(chunk)
            return "".join(chunks)
        finally:
            self.budget = outer

    def tick(self) -> None:
        if self.budget is not None:
            self.budget.tick()

    def check_text(self, value: Any, what: str) -> None:
        """Refuse, before it is built, the text of a container whose strings (shared ones
        counted each time they appear) would exceed the output limit."""
        if self.budget is not None and isinstance(value, (dict, list, tuple)):
            size = _text_size(value, self.budget.output, self.budget.limits.yaml_nodes * 2)
            if size is not None:
                self.budget.size(size, what)

    def check_size(self, value: Any, what: str = "a value") -> Any:
        if self.budget is not None and isinstance(value, (str, list, tuple)):
            self.budget.size(len(value), what)
        return value

    # --- parse-time instrumentation ------------------------------------------------------

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        return _Instrument().visit(tree)  # type: ignore[no-any-return]

    def meshc_tick(self) -> None:
        self.tick()

    def meshc_iter(self, iterable: Any) -> Iterator[Any]:
        if isinstance(iterable, jinja2.Undefined):  # let the loop raise as it would
            yield from iterable
            return
        for item in iterable:
            budget = self.budget  # self.tick(), inlined: this runs for every loop item
            if budget is not None:
                budget.tick()
            yield item

    def meshc_concat(self, *items: Any) -> str:
        for item in items:
            self.check_text(item, "a string (~)")
        texts = [str(item) for item in items]
        if self.budget is not None:
            self.budget.size(sum(map(len, texts)), "a string (~)")
        return "".join(texts)

    # --- operations ----------------------------------------------------------------------

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``values.image``: Jinja tries the attribute, fails (an exception) and falls back to
        the key. A plain dict's attributes are its class's, so for any other name go straight
        to the key, as Jinja would end up doing (keys are never checked for safety)."""
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        budget = self.budget
        if budget is not None:
            budget.tick()
            _check_method(budget, obj, args)
        return self.check_size(super().call(context, obj, *args, **kwargs))

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = self.budget
        if budget is not None:
            budget.tick()
            _check_binop(budget, operator, left, right)
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format``/``format_map``, sandboxed by Jinja, refused for huge widths."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        text: str = value.__self__
        nested = _NESTED_FIELD.search(text) is not None

        def bounded(*args: Any, **kwargs: Any) -> str:
            if self.budget is not None:
                numbers = [a for a in (*args, *kwargs.values()) if _is_int(a)]
                if _WIDE_FORMAT.search(text) or (nested and numbers and
                                                 max(numbers) > self.budget.output):
                    _too_wide(self.budget)
            return self.check_size(wrapped(*args, **kwargs), "a string (format)")

        return bounded


class _Guarded(dict):  # type: ignore[type-arg]
    """The filter table: every filter costs a step and its result is size-checked."""

    def __init__(self, env: GuardedSandbox, filters: Mapping[str, Any]) -> None:
        super().__init__()
        self.env = env
        for name, func in filters.items():
            self[name] = func

    def __setitem__(self, name: str, func: Any) -> None:
        super().__setitem__(name, _guard_filter(self.env, name, func))

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        for name, func in dict(*args, **kwargs).items():
            self[name] = func


def _guard_filter(env: GuardedSandbox, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` costing a step, its arguments and result checked. The wrapper takes the
    context (and hands the original what it asked for), which also keeps Jinja from running
    the filter at compile time on constant arguments, outside any budget."""
    if getattr(func, "meshc_guarded", False):
        return func
    wants = _PassArg.from_obj(func)
    checked = name in _CHECKED_FILTERS
    serializer = name in _SERIALIZERS

    @jinja2.pass_context
    def guarded(context: Any, *args: Any, **kwargs: Any) -> Any:
        budget = env.budget
        if budget is not None:
            budget.tick()
            if checked:
                _check_filter(budget, name, args)
            if serializer and args and isinstance(args[0], (dict, list, tuple)):
                env.check_text(args[0], f"a string (filter {name})")
        if wants is not None:  # most filters want nothing passed
            args = (_passed(context, wants), *args)
        result = func(*args, **kwargs)
        if budget is not None and isinstance(result, str) and len(result) > budget.output:
            budget.size(len(result), f"a value (filter {name})")
        return result

    functools.update_wrapper(guarded, func, updated=())
    guarded.jinja_pass_arg = _PassArg.context  # type: ignore[attr-defined]
    guarded.meshc_guarded = True  # type: ignore[attr-defined]
    return guarded


def _passed(context: Any, wants: _PassArg) -> Any:
    """What a ``pass_context``, ``pass_eval_context`` or ``pass_environment`` filter is handed."""
    if wants is _PassArg.context:
        return context
    if wants is _PassArg.eval_context:
        return context.eval_ctx
    return context.environment


def _check_filter(budget: Budget, name: str, args: tuple[Any, ...]) -> None:
    value = args[0] if args else None
    numbers = [a for a in args[1:] if isinstance(a, int) and not isinstance(a, bool)]
    if name in ("center", "indent", "nindent") and numbers and isinstance(value, str):
        budget.size((value.count("\n") + 1) * max(numbers) + len(value), f"a string ({name})")
    elif name in ("slice", "batch") and numbers and max(numbers) > _SLICE_MAX:
        raise ResourceLimit(f"filter {name} of {max(numbers):,} pieces (at most {_SLICE_MAX:,})")
    elif name == "format" and isinstance(value, str) and _WIDE.search(value):
        _too_wide(budget)
    elif name == "replace" and len(args) >= 3:
        _check_replace(budget, value, args[1], args[2])
    elif name == "join" and isinstance(value, (list, tuple)):
        sep = args[1] if len(args) > 1 and isinstance(args[1], str) else ""
        budget.size(sum(len(v) if isinstance(v, str) else 32 for v in value)
                    + len(sep) * len(value), "a string (join)")


def _check_method(budget: Budget, obj: Any, args: tuple[Any, ...]) -> None:
    owner = getattr(obj, "__self__", None)
    if not isinstance(owner, str):
        return
    name = getattr(obj, "__name__", "")
    numbers = [a for a in args if isinstance(a, int) and not isinstance(a, bool)]
    if name in _WIDTH_METHODS and numbers:
        factor = owner.count("\t") + 1 if name == "expandtabs" else 1
        budget.size(max(numbers) * factor + len(owner), f"a string (.{name})")
    elif name == "replace" and len(args) >= 2:
        _check_replace(budget, owner, args[0], args[1])
    elif name == "join" and args and isinstance(args[0], (list, tuple)):
        budget.size(sum(len(v) if isinstance(v, str) else 0 for v in args[0])
                    + len(owner) * len(args[0]), "a string (.join)")


def _check_replace(budget: Budget, value: Any, old: Any, new: Any) -> None:
    if isinstance(value, str) and isinstance(old, str) and isinstance(new, str):
        hits = value.count(old) if old else len(value) + 1
        budget.size(len(value) + hits * max(0, len(new) - len(old)), "a string (replace)")


def _check_binop(budget: Budget, operator: str, left: Any, right: Any) -> None:
    sized = (str, list, tuple)
    if operator == "+" and isinstance(left, sized) and isinstance(right, sized):
        budget.size(len(left) + len(right), "a value (+)")
    elif operator == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, sized) and isinstance(times, int):
                budget.size(len(seq) * max(times, 0), "a value (*)")
        if _is_int(left) and _is_int(right) and \
                left.bit_length() + right.bit_length() > _POWER_BITS:
            raise ResourceLimit(f"would build an integer of more than {_POWER_BITS:,} bits")
    elif operator == "**" and _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
        if right * left.bit_length() > _POWER_BITS:
            raise ResourceLimit(f"would build an integer of more than {_POWER_BITS:,} bits "
                                f"({left} ** {right})")
    elif operator == "%" and isinstance(left, str) and _WIDE.search(left):
        _too_wide(budget)


def _text_size(value: Any, limit: int, visits: int) -> int | None:
    """About how many characters ``value`` prints as, if more than ``limit`` (or too many parts
    to count within ``visits``); None when it is within the limit. A walk with a bounded
    number of steps: structures sharing one list a million times are caught cheaply."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        visits -= 1
        if visits < 0:
            return max(total, limit + 1)
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
            total += 2
        else:
            total += 4
        if total > limit:
            return total
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _too_wide(budget: Budget) -> None:
    raise ResourceLimit("would format with a width of a million or more (or a '*' width), "
                        f"which could build a string over "
                        f"{describe('template_output', budget.output)}")


class _Instrument(NodeTransformer):
    """Loops tick per item (and per body run: recursive loops); ``~`` is size-checked."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)  # in place: the children are expressions and statements
        if node.recursive:  # loop(children) iterates without meshc_iter: count the bodies
            node.body = [nodes.ExprStmt(_env_call("meshc_tick", [], node.lineno),
                                        lineno=node.lineno), *node.body]
        node.iter = _env_call("meshc_iter", [node.iter], node.lineno)  # type: ignore[list-item]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _env_call("meshc_concat", list(node.nodes), node.lineno)


def _env_call(method: str, args: list[nodes.Expr], lineno: int) -> nodes.Call:
    call = nodes.Call(nodes.EnvironmentAttribute(method), args, [], None, None)
    call.set_lineno(lineno, override=True)
    return call


def limit_message(exc: BaseException) -> str | None:
    """The diagnostic text for a template that ran out of a resource, or None."""
    if isinstance(exc, ResourceLimit):
        return f"template {exc}"
    if isinstance(exc, RecursionError):
        return ("template recursed too deeply (a macro, include or recursive loop that calls "
                "itself without end?)")
    if isinstance(exc, MemoryError):
        return f"template used more memory than allowed ({describe('memory')})"
    return None



# --- the process environment, behind the meshfile's allow-list -------------------------------

class EnvironmentVariableError(Exception):
    """A template asked for a variable the meshfile does not allow, or a required one unset."""


def environment_functions(allowed: tuple[str, ...],
                          values: Mapping[str, str]) -> dict[str, Callable[..., Any]]:
    """Template globals ``env_var(NAME, default='')`` and ``required_env(NAME[, message])``.

    Only variables named in the meshfile's ``allowEnv:`` can be read; ``values`` holds those
    of them the process environment sets (the CLI passes them in; nothing else reads it).
    """

    def allow(name: Any) -> str:
        if not isinstance(name, str) or name not in allowed:
            listed = ", ".join(allowed) if allowed else "none"
            raise EnvironmentVariableError(
                f"environment variable {name!r} is not allowed (the meshfile's allowEnv lists: "
                f"{listed}); add it to allowEnv to let templates read it")
        return name

    def env_var(name: str, default: Any = "") -> Any:
        return values.get(allow(name), default)

    def required_env(name: str, message: str | None = None) -> str:
        value = values.get(allow(name), "")
        if value == "":
            raise EnvironmentVariableError(message or f"environment variable {name} is "
                                           "required but not set")
        return value

    return {"env_var": env_var, "required_env": required_env}
