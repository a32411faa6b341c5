"""A local chart's ``values.schema.json``, applied as Helm applies it.

Helm validates a chart's values against the chart's JSON Schema on ``template``, ``install``,
``upgrade`` and ``lint``; Helm 4 reads the schema's ``$schema`` and defaults to draft 2020-12.
meshc does the same for the values it computed, and says where each offending value came from:
the diagnostic is located on the layer that set it (provenance), with the schema's own rule as a
note. The wrapper chart carries the schema too, so Helm checks again when the plan runs, after
the decrypted secrets are added.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..core.diagnostics import Diagnostic, Diagnostics
from ..core.source import Span, file_span
from ..model.model import Release
from ..syntax.yamlsrc import Path, ValuesDoc
from .values import ValueSet

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

# jsonschema is imported where a schema is checked, not at import: it costs a tenth of a
# second, and most charts (and every render served by the cache) never need it.


def pointer(path: Path) -> str:
    """A JSON pointer, as Helm prints a failing location: ``/image/tag``, ``/hosts/0``."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def schema_problems(schema: ValuesDoc) -> list[Diagnostic]:
    """What is wrong with the schema itself: not valid against its dialect's metaschema, as
    Helm checks it (Helm then refuses every value)."""
    from jsonschema import Draft202012Validator, validators
    from jsonschema.exceptions import best_match

    cls = validators.validator_for(schema.data, default=Draft202012Validator)
    error = best_match(cls(_metaschema(cls)).iter_errors(schema.data))
    if error is None:
        return []
    return [Diagnostic("error", f"{schema.file} is not a valid JSON Schema: {error.message}",
                       _schema_span(schema, tuple(error.absolute_path)))]


def _metaschema(cls: Any) -> dict[str, Any]:
    """``cls``'s metaschema; for drafts 6 and 7 with unique ``enum`` items, as the copies Helm
    validates with ask (seen with Helm 4.3.1: "items at 0 and 1 are equal")."""
    from jsonschema import Draft6Validator, Draft7Validator

    meta: dict[str, Any] = cls.META_SCHEMA
    if cls in (Draft6Validator, Draft7Validator):
        enum = {**meta["properties"]["enum"], "uniqueItems": True}
        meta = {**meta, "properties": {**meta["properties"], "enum": enum}}
    return meta


SECRET_STAND_IN = "(a secret, decrypted when the plan runs)"


def check_chart_schema(schema: ValuesDoc, values: ValueSet, release: Release,
                       diags: Diagnostics,
                       secrets: Sequence[tuple[Path, Sequence[str]]] = ()) -> None:
    """Report every way ``values`` fails ``schema`` (nothing when they meet it).

    ``secrets`` are the (path, keys) where the plan adds decrypted secrets at install: they are
    present for the check (a schema may require them) but their values are unknown until then,
    so Helm alone judges them, when the plan runs."""
    from referencing.exceptions import Unresolvable

    problems = schema_problems(schema)
    if problems:
        diags.extend(problems)
        return
    secret_paths = [(*path, key) for path, keys in secrets for key in keys]
    try:
        errors = schema_errors(schema.data, with_secrets(values.values, secret_paths))
    except Unresolvable as exc:
        diags.error(f"{schema.file}: cannot resolve a $ref ({exc}); meshc resolves only "
                    "references inside the schema", file_span(schema.file))
        return
    for error in errors:
        at = tuple(error.absolute_path)
        if not any(at[:len(secret)] == secret for secret in secret_paths):
            diags.items.append(_diagnostic(error, schema, values, release))


def with_secrets(tree: dict[str, Any], paths: Sequence[Path]) -> dict[str, Any]:
    """``tree`` with a stand-in string at each secret's path (copies along those paths only)."""
    return with_stand_ins(tree, [(path, SECRET_STAND_IN) for path in paths])


def with_stand_ins(tree: dict[str, Any], stand_ins: Sequence[tuple[Path, str]]) -> dict[str, Any]:
    """``tree`` with each (path, text) of ``stand_ins`` set (copies along those paths only:
    ``tree`` is not changed)."""
    for path, text in stand_ins:
        tree = _put(tree, path, text)
    return tree


def _put(node: Any, path: Path, text: str) -> Any:
    if not path:
        return text
    copy = dict(node) if isinstance(node, dict) else {}
    copy[path[0]] = _put(copy.get(path[0]), path[1:], text)
    return copy


def schema_errors(schema: dict[str, Any], instance: Any) -> list[ValidationError]:
    """Every way ``instance`` fails ``schema`` (of its ``$schema`` dialect, else draft
    2020-12, as Helm 4 reads it), in a stable order: by location, then rule."""
    from jsonschema import (
        Draft4Validator,
        Draft6Validator,
        Draft7Validator,
        Draft202012Validator,
        validators,
    )

    cls = validators.validator_for(schema, default=Draft202012Validator)
    # Helm 4 asserts `format` for drafts up to 7; from 2019-09 on it is an annotation only
    checker = cls.FORMAT_CHECKER if cls in (Draft4Validator, Draft6Validator,
                                            Draft7Validator) else None
    return sorted(cls(schema, format_checker=checker).iter_errors(instance), key=_order)


def _order(error: ValidationError) -> tuple[str, str, str]:
    return (pointer(tuple(error.absolute_path)),
            "/".join(map(str, error.absolute_schema_path)), error.message)


def _diagnostic(error: ValidationError, schema: ValuesDoc, values: ValueSet,
                release: Release) -> Diagnostic:
    path = tuple(error.absolute_path)
    extra = _unexpected_key(error)
    span, setter = _value_span(values, path if extra is None else (*path, extra), release)
    rule = tuple(error.absolute_schema_path)
    rule_span = _schema_span(schema, rule)
    notes = [f"in environment '{values.env}'",
             f"the schema's rule: {rule_span} ({'.'.join(map(str, rule)) or 'the root'})"]
    if setter:
        notes.insert(1, setter)
    return Diagnostic("error", f"values of release '{release.name}' do not meet "
                      f"{schema.file}: at '{pointer(path)}': {error.message}", span,
                      help="change the value, or the schema if the value is right",
                      notes=tuple(notes))


def _unexpected_key(error: ValidationError) -> str | None:
    """For ``additionalProperties``, the first key the schema does not allow (the value to
    point at), else None."""
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return None
    known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
    patterns = error.schema.get("patternProperties", {}) if isinstance(error.schema, dict) else {}
    extras = [key for key in error.instance
              if key not in known and not any(_matches(p, key) for p in patterns)]
    return min(extras) if extras else None


def _matches(pattern: str, key: str) -> bool:
    try:
        return re.search(pattern, key) is not None
    except re.error:  # an ECMA-only pattern: the key is not pointed at, the error still stands
        return False


def _value_span(values: ValueSet, path: Path, release: Release) -> tuple[Span, str]:
    """Where the value at ``path`` (or its nearest ancestor that some layer set) came from."""
    for depth in range(len(path), 0, -1):
        origin = values.origin(path[:depth])
        if origin is not None and origin.span is not None:
            return origin.span, f"the value comes from the {origin.layer.kind} layer"
    return release.span, ""


def _schema_span(schema: ValuesDoc, path: Path) -> Span:
    for depth in range(len(path), -1, -1):
        span = schema.spans.get(path[:depth])
        if span is not None:
            return span
    return file_span(schema.file)
