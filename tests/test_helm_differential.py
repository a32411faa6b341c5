"""Differential tests: meshc's values against the real Helm's, on generated cases.

A case is a chart's own ``values.yaml`` (nulls included), values files layered over it (some are
the environment's, the rest the release's own ``values:``), and ``--set``-family flags: list
indexes, nested paths, ``{a,b}`` lists, escaped commas and dots, ``null``, JSON values
(``--set-json``, whole objects too), ``--set-string``, ``--set-file``, ``--set-literal``, and
random flag text. Helm runs ``helm template`` on a chart whose one template shows ``.Values`` as
JSON, with the files as ``-f`` and the flags as given; meshc computes the release's values of a
one-release project holding the same inputs, through its library (load → flags → values).
Helm's ``.Values`` must equal meshc's values (numbers as Go's float64), and Helm refuses exactly
the cases meshc refuses, Helm's error (flag kind and parser message; ``--set-json``'s detail Helm
does not print) being among meshc's. The release's values key is ``.`` (the files address the
chart) or the release's name (the environment's files and the flags address ``app.…``, the
release's own files the chart).

Runs: hypothesis draws the cases (derandomized: a given source tree always draws the same
ones) while ``WORKERS`` threads judge them, as a helm run is mostly start-up. CI runs 1,000
distinct cases; ``MESHC_DIFF_CASES=100000`` runs more (overnight), ``MESHC_DIFF_SEED=<n>`` draws
other cases than CI's. A disagreement fails with the case, made smaller by dropping flags, files
and keys while it still disagrees, as JSON ready for ``tests/conformance/differential-
regressions.json`` (with Helm's verdict). Every case that ever disagreed is kept there and runs
on every run: against the recorded verdict always, against Helm itself where Helm is available.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from realtools import helm4, helm_env

from compiler.core.diagnostics import CompileError, Diagnostics
from compiler.core.files import ProjectFiles
from compiler.pipeline import SetFlag, environment_tree, load_project, with_sets
from compiler.values.values import release_values

REGRESSIONS = Path(__file__).resolve().parent / "conformance" / "differential-regressions.json"
WORKERS = 4  # helm processes at once: a run is mostly start-up, 4 keep 2 cores busy
CASES = int(os.environ.get("MESHC_DIFF_CASES") or 1000)
SEED = os.environ.get("MESHC_DIFF_SEED")
KINDS = ("set", "set-string", "set-json", "set-file", "set-literal")
SET_FILES = ("f-0.txt", "f-1.txt")  # what --set-file flags may name (contents per case)


# --- a case -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Flag:
    """A flag as Helm gets it: ``parts`` joined by commas. ``form`` says how meshc's differs
    when the values key is the release's name: ``path`` (``KEY=VALUE`` parts: ``app.`` before
    each), ``object`` (a ``--set-json`` object: wrapped in ``{"app": …}``) or ``raw`` (random
    text, only with values key ``.``)."""

    kind: str
    parts: tuple[str, ...]
    form: str

    @property
    def text(self) -> str:
        return ",".join(self.parts)

    def addressing(self, values_key: str) -> str:
        """The flag's value as meshc gets it: addressing the environment's whole tree."""
        if values_key == "." or self.form == "raw":
            return self.text
        if self.form == "object":
            return f'{{"{values_key}": {self.text}}}'
        return ",".join(f"{values_key}.{part}" for part in self.parts)


@dataclass(frozen=True, slots=True)
class Case:
    """One generated case: the inputs of one release, as Helm gets them."""

    chart: dict[str, Any]                   # the chart's values.yaml
    files: tuple[dict[str, Any], ...]       # -f files, weakest first
    env_files: int                          # how many of them are the environment's
    values_key: str                         # "." or "app" (the release's name)
    flags: tuple[Flag, ...]                 # as given on the command line
    set_files: tuple[str, ...]              # contents of SET_FILES

    def to_json(self) -> dict[str, Any]:
        return {"chart": self.chart, "files": list(self.files), "env_files": self.env_files,
                "values_key": self.values_key,
                "flags": [[f.kind, list(f.parts), f.form] for f in self.flags],
                "set_files": list(self.set_files)}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Case:
        return Case(data["chart"], tuple(data["files"]), data["env_files"], data["values_key"],
                    tuple(Flag(kind, tuple(parts), form) for kind, parts, form in data["flags"]),
                    tuple(data["set_files"]))


Error = tuple[str, str | None]  # a flag's kind (or "other") and the parser's message


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a chart receives (``values``), or the refusal: each error's flag kind and parser
    message (None for ``--set-json``, whose detail Helm does not print). Helm stops at its first
    error; meshc reports every flag that fails whatever the values, at once."""

    values: Any = None
    errors: tuple[Error, ...] = ()

    def to_json(self) -> dict[str, Any]:
        if not self.errors:
            return {"values": self.values}
        return {"errors": [list(error) for error in self.errors]}

    @staticmethod
    def from_json(data: dict[str, Any] | None) -> Verdict | None:
        if data is None:
            return None
        return Verdict(data.get("values"), tuple((k, m) for k, m in data.get("errors", ())))


@dataclass(frozen=True, slots=True)
class Trial:
    """A case judged: Helm's verdict, meshc's, and, where both refuse for different reasons,
    Helm's verdict on the flags alone (no values files, no chart defaults)."""

    case: Case
    helm: Verdict
    meshc: Verdict
    helm_alone: Verdict | None = None

    def agree(self) -> bool:
        """Same values; or both refuse, meshc with Helm's error among its errors, or with the
        error Helm gives for the flags alone (meshc checks the flags alone first, and reports
        every flag that fails there, where Helm stops at the first flag that fails on the
        values)."""
        helm, meshc = self.helm, self.meshc
        if not helm.errors or not meshc.errors:
            return not helm.errors and not meshc.errors and same(helm.values, meshc.values)
        alone = self.helm_alone
        return helm.errors[0] in meshc.errors or (
            alone is not None and bool(alone.errors) and alone.errors[0] in meshc.errors)

    def to_json(self) -> dict[str, Any]:
        data = {"case": self.case.to_json(), "helm": self.helm.to_json()}
        if self.helm_alone is not None:
            data["helm_alone"] = self.helm_alone.to_json()
        return data


# --- hypothesis strategies --------------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "c", "hosts", "x.y", "k,1"])
PLAIN_KEYS = st.sampled_from(["a", "b", "c", "hosts"])
TEXT = st.text(st.sampled_from("ab ,.=:{}[]-é\\\"'#\t"), max_size=6)
STRINGS = st.one_of(TEXT, st.sampled_from(["true", "no", "null", "0", "007", "1.5", "~", ""]))
NUMBERS = st.one_of(st.integers(-1000, 1000), st.integers(-(2**63), 2**63 - 1),
                    st.sampled_from([0.5, -2.25, 1e3, 2.0, 1e-7, 1.5e300]))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, STRINGS)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)), max_leaves=8)
MAPS = st.dictionaries(KEYS, VALUES, max_size=4)
DEFAULTS = st.dictionaries(KEYS, st.one_of(st.none(), VALUES), max_size=5)


def escape_key(key: str) -> str:
    """A key as a ``--set`` path writes it (a backslash escapes the next character)."""
    return re.sub(r"([\\.,=\[\]])", r"\\\1", key)


@st.composite
def paths(draw: st.DrawFn, keys: st.SearchStrategy[str] = KEYS, indexes: bool = True) -> str:
    """``a.b[1].c``: keys and list indexes, the first one a key."""
    parts = [escape_key(draw(keys))]
    for _ in range(draw(st.integers(0, 2))):
        if indexes and draw(st.booleans()):
            parts[-1] += f"[{draw(st.integers(0, 3))}]"
        else:
            parts.append(escape_key(draw(keys)))
    return ".".join(parts)


SET_VALUES = st.one_of(
    st.sampled_from(["1", "-7", "0", "007", "true", "False", "null", "NULL", "x", "a b", "",
                     "x\\,y", "1\\,2", "{a,b}", "{}", "{1,true,null}", "{x\\,y,z}", "3.5",
                     "9223372036854775808", "\\{a,b}"]),
    TEXT.map(lambda t: re.sub(r"([\\,])", r"\\\1", t)))


LITERALS = st.text(st.sampled_from("ab,={}[]\\. "), max_size=8)


def json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@st.composite
def flags(draw: st.DrawFn, raw: bool) -> Flag:
    """One flag of any kind (several ``KEY=VALUE`` in one flag, separated by commas)."""
    kind = draw(st.sampled_from(KINDS))
    if raw and draw(st.integers(0, 9)) == 0:
        text = draw(st.text(st.sampled_from("ab.[]01-=,{}\\\" "), max_size=10))
        return Flag(kind, (text,), "raw")
    if kind == "set-json" and draw(st.integers(0, 3)) == 0:
        return Flag(kind, (json_text(draw(MAPS)),), "object")
    if kind == "set-literal":  # one key; the value is the rest, verbatim
        key = draw(paths(PLAIN_KEYS, indexes=False))
        return Flag(kind, (f"{key}={draw(LITERALS)}",), "path")
    parts: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        parts.append(f"{draw(paths())}={draw(_value(kind))}")
        if _swallows(parts[-1]):
            break
    return Flag(kind, tuple(parts), "path")


def _swallows(part: str) -> bool:
    """Whether ``KEY=VALUE`` opens a ``{`` list it does not close: the list takes the rest of
    the flag, so no part may follow (meshc's copy of the flag puts ``app.`` before each)."""
    value = re.split(r"(?<!\\)=", part, maxsplit=1)[1]
    return value.startswith("{") and "}" not in value


def _value(kind: str) -> st.SearchStrategy[str]:
    if kind == "set-json":
        return st.one_of(VALUES.map(json_text), st.just(""), st.just(" null "))
    if kind == "set-file":
        return st.sampled_from(SET_FILES)
    return SET_VALUES


@st.composite
def cases(draw: st.DrawFn) -> Case:
    values_key = draw(st.sampled_from([".", "app"]))
    files = tuple(draw(st.lists(MAPS, min_size=1, max_size=3)))
    return Case(chart=draw(DEFAULTS), files=files,
                env_files=draw(st.integers(0, len(files))), values_key=values_key,
                flags=tuple(draw(st.lists(flags(raw=values_key == "."), max_size=4))),
                set_files=tuple(draw(st.lists(TEXT, min_size=2, max_size=2))))


# --- Helm's verdict ---------------------------------------------------------------------------

CHART_YAML = "apiVersion: v2\nname: show\nversion: 0.1.0\n"
SHOW_TEMPLATE = "values: {{ .Values | toJson | b64enc }}\n"
MESHC_TEMPLATE = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: show}\n"  # never rendered
FAST_GO = {"GOGC": "off", "GOMAXPROCS": "1"}  # a third less CPU for a run this short
_HELM_FLAG_ERROR = re.compile(r"Error: failed parsing --([a-z-]+) data(?:: (.*))?", re.DOTALL)


def write_inputs(case: Case, root: Path) -> None:
    """The case's files (JSON is YAML, so typing is never in question) for Helm and meshc."""
    for folder in ("helm-chart/templates", "chart"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "helm-chart" / "Chart.yaml").write_text(CHART_YAML)
    (root / "helm-chart" / "templates" / "show.yaml").write_text(SHOW_TEMPLATE)
    (root / "chart" / "show.yaml.j2").write_text(MESHC_TEMPLATE)
    for folder in ("helm-chart", "chart"):
        (root / folder / "values.yaml").write_text(json_text(case.chart) + "\n")
    for index, data in enumerate(case.files):
        (root / f"f{index}.yaml").write_text(json_text(data) + "\n")
        wrapped = {"app": data} if case.values_key == "app" and index < case.env_files else data
        (root / f"m{index}.yaml").write_text(json_text(wrapped) + "\n")
    for name, text in zip(SET_FILES, case.set_files, strict=True):
        (root / name).write_bytes(text.encode())
    (root / "meshfile.yaml").write_text(meshfile(case))


def helm_verdict(helm: Path, case: Case, root: Path) -> Verdict:
    """``helm template`` of the case (its inputs already written under ``root``)."""
    args = [str(helm), "template", "r", "./helm-chart"]
    args += [arg for index in range(len(case.files)) for arg in ("-f", f"f{index}.yaml")]
    args += [arg for flag in case.flags for arg in (f"--{flag.kind}", flag.text)]
    env = helm_env(root / "home") | FAST_GO
    proc = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    if proc.returncode == 0:
        line = next(line for line in proc.stdout.splitlines() if line.startswith("values: "))
        return Verdict(json.loads(base64.b64decode(line.split(" ", 1)[1])))
    at = proc.stderr.rfind("Error: ")
    error = proc.stderr[at:].strip() if at >= 0 else proc.stderr.strip() or "?"
    match = _HELM_FLAG_ERROR.match(error)
    if match is None:
        return Verdict(errors=(("other", error),))
    kind, detail = match.groups()
    return Verdict(errors=((kind, None if kind == "set-json" else detail),))


# --- meshc's verdict --------------------------------------------------------------------------

_MESHC_FLAG_ERROR = re.compile(r"invalid --([a-z-]+) value: (.*)", re.DOTALL)


def meshfile(case: Case) -> str:
    env_files = [f"m{i}.yaml" for i in range(case.env_files)]
    release_files = [f"m{i}.yaml" for i in range(case.env_files, len(case.files))]
    key = '\n    valuesKey: "."' if case.values_key == "." else ""
    return ("apiVersion: meshc/v1\nenvironments:\n  prod:\n"
            f"    values: {json.dumps(env_files)}\n"
            f"releases:\n  app:\n    chart: chart{key}\n    values: {json.dumps(release_files)}\n")


def meshc_flags(case: Case) -> list[SetFlag]:
    """The case's flags as meshc gets them: addressing the environment's whole tree."""
    return [SetFlag(flag.kind, flag.addressing(case.values_key)) for flag in case.flags]


def meshc_verdict(case: Case, root: Path) -> Verdict:
    """meshc's values of release ``app`` in ``prod`` (its inputs already under ``root``)."""
    def read(path: str) -> str:
        return (root / path).read_bytes().decode()

    try:
        compiler = with_sets(load_project(ProjectFiles(root)), meshc_flags(case), read)
        env = compiler.project.environment("prod")
        release = compiler.project.release("app")
        assert env is not None and release is not None
        env_values, _ = environment_tree(compiler, env)
        diags = Diagnostics()
        values = release_values(release, env_values, diags)
        diags.raise_if_errors()
    except CompileError as exc:
        return Verdict(errors=tuple(_meshc_error(d.message) for d in exc.diagnostics
                                    if d.severity == "error"))
    return Verdict(values.values)


def _meshc_error(message: str) -> Error:
    match = _MESHC_FLAG_ERROR.match(message)
    if match is None:
        return ("other", message)
    kind, detail = match.groups()
    return (kind, None if kind == "set-json" else detail)


# --- comparing --------------------------------------------------------------------------------

def same(a: Any, b: Any) -> bool:
    """Equal as Helm sees them: numbers as float64 (``3 == 3.0``; Helm reads values files
    through JSON, so an integer beyond 2**53 is its nearest float64 there, and so it is when
    Helm reads meshc's rendered values.yaml), but ``1`` is neither ``true`` nor ``"1"``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def alone(case: Case) -> Case:
    """The case's flags without values files or chart defaults."""
    return Case({}, ({},), 0, case.values_key, case.flags, case.set_files)


def helm_on(helm: Path, case: Case) -> Verdict:
    with tempfile.TemporaryDirectory(prefix="meshc-diff-") as folder:
        write_inputs(case, Path(folder))
        return helm_verdict(helm, case, Path(folder))


def judge(helm: Path, case: Case) -> Trial:
    """Helm's and meshc's verdicts on ``case`` (and Helm's on its flags alone, when needed)."""
    with tempfile.TemporaryDirectory(prefix="meshc-diff-") as folder:
        root = Path(folder)
        write_inputs(case, root)
        trial = Trial(case, helm_verdict(helm, case, root), meshc_verdict(case, root))
    if trial.helm.errors and trial.meshc.errors and trial.helm.errors[0] not in trial.meshc.errors:
        return Trial(case, trial.helm, trial.meshc, helm_on(helm, alone(case)))
    return trial


def in_parallel(run: Callable[[Case], Any], cases_: Sequence[Case]) -> list[Any]:
    """``[run(case) for case in cases_]`` on :data:`WORKERS` threads (each runs helm)."""
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(run, cases_))


def report(trials: Sequence[Trial]) -> str:
    return "\n\n".join(
        f"meshc disagrees with Helm on:\n{json.dumps(t.case.to_json(), ensure_ascii=False)}\n"
        f"helm:  {json.dumps(t.helm.to_json(), ensure_ascii=False)}\n"
        f"meshc: {json.dumps(t.meshc.to_json(), ensure_ascii=False)}\n"
        f"regression entry: {json.dumps({'note': '', **t.to_json()}, ensure_ascii=False)}"
        for t in trials)


# --- the tests --------------------------------------------------------------------------------

def case_key(case: Case) -> str:
    return json.dumps(case.to_json(), sort_keys=True)


def draw_cases(count: int, use: Callable[[Case], None]) -> None:
    """Hand ``use`` ``count`` distinct cases drawn by hypothesis (a few more are drawn, as some
    repeat): derandomized, so a given source tree always draws the same ones (hypothesis
    mixes constants of the code under test into what it draws); with ``MESHC_DIFF_SEED``,
    from that seed instead."""
    seen: set[str] = set()

    def take(case: Case) -> None:
        key = case_key(case)
        if key not in seen and len(seen) < count:
            seen.add(key)
            use(case)

    configured = settings(max_examples=count + count // 5 + 10, deadline=None, database=None,
                          derandomize=SEED is None, suppress_health_check=list(HealthCheck))
    run = configured(given(cases())(take))
    (seed(int(SEED))(run) if SEED is not None else run)()


def minimize(helm: Path, trial: Trial) -> Trial:
    """A smaller case that still disagrees: drop flags, flag parts, files, top-level keys,
    one at a time, while the disagreement stays (hypothesis does not shrink here: its
    examples only draw the cases, the threads judge them)."""
    shrunk = True
    while shrunk:
        shrunk = False
        for smaller in _smaller(trial.case):
            attempt = judge(helm, smaller)
            if not attempt.agree():
                trial, shrunk = attempt, True
                break
    return trial


def _smaller(case: Case) -> list[Case]:
    out = [replace(case, flags=case.flags[:i] + case.flags[i + 1:])
           for i in range(len(case.flags))]
    for i, flag in enumerate(case.flags):
        for j in range(len(flag.parts) if len(flag.parts) > 1 else 0):
            parts = flag.parts[:j] + flag.parts[j + 1:]
            out.append(replace(case, flags=(*case.flags[:i], replace(flag, parts=parts),
                                            *case.flags[i + 1:])))
    if len(case.files) > 1:
        out += [replace(case, files=case.files[:i] + case.files[i + 1:],
                        env_files=min(case.env_files, len(case.files) - 1))
                for i in range(len(case.files))]
    out += [replace(case, chart=_without(case.chart, key)) for key in case.chart]
    for i, data in enumerate(case.files):
        out += [replace(case, files=(*case.files[:i], _without(data, key), *case.files[i + 1:]))
                for key in data]
    return out


def _without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


def test_meshc_values_equal_helms() -> None:
    """``CASES`` distinct cases: hypothesis draws them while :data:`WORKERS` threads judge them
    (a helm run is mostly start-up); a few cases wait at most, and only disagreements are kept,
    so 100,000 cases need no more memory than 1,000."""
    helm = helm4()
    agreed: list[bool] = []  # one entry per case (list.append is atomic across threads)
    disagreements: list[Trial] = []
    slots = threading.Semaphore(4 * WORKERS)

    crashed: list[BaseException] = []

    def done(future: Future[Trial]) -> None:
        slots.release()
        error = future.exception()
        if error is not None:
            crashed.append(error)
        elif future.result().agree():
            agreed.append(True)
        else:
            disagreements.append(future.result())

    def submit(case: Case) -> None:
        slots.acquire()
        pool.submit(judge, helm, case).add_done_callback(done)

    with ThreadPoolExecutor(WORKERS) as pool:
        draw_cases(CASES, submit)
    if crashed:
        raise crashed[0]
    count = len(agreed) + len(disagreements)
    assert count == CASES, f"hypothesis drew only {count} distinct cases"
    assert not disagreements, report([minimize(helm, trial) for trial in disagreements])


def _regressions() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(REGRESSIONS.read_text(encoding="utf-8"))
    return entries


def test_regression_cases_keep_helms_verdict(tmp_path: Path) -> None:
    """Every case that once disagreed, against Helm's recorded verdict (no Helm needed)."""
    failed = []
    for index, entry in enumerate(_regressions()):
        case = Case.from_json(entry["case"])
        write_inputs(case, tmp_path / str(index))
        helm = Verdict.from_json(entry["helm"])
        assert helm is not None
        trial = Trial(case, helm, meshc_verdict(case, tmp_path / str(index)),
                      Verdict.from_json(entry.get("helm_alone")))
        if not trial.agree():
            failed.append(trial)
    assert not failed, report(failed)


def test_regression_cases_against_helm() -> None:
    """The recorded verdicts are still Helm's own, and meshc agrees with Helm on every case."""
    helm = helm4()
    entries = _regressions()
    cases_ = [Case.from_json(entry["case"]) for entry in entries]
    trials: list[Trial] = in_parallel(lambda case: judge(helm, case), cases_)
    stale = [entry["note"] for entry, trial in zip(entries, trials, strict=True)
             if Verdict.from_json(entry["helm"]) != trial.helm]
    assert not stale, f"Helm no longer gives the recorded verdict: {stale}"
    disagreements = [trial for trial in trials if not trial.agree()]
    assert not disagreements, report(disagreements)
