"""Differences: between two environments (``meshc diff A B``) and between a compile and the
committed output (the review in ``meshc plan``, ``meshc diff --rendered``).

Values are compared leaf by leaf, with each side's provenance; manifests resource by resource
(matched by kind and name) and field by field. Lists whose items all carry a unique ``name``
(containers, env vars, ports) are matched by name, so inserting one item does not make every
later item look changed.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any, Literal

from ..core.diagnostics import CompileError
from ..core.source import Span
from ..render.render import Manifest
from ..syntax.yamlsrc import Path, load_documents
from ..values.values import ValueSet, lookup

Change = Literal["added", "removed", "changed"]
MARK = {"added": "+", "removed": "-", "changed": "~"}


@dataclass(frozen=True, slots=True)
class FieldChange:
    path: Path                     # name-matched list items appear as "[name=x]" parts
    change: Change
    before: Any = None
    after: Any = None

    @property
    def text(self) -> str:
        return format_field_path(self.path)


def format_field_path(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("[name="):
            out += part
        else:
            out += ("." if out else "") + part.replace(".", "\\.")
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _named(items: list[Any]) -> bool:
    names = [item.get("name") for item in items if isinstance(item, dict)]
    return (len(names) == len(items) and all(isinstance(n, str) for n in names)
            and len(set(names)) == len(names))


def diff_trees(before: Any, after: Any, by_name: bool = True, path: Path = ()) -> list[FieldChange]:
    """Leaf-level differences from ``before`` to ``after``."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[FieldChange] = []
        for key in sorted(set(before) | set(after)):
            if key not in after:
                out.append(FieldChange((*path, key), "removed", before[key]))
            elif key not in before:
                out.append(FieldChange((*path, key), "added", None, after[key]))
            else:
                out.extend(diff_trees(before[key], after[key], by_name, (*path, key)))
        return out
    if isinstance(before, list) and isinstance(after, list):
        if by_name and before and after and _named(before) and _named(after):
            return diff_trees({f"[name={i['name']}]": i for i in before},
                              {f"[name={i['name']}]": i for i in after}, by_name, path)
        out = []
        for i in range(max(len(before), len(after))):
            if i >= len(after):
                out.append(FieldChange((*path, i), "removed", before[i]))
            elif i >= len(before):
                out.append(FieldChange((*path, i), "added", None, after[i]))
            else:
                out.extend(diff_trees(before[i], after[i], by_name, (*path, i)))
        return out
    return [] if _same(before, after) else [FieldChange(path, "changed", before, after)]


# --- resources ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ResourceChange:
    resource: str                  # Kind/name
    change: Change
    fields: tuple[FieldChange, ...] = ()


Resources = dict[str, dict[str, Any]]


def resources_of(texts: Iterable[tuple[str, str]], namespace: str | None = None) -> Resources:
    """Parse manifest files ``(name, text)`` into ``{"Kind/name": document}``; a namespace equal
    to ``namespace`` is dropped (it is the release's own: comparing it across environments is
    noise)."""
    result: Resources = {}
    for label, text in texts:
        try:
            docs = load_documents(text, label)
        except CompileError:
            continue
        for doc in docs:
            if not isinstance(doc, dict) or not isinstance(doc.get("metadata"), dict):
                continue
            meta = doc["metadata"]
            if namespace is not None and meta.get("namespace") == namespace:
                doc = {**doc, "metadata": {k: v for k, v in meta.items() if k != "namespace"}}
            result[f"{doc.get('kind')}/{meta.get('name')}"] = doc
    return result


def diff_resources(before: Resources, after: Resources) -> tuple[ResourceChange, ...]:
    changes = []
    for key in sorted(set(before) | set(after)):
        if key not in after:
            changes.append(ResourceChange(key, "removed"))
        elif key not in before:
            changes.append(ResourceChange(key, "added"))
        else:
            fields = diff_trees(before[key], after[key])
            if fields:
                changes.append(ResourceChange(key, "changed", tuple(fields)))
    return tuple(changes)


def manifest_resources(manifests: Iterable[Manifest], namespace: str | None = None) -> Resources:
    return resources_of(((m.filename, m.text) for m in manifests), namespace)


# --- review against the committed output ----------------------------------------------------

@dataclass(frozen=True, slots=True)
class ReleaseReview:
    release: str
    status: Literal["new", "changed", "unchanged", "removed"]
    values: tuple[FieldChange, ...] = ()
    resources: tuple[ResourceChange, ...] = ()
    files: tuple[str, ...] = ()    # other files that differ (wrapper chart, …)


@dataclass(frozen=True, slots=True)
class Review:
    """What a compile would change in the committed output of one environment."""

    where: str
    releases: tuple[ReleaseReview, ...]
    files: tuple[str, ...] = ()    # environment-level files that differ (plan.json)

    @property
    def any(self) -> bool:
        return bool(self.files) or any(r.status != "unchanged" for r in self.releases)

    def by_release(self) -> dict[str, ReleaseReview]:
        return {r.release: r for r in self.releases}

    @property
    def summary(self) -> str:
        count = {s: sum(1 for r in self.releases if r.status == s)
                 for s in ("changed", "new", "unchanged", "removed")}
        res = [c for r in self.releases for c in r.resources]
        kinds = {k: sum(1 for c in res if c.change == k) for k in ("added", "changed", "removed")}
        plan = f"; {', '.join(self.files)} changed" if self.files else ""
        return (f"against {self.where}: {count['changed']} release(s) changed, {count['new']} new, "
                f"{count['removed']} removed, {count['unchanged']} unchanged; resources: "
                f"{kinds['added']} to add, {kinds['changed']} to change, "
                f"{kinds['removed']} to remove{plan}")


def read_tree(folder: FsPath) -> dict[str, str]:
    """Files under ``folder`` (relative POSIX paths → text); missing folder → {}."""
    if not folder.is_dir():
        return {}
    return {p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(folder.rglob("*")) if p.is_file()}


def review_environment(env: str, releases: Iterable[str], files: Mapping[str, str],
                       committed: Mapping[str, str], where: str) -> Review:
    """Compare compiled ``files`` (paths ``env/...``; a region's ``env`` is ``ENV/REGION``)
    with ``committed`` (same paths)."""
    names = list(releases)
    ours, theirs = _by_release(files, env), _by_release(committed, env)
    reviews = [_review_release(name, ours.get(name, {}), theirs.get(name, {})) for name in names]
    reviews += [ReleaseReview(name, "removed") for name in sorted(set(theirs) - set(names))]
    prefix = f"{env}/"
    top = sorted(p[len(prefix):] for p in set(files) | set(committed)
                 if p.startswith(prefix) and "/" not in p[len(prefix):]
                 and files.get(p) != committed.get(p))
    return Review(where, tuple(reviews), tuple(top))


def _by_release(files: Mapping[str, str], env: str) -> dict[str, dict[str, str]]:
    """``env/release/rest`` paths grouped by release: {release: {rest: text}}."""
    grouped: dict[str, dict[str, str]] = {}
    prefix = f"{env}/"
    for path, text in files.items():
        release, slash, rest = path[len(prefix):].partition("/")
        if path.startswith(prefix) and slash:
            grouped.setdefault(release, {})[rest] = text
    return grouped


def _review_release(name: str, ours: dict[str, str], theirs: dict[str, str]) -> ReleaseReview:
    if not theirs:
        return ReleaseReview(name, "new")
    if ours == theirs:
        return ReleaseReview(name, "unchanged")
    values = diff_trees(_values(theirs), _values(ours), by_name=False)
    resources = diff_resources(_resources(theirs), _resources(ours))
    other = tuple(sorted(p for p in set(ours) | set(theirs)
                         if p != "values.yaml" and not p.startswith("manifests/")
                         and ours.get(p) != theirs.get(p)))
    return ReleaseReview(name, "changed", tuple(values), resources, other)


def _values(files: Mapping[str, str]) -> Any:
    try:
        docs = load_documents(files.get("values.yaml", "{}"), "values.yaml")
    except CompileError:
        return {}
    return docs[0] if docs else {}


def _resources(files: Mapping[str, str]) -> Resources:
    return resources_of((p, t) for p, t in sorted(files.items()) if p.startswith("manifests/"))


def unified_diff(files: Mapping[str, str], committed: Mapping[str, str], root: str) -> str:
    """A unified diff from the committed files to the compiled ones (paths under ``root``)."""
    chunks = []
    for path in sorted(set(files) | set(committed)):
        old, new = committed.get(path), files.get(path)
        if old == new:
            continue
        a = f"a/{root}/{path}" if old is not None else "/dev/null"
        b = f"b/{root}/{path}" if new is not None else "/dev/null"
        chunks.append("".join(difflib.unified_diff(
            (old or "").splitlines(keepends=True), (new or "").splitlines(keepends=True), a, b)))
    return "".join(chunks)


def rendered_diff_json(env: str, files: Mapping[str, str], committed: Mapping[str, str],
                       root: str) -> dict[str, Any]:
    """``meshc diff --rendered ENV -o json``: each file a render would add, remove or change
    in the committed output, with its unified diff."""
    changes = []
    for path in sorted(set(files) | set(committed)):
        old, new = committed.get(path), files.get(path)
        if old == new:
            continue
        change = "added" if old is None else "removed" if new is None else "changed"
        changes.append({"path": f"{root}/{path}", "change": change,
                        "diff": unified_diff({path: new} if new is not None else {},
                                             {path: old} if old is not None else {}, root)})
    return {"apiVersion": "meshc/v1", "kind": "RenderedDiff", "environment": env,
            "changed": bool(changes), "files": changes}


# --- environment against environment ----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ReleaseDiff:
    """One release compared between two environments."""

    release: str
    presence: Literal["both", "only-from", "only-to"]
    before: ValueSet | None
    after: ValueSet | None
    values: tuple[FieldChange, ...] = ()
    resources: tuple[ResourceChange, ...] = ()

    @property
    def differs(self) -> bool:
        return self.presence != "both" or bool(self.values or self.resources)


def diff_release(before: ValueSet, after: ValueSet, before_resources: Resources,
                 after_resources: Resources) -> ReleaseDiff:
    values = diff_trees(before.values, after.values, by_name=False)
    return ReleaseDiff(before.release, "both", before, after, tuple(values),
                       diff_resources(before_resources, after_resources))


def origin_span(values: ValueSet | None, path: Path) -> Span | None:
    """The span of the layer that set ``path`` (or its nearest existing ancestor)."""
    if values is None:
        return None
    for depth in range(len(path), 0, -1):
        if lookup(values.values, path[:depth])[0]:
            origin = values.origin(path[:depth])
            if origin is not None:
                return origin.span
    return None


Paint = Callable[[str, str], str]


def _plain(text: str, role: str) -> str:
    return text


def format_env_diff(source: str, target: str, diffs: Iterable[ReleaseDiff],
                    sources: Mapping[str, str], paint: Paint = _plain) -> str:
    """``meshc diff A B`` for people: per release, values (with provenance), then resources."""
    diffs = list(diffs)
    lines = [paint(f"diff {source} → {target}", "title")]
    for d in diffs:
        if d.presence != "both":
            where = source if d.presence == "only-from" else target
            lines += ["", f"{paint(d.release, 'key')}: deployed only in {where}"]
            continue
        if not d.differs:
            continue
        lines += ["", paint(d.release, "key")]
        if d.values:
            lines.append("  values:")
            for change in d.values:
                lines += _value_lines(change, d, source, target, sources, paint)
        if d.resources:
            lines.append("  manifests:")
            lines += resource_lines(d.resources, "    ", paint)
    lines += ["", diff_summary(source, target, diffs)]
    return "\n".join(lines) + "\n"


def _value_lines(change: FieldChange, d: ReleaseDiff, source: str, target: str,
                 sources: Mapping[str, str], paint: Paint) -> list[str]:
    lines = [f"    {_change_text(change, paint)}"]
    width = max(len(source), len(target)) + 1
    if change.change != "added":
        lines.append(f"        {(source + ':').ljust(width)} "
                     f"{_where(origin_span(d.before, change.path), sources)}")
    if change.change != "removed":
        lines.append(f"        {(target + ':').ljust(width)} "
                     f"{_where(origin_span(d.after, change.path), sources)}")
    return lines


def _where(span: Span | None, sources: Mapping[str, str]) -> str:
    from ..values.explain import where

    return where(span, sources) if span is not None else "(chart default or computed)"


def _change_text(change: FieldChange, paint: Paint) -> str:
    role = {"added": "good", "removed": "bad", "changed": "warn"}[change.change]
    mark = paint(MARK[change.change], role)
    if change.change == "changed":
        return f"{mark} {change.text}: {show(change.before)} → {show(change.after)}"
    value = change.after if change.change == "added" else change.before
    return f"{mark} {change.text}: {show(value)}"


def resource_lines(changes: Iterable[ResourceChange], indent: str, paint: Paint) -> list[str]:
    """``+ Kind/name``, ``- Kind/name``, ``~ Kind/name field: a → b`` lines."""
    lines = []
    for rc in changes:
        role = {"added": "good", "removed": "bad", "changed": "warn"}[rc.change]
        if rc.change != "changed":
            lines.append(f"{indent}{paint(MARK[rc.change], role)} {rc.resource}")
            continue
        for field in rc.fields:
            mark, _, rest = _change_text(field, paint).partition(" ")
            lines.append(f"{indent}{mark} {rc.resource} {rest}")
    return lines


def show(value: Any, limit: int = 60) -> str:
    from ..values.explain import show as show_value

    return show_value(value, limit)


def diff_summary(source: str, target: str, diffs: list[ReleaseDiff]) -> str:
    both = [d for d in diffs if d.presence == "both"]
    values = [c for d in both for c in d.values]
    res = [c for d in both for c in d.resources]

    def n(items: list[Any], kind: str) -> int:
        return sum(1 for c in items if c.change == kind)

    # the environment-wide values (global, features) come as a pseudo-release: not counted
    wide = [d for d in both if d.release.startswith("(")]
    both = [d for d in both if d not in wide]
    releases = [d for d in diffs if d not in wide]
    shared = f"; environment-wide values {'differ' if any(d.differs for d in wide) else 'same'}" \
        if wide else ""
    return (f"summary: {len(releases)} release{'s' * (len(releases) != 1)}{shared}; "
            f"{sum(1 for d in both if d.differs)} differ, "
            f"{sum(1 for d in both if not d.differs)} same, "
            f"{sum(1 for d in diffs if d.presence == 'only-from')} only in {source}, "
            f"{sum(1 for d in diffs if d.presence == 'only-to')} only in {target}; values: "
            f"{n(values, 'changed')} changed, {n(values, 'added')} added, "
            f"{n(values, 'removed')} removed; resources: {n(res, 'changed')} changed, "
            f"{n(res, 'added')} added, {n(res, 'removed')} removed")


def env_diff_json(source: str, target: str, diffs: Iterable[ReleaseDiff],
                  sources: Mapping[str, str]) -> dict[str, Any]:
    diffs = list(diffs)
    return {
        "apiVersion": "meshc/v1", "kind": "EnvironmentDiff", "from": source, "to": target,
        "releases": [{
            "release": d.release, "presence": d.presence,
            "values": [_value_json(c, d, sources) for c in d.values],
            "resources": [_resource_json(rc) for rc in d.resources]} for d in diffs],
        "summary": diff_summary(source, target, diffs),
    }


def _value_json(change: FieldChange, d: ReleaseDiff, sources: Mapping[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {"path": change.text, "change": change.change}
    for side, values, value in (("from", d.before, change.before), ("to", d.after, change.after)):
        if (side == "from" and change.change == "added") or (side == "to" and change.change == "removed"):
            continue
        span = origin_span(values, change.path)
        data[side] = {"value": value, "origin": _where(span, sources) if span else None}
    return data


def _resource_json(rc: ResourceChange) -> dict[str, Any]:
    return {"resource": rc.resource, "change": rc.change,
            "fields": [{"path": f.text, "change": f.change, "from": f.before, "to": f.after}
                       for f in rc.fields]}


def review_lines(review: ReleaseReview, indent: str, paint: Paint = _plain) -> list[str]:
    """The field-level lines of one release in ``meshc plan``'s review."""
    lines = [f"{indent}{_change_text(c, paint).replace(' ', ' values ', 1)}" for c in review.values]
    lines += resource_lines(review.resources, indent, paint)
    lines += [f"{indent}{paint('~', 'warn')} {path}" for path in review.files]
    return lines


def paint_unified(text: str, paint: Paint = _plain) -> str:
    """A unified diff coloured as git colours one: headers bold, hunks cyan, + green, - red."""
    lines = []
    for line in text.splitlines(keepends=True):
        body, end = (line[:-1], "\n") if line.endswith("\n") else (line, "")
        role = ("title" if body.startswith(("--- ", "+++ ")) else "key" if body.startswith("@@")
                else "good" if body.startswith("+") else "bad" if body.startswith("-") else None)
        lines.append((paint(body, role) if role else body) + end)
    return "".join(lines)
