"""Fuzzing with hostile input (issue 9, item 1), on top of ``test_properties.py``.

Generated values files (YAML-ish text with anchors, aliases, tabs, BOMs, CRs and bytes that
are not UTF-8) and templates (Jinja fragments: loops, ranges, recursion, filters, dunder
attributes, includes climbing out, environment reads) always give exit 0 or a diagnostic with
exit 1 — never a traceback, never exit 2 — within the limits, which these projects set low so
a runaway example ends fast. A template that renders renders the same bytes twice.

Examples per test come from the hypothesis profile (``conftest.py``): ``ci`` by default,
``HYPOTHESIS_PROFILE=long`` for a long run by hand.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conftest import run_meshc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                      HealthCheck.data_too_large])
MESHFILE = """\
apiVersion: meshc/v1
project: fuzz
limits: {templateSteps: 20000, templateSeconds: 2, templateOutput: 1Mi, yamlNodes: 20000}
allowEnv: [MESHC_FUZZ]
environments:
  dev: {values: [values.yaml]}
releases:
  app: {chart: charts/app}
"""
VALUES = "app:\n  name: demo\n  items: [a, b]\n  n: 3\n"
TEMPLATE_HEAD = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  v: |\n    "


@contextmanager
def project(values: bytes, template: str) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="meshc-fuzz-"))
    try:
        (root / "charts" / "app").mkdir(parents=True)
        (root / "meshfile.yaml").write_text(MESHFILE, encoding="utf-8")
        (root / "values.yaml").write_bytes(values)
        (root / "charts" / "app" / "cm.yaml.j2").write_text(template, encoding="utf-8")
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(root: Path, *args: str) -> tuple[int, str, str]:
    start = time.monotonic()
    code, out, err = run_meshc("-f", str(root / "meshfile.yaml"), *args)
    assert time.monotonic() - start < 20, f"meshc {' '.join(args)} took too long"
    assert code in (0, 1), f"meshc {' '.join(args)} exited {code}:\n{out}{err}"
    assert "Traceback" not in out + err, err
    if code == 1:
        assert "error:" in err, f"exit 1 without a diagnostic: {err!r}"
    return code, out, err


YAML_PIECES = st.sampled_from([
    "app:", "  name: x", "  n: 1", "\n", "  ", "\t", "- ", "&a ", "*a", "&b [1, 2]", "*b",
    "<<: *a", "{", "}", "[", "]", ": ", ", ", "'", '"', "#", "!!binary aGk=", "!!int x",
    "\ufeff", "\r\n", "\r", "~", "yes", "0777", "1e400", "? ", "---", "...", "%YAML 1.1",
    "app: &a {k: *a}", "a: &x [" + ", ".join(["*x"] * 4) + "]",
])


@FUZZ
@given(st.lists(YAML_PIECES, max_size=25), st.binary(max_size=8))
def test_any_values_file_gives_a_result_or_a_diagnostic(pieces: list[str], noise: bytes) -> None:
    text = "".join(pieces).encode("utf-8", "surrogatepass")
    for values in (text, VALUES.encode() + noise, text + noise):
        with project(values, TEMPLATE_HEAD + "{{ values|toyaml|indent(4) }}\n") as root:
            run(root, "values", "dev", "app")
            run(root, "render", "--out", str(root / "out"))


JINJA_PIECES = st.sampled_from([
    "{{ values.name }}", "{{ values.n * 3 }}", "{% for i in values.items %}{{ i }}{% endfor %}",
    "{% for i in range(1000) %}{% for j in range(1000) %}.{% endfor %}{% endfor %}",
    "{% for i in range(10**9) %}{% endfor %}", "{{ range(100000)|list|length }}",
    "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "{% macro g(n) %}{% if n %}{{ g(n - 1) }}{{ g(n - 1) }}{% endif %}{% endmacro %}{{ g(30) }}",
    "{{ 'x' * 10**9 }}", "{{ 2 ** (10 ** 8) }}", "{{ 'x'|center(10**9) }}",
    "{% set s = 'ab' %}{% for i in range(30) %}{% set s = s ~ s %}{% endfor %}{{ s|length }}",
    "{{ ''.__class__ }}", "{{ cycler.__init__.__globals__ }}", "{{ values|attr('__dict__') }}",
    "{{ '{0.__class__}'.format(1) }}", "{{ self }}", "{{ lipsum() }}",
    "{% include '../../../../etc/passwd' %}", "{% include '/etc/hostname' %}",
    "{% include 'charts/app/cm.yaml.j2' %}", "{% import 'nope.j2' as n %}",
    "{{ env_var('HOME') }}", "{{ env_var('MESHC_FUZZ', 'd') }}", "{{ required_env('MESHC_FUZZ') }}",
    "{{ values.nope }}", "{{ fail('x') }}", "{{ values.items|join(',')|replace(',', '--') }}",
    "{{ values|toyaml|nindent(2) }}", "{{ '%09999999d'|format(1) }}", "{% if %}", "{{ }}",
    "{{ 1/0 }}", "{{ values.n // 0 }}", "{{ [1, 2]|first }}", "{{ {'a': 1}|dictsort }}",
    "{% raw %}{{ x }}{% endraw %}", "\n", "'", ":", "- ", "\t", "{#", "#}",
])


@FUZZ
@given(st.lists(JINJA_PIECES, max_size=6))
def test_any_template_gives_a_result_or_a_diagnostic(pieces: list[str]) -> None:
    template = TEMPLATE_HEAD + "".join(pieces) + "\n"
    with project(VALUES.encode(), template) as root:
        outputs = []
        for out in ("out1", "out2"):
            code, _, _ = run(root, "render", "--out", str(root / out))
            if code == 0:
                outputs.append({p.relative_to(root / out).as_posix(): p.read_bytes()
                                for p in sorted((root / out).rglob("*")) if p.is_file()})
        if len(outputs) == 2:
            assert outputs[0] == outputs[1], "rendering twice gave different bytes"


# --- issue 20: special files at every input path; malformed dotted paths ------------------------

INPUT_PATHS = {  # where a project reads a file or folder → the meshfile line naming it
    "values.yaml": "", "extra.yaml": "    values: [extra.yaml]\n",
    "features.yaml.j2": "features: features.yaml.j2\n", "charts/app/cm.yaml.j2": "",
    "charts/app/values.yaml": "", "charts/app/_inc.j2": "", "charts/app": "",
    "charts/app/values.schema.json": "", "meshfile.yaml": "",
}
SPECIAL = st.sampled_from(["loop", "dangling", "fifo", "socket"])


def _make_special(path: Path, kind: str) -> None:
    import os
    import socket

    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "loop":
        path.symlink_to(path.name)
    elif kind == "dangling":
        path.symlink_to("nowhere")
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        old = Path.cwd()
        os.chdir(path.parent)  # AF_UNIX paths are short: bind by relative name
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.bind(path.name)
        finally:
            os.chdir(old)


@FUZZ
@given(st.sampled_from(sorted(INPUT_PATHS)), SPECIAL,
       st.sampled_from(["plan", "render", "check", "values"]))
def test_special_file_at_any_input_path_is_a_located_error(rel: str, kind: str,
                                                           command: str) -> None:
    """A symlink loop, a dangling symlink, a FIFO or a socket where an input should be: a
    diagnostic (exit 1), never a traceback, and never a hang — a FIFO opened for reading is
    unblocked by a watch (tests/test_hostile.py) and fails the example."""
    from test_hostile import FifoWatch

    template = TEMPLATE_HEAD + "{% include 'charts/app/_inc.j2' %}\n"
    with project(VALUES.encode(), template) as root:
        top = INPUT_PATHS["features.yaml.j2"] if rel == "features.yaml.j2" else ""
        env = INPUT_PATHS["extra.yaml"] if rel == "extra.yaml" else ""
        (root / "meshfile.yaml").write_text(
            MESHFILE.replace("allowEnv:", top + "allowEnv:").replace(
                "  dev: {values: [values.yaml]}\n", "  dev:\n    values: [values.yaml]\n" + env),
            encoding="utf-8")
        (root / "charts/app/_inc.j2").write_text("", encoding="utf-8")
        _make_special(root / rel, kind)
        args = {"plan": ["plan", "dev"], "render": ["render", "--out", str(root / "out")],
                "check": ["check", "--no-stale"], "values": ["values", "dev", "app"]}[command]
        with FifoWatch([root / rel] if kind == "fifo" else []) as watch:
            code, _, err = run(root, *args)
        assert not watch.opened, f"meshc opened the FIFO at {rel}"
        assert code == 1, f"{kind} at {rel}: exit {code}\n{err}"


KEY_TEXT = st.text(st.sampled_from("ab.\\ "), max_size=6)


@FUZZ
@given(KEY_TEXT, KEY_TEXT, KEY_TEXT)
def test_any_dotted_path_gives_a_result_or_a_diagnostic(condition: str, values_key: str,
                                                        version_key: str) -> None:
    """Malformed dotted paths everywhere the meshfile takes one (condition, valuesKey,
    versionKeys): a result or a located diagnostic; an empty key is always an error."""
    import json

    text = MESHFILE.replace("app: {chart: charts/app}", "app:\n    chart: charts/app\n"
                            f"    condition: {json.dumps(condition)}\n"
                            f"    valuesKey: {json.dumps(values_key)}\n"
                            f"    versionKeys: [{json.dumps(version_key)}]")
    with project(b"a:\n  b: true\n  ab: {x: 1}\n", TEMPLATE_HEAD + "x\n") as root:
        (root / "meshfile.yaml").write_text(text, encoding="utf-8")
        code, _, err = run(root, "plan", "dev")
        for path in (condition, version_key):
            if not path or ".." in path.replace("\\.", "") or path.startswith(".") \
                    or (path.endswith(".") and not path.endswith("\\.")):
                assert code == 1 and "empty" in err, f"{path!r} accepted:\n{err}"
