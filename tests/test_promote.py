"""meshc versions, promote and env: round-trip edits (byte-exact), refusals, the prompt, dry runs.

Edits run on copies of the example (never on the repository's own files). Expected edited files
and outputs live in ``tests/golden/promote/`` and ``tests/roundtrip/``; regenerate them with
``pytest --update-goldens`` and review the diff.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import EXAMPLE_INPUTS, GOLDEN, ROOT, check_text, pin_charts, tree_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.cli import main as cli
from compiler.cli import support as cli_support
from compiler.core.diagnostics import CompileError
from compiler.syntax.roundtrip import Change, EditError, edit_text, write_files

CASES = Path(__file__).resolve().parent / "roundtrip"
EXPECTED = GOLDEN / "promote"
EXAMPLE_PARTS = (*EXAMPLE_INPUTS, "rendered")


# --- round-trip edits -----------------------------------------------------------------------

def _cases() -> list[dict]:
    return yaml.safe_load((CASES / "cases.yaml").read_text())


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c["name"])
def test_round_trip_edit_is_byte_exact(case: dict, update_goldens: bool) -> None:
    text = (CASES / f"{case['name']}.in.yaml").read_text(encoding="utf-8")
    changes = [Change(tuple(c["path"]), c["value"], c.get("style", '"')) for c in case["changes"]]
    check_text(CASES / f"{case['name']}.out.yaml", edit_text(text, changes), update_goldens)


def test_round_trip_removes_a_key_with_its_lines_and_nothing_else() -> None:
    from compiler.syntax.roundtrip import REMOVE

    text = ("# state\nweb:\n  live: blue   # traffic\n  blue:\n    image:\n      tag: \"1.4\"\n"
            "  # green's entry\n  green:\n    image: {tag: '1.5'}\n\napi: {live: green}\n")
    assert edit_text(text, [Change(("web", "blue"), REMOVE)]) == (
        "# state\nweb:\n  live: blue   # traffic\n  # green's entry\n  green:\n"
        "    image: {tag: '1.5'}\n\napi: {live: green}\n")
    assert edit_text(text, [Change(("web", "green"), REMOVE)]) == (
        "# state\nweb:\n  live: blue   # traffic\n  blue:\n    image:\n      tag: \"1.4\"\n"
        "  # green's entry\n\napi: {live: green}\n")
    assert edit_text(text, [Change(("web", "nope"), REMOVE)]) == text  # nothing to remove
    assert edit_text(text, [Change(("nope", "green"), REMOVE)]) == text
    with pytest.raises(EditError, match="from a {…} map"):
        edit_text(text, [Change(("api", "live"), REMOVE)])


def test_round_trip_refuses_what_it_cannot_do_in_place() -> None:
    text = "hosts:\n  - a\n  - b\nimage: latest\n"
    with pytest.raises(EditError, match="hosts is not a map"):
        edit_text(text, [Change(("hosts", 2, "name"), "c")])
    with pytest.raises(EditError, match="not a map"):
        edit_text(text, [Change(("image", "tag"), "1.0.0")])
    with pytest.raises(EditError, match="holds a list"):
        edit_text(text, [Change(("hosts",), "x")])


def test_write_files_is_atomic_and_checks_the_disk(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("a: 1\n")
    write_files(tmp_path, {"a.yaml": "a: 2\n", "new/b.yaml": "b: 1\n"},
                {"a.yaml": "a: 1\n", "new/b.yaml": None})
    assert (tmp_path / "a.yaml").read_text() == "a: 2\n"
    assert (tmp_path / "new/b.yaml").read_text() == "b: 1\n"
    with pytest.raises(OSError, match="changed on disk"):
        write_files(tmp_path, {"a.yaml": "a: 3\n"}, {"a.yaml": "a: 1\n"})
    assert (tmp_path / "a.yaml").read_text() == "a: 2\n"
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".meshc-tmp")]
    (tmp_path / "crlf.yaml").write_bytes(b"a: 1\r\nb: 2\r\n")
    write_files(tmp_path, {"crlf.yaml": "a: 1\nb: 3\n"}, {"crlf.yaml": "a: 1\nb: 2\n"})
    assert (tmp_path / "crlf.yaml").read_bytes() == b"a: 1\r\nb: 3\r\n"


# --- the example, copied --------------------------------------------------------------------

@pytest.fixture()
def example(tmp_path: Path) -> Path:
    """A copy of the example project (meshfile, values, templates, rendered output)."""
    project = tmp_path / "example"
    project.mkdir()
    for part in EXAMPLE_PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, project / part)
        else:
            shutil.copy2(source, project / part)
    return project


def meshc(project: Path, *args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.main, ["-f", str(project / "meshfile.yaml"), *args],
                                input=input, catch_exceptions=False, prog_name="meshc")
    return result.exit_code, result.stdout, result.stderr


def inputs(project: Path) -> dict[str, str]:
    """Every input file of the project (not rendered/): what a promotion may change."""
    return {p.relative_to(project).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(project.rglob("*"))
            if p.is_file() and not p.relative_to(project).as_posix().startswith(
                ("rendered/", ".meshc-cache/"))}


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(n for n in set(before) | set(after) if before.get(n) != after.get(n))


def check_run(name: str, result: tuple[int, str, str], update: bool) -> None:
    _, stdout, stderr = result
    check_text(EXPECTED / f"{name}.stdout", stdout, update)
    check_text(EXPECTED / f"{name}.stderr", stderr, update)
    assert "Traceback" not in stderr


def test_versions_of_the_example(example: Path, update_goldens: bool) -> None:
    check_run("versions", meshc(example, "versions"), update_goldens)
    check_run("versions-json", meshc(example, "versions", "-o", "json",
                                     "--release", "weather-agent"), update_goldens)


def test_promote_development_into_staging(example: Path, update_goldens: bool) -> None:
    before = inputs(example)
    result = meshc(example, "promote", "development", "staging", "--yes")
    assert result[0] == 0, result[2]
    check_run("promote-development-staging", result, update_goldens)
    after = inputs(example)
    assert changed(before, after) == ["environments/staging/values.yaml"]
    check_text(EXPECTED / "promote-development-staging.values.yaml",
               after["environments/staging/values.yaml"], update_goldens)
    code, stdout, _ = meshc(example, "versions", "--release", "weather-agent")
    assert code == 0 and "1.1.0-dev.1 =" in stdout


def test_new_environment_then_promote_into_it(example: Path, update_goldens: bool) -> None:
    """The issue's "done when": qa from staging, promoted from development, in sync."""
    before = inputs(example)
    result = meshc(example, "env", "new", "qa", "--from", "staging",
                   "--promotes-from", "development", "--alias", "test")
    assert result[0] == 0, result[2]
    check_run("env-new-qa", result, update_goldens)
    made = inputs(example)
    assert changed(before, made) == ["environments/qa/values.yaml", "meshfile.yaml"]
    check_text(EXPECTED / "env-new-qa.meshfile.yaml", made["meshfile.yaml"], update_goldens)
    staging = before["environments/staging/values.yaml"]
    assert made["environments/qa/values.yaml"].endswith(staging)

    code, _, stderr = meshc(example, "plan", "qa")
    assert code == 0, stderr
    code, _, stderr = meshc(example, "render", "qa")
    assert code == 0, stderr

    result = meshc(example, "promote", "development", "qa", "--yes")
    assert result[0] == 0, result[2]
    check_run("promote-development-qa", result, update_goldens)
    after = inputs(example)
    assert changed(made, after) == ["environments/qa/values.yaml"]
    check_text(EXPECTED / "promote-development-qa.values.yaml",
               after["environments/qa/values.yaml"], update_goldens)
    check_run("versions-with-qa", meshc(example, "versions"), update_goldens)
    check_run("env-list-with-qa", meshc(example, "env", "list"), update_goldens)


def test_new_environment_joins_the_chain(example: Path) -> None:
    code, _, stderr = meshc(example, "env", "new", "qa", "--from", "staging",
                            "--promotes-from", "development", "--promotes-to", "staging")
    assert code == 0, stderr
    code, stdout, _ = meshc(example, "env", "list", "-o", "json")
    assert '"promotionOrder": [\n    "development",\n    "qa",\n    "staging"' in stdout
    code, _, stderr = meshc(example, "promote", "development", "staging", "--dry-run")
    assert code == 1 and "does not promote from 'development'" in stderr


def test_chart_versions_are_promoted_in_the_meshfile(example: Path,
                                                      update_goldens: bool) -> None:
    meshfile = example / "meshfile.yaml"
    text = meshfile.read_text()
    staging = "    helm: {timeout: 10m, rollbackOnFailure: true}\n"
    meshfile.write_text(text.replace(staging, staging + "    chartVersions: "
                                     "{prometheus: 25.9.0, grafana: \"7.4.0\"}\n"))
    pin_charts(example)  # new chart versions are pinned first (meshc charts update)
    code, stdout, stderr = meshc(example, "plan", "staging", "-o", "json")
    assert code == 0 and '"25.9.0"' in stdout, stderr
    result = meshc(example, "promote", "staging", "production", "--yes")
    assert result[0] == 0, result[2]
    check_run("promote-staging-production-charts", result, update_goldens)
    code, stdout, _ = meshc(example, "plan", "production-dr", "-o", "json")
    assert '"25.9.0"' in stdout and '"7.4.0"' in stdout


def test_new_environment_gets_a_namespace_of_its_own(example: Path) -> None:
    meshfile = example / "meshfile.yaml"
    context = "    kubeContext: prod-dr               # the DR cluster\n"
    assert context in meshfile.read_text()
    meshfile.write_text(meshfile.read_text().replace(context, context + "    namespace: mcp\n"))
    code, stdout, stderr = meshc(example, "env", "new", "canary", "--from", "production-dr")
    assert code == 0, stderr
    assert '+    namespace: "mcp-mesh-{{ env.name }}"' in stdout
    assert "namespace mcp-mesh-canary" in stderr and "would be shared" in stderr
    code, stdout, _ = meshc(example, "plan", "canary", "-o", "json")
    assert code == 0 and '"namespace": "mcp-mesh-canary"' in stdout


def test_version_keys_are_configurable(example: Path) -> None:
    meshfile = example / "meshfile.yaml"
    text = meshfile.read_text().replace("features: templates/features.yaml.j2\n",
                                        "features: templates/features.yaml.j2\n"
                                        "versionKeys: [image.repository]\n")
    meshfile.write_text(text.replace("    labels: {tier: core}\n",
                                     "    labels: {tier: core}\n    versionKeys: []\n", 1))
    code, stdout, stderr = meshc(example, "versions", "-o", "json")
    assert code == 0, stderr
    assert '"key": "image.repository"' in stdout and '"key": "image.tag"' not in stdout
    assert '"release": "registry"' not in stdout


def test_ahead_of_the_source_is_shown_as_an_error(example: Path) -> None:
    development = example / "environments/development/values.yaml"
    development.write_text(development.read_text().replace('"1.1.0-dev.1"', '"1.0.0"'))
    code, stdout, _ = meshc(example, "versions", "--release", "weather-agent")
    assert code == 0
    assert "1.0.1-rc.1 >" in stdout and "ahead of their source (errors):" in stdout
    assert "development -> staging: weather-agent image.tag 1.0.1-rc.1 (source: 1.0.0)" in stdout


def test_chart_versions_are_checked(example: Path) -> None:
    meshfile = example / "meshfile.yaml"
    staging = "    helm: {timeout: 10m, rollbackOnFailure: true}\n"
    meshfile.write_text(meshfile.read_text().replace(
        staging, staging + "    chartVersions: {promethus: 1.0.0, registry: 1.0.0, grafana: 7.4}\n"))
    code, _, stderr = meshc(example, "versions")
    assert code == 1
    assert "unknown release 'promethus'" in stderr and "did you mean 'prometheus'?" in stderr
    assert "release 'registry' has a local chart" in stderr
    assert "must be a string" in stderr and "^" in stderr and "Traceback" not in stderr


# --- refusals -------------------------------------------------------------------------------

def test_promotion_against_the_order_is_refused(example: Path, update_goldens: bool) -> None:
    before = inputs(example)
    result = meshc(example, "promote", "production", "staging", "--yes")
    assert result[0] == 1
    check_run("refuse-production-staging", result, update_goldens)
    result = meshc(example, "promote", "development", "production", "--yes")
    assert result[0] == 1 and "'production' promotes from 'staging'" in result[2]
    assert inputs(example) == before


def test_promotion_moving_a_version_backwards_is_refused(example: Path,
                                                          update_goldens: bool) -> None:
    development = example / "environments/development/values.yaml"
    development.write_text(development.read_text().replace('"1.1.0-dev.1"', '"1.0.0"'))
    before = inputs(example)
    result = meshc(example, "promote", "development", "staging", "--yes")
    assert result[0] == 1
    check_run("refuse-backwards", result, update_goldens)
    assert inputs(example) == before


def test_unorderable_versions_are_refused(example: Path) -> None:
    development = example / "environments/development/values.yaml"
    development.write_text(development.read_text().replace('"1.1.0-dev.1"', "latest"))
    code, _, stderr = meshc(example, "promote", "development", "staging", "--yes")
    assert code == 1 and "not both semantic versions" in stderr


def test_target_without_values_file_of_its_own_is_refused(example: Path) -> None:
    meshfile = example / "meshfile.yaml"
    meshfile.write_text(meshfile.read_text().replace(
        "\n# Feature flags", "\n  qa:\n    inherits: staging\n    promotesFrom: development\n\n"
                            "# Feature flags", 1))
    code, _, stderr = meshc(example, "promote", "development", "qa", "--dry-run")
    assert code == 1 and "it has no values file of its own" in stderr, stderr
    assert "meshfile.yaml:" in stderr and "^" in stderr


def test_unknown_names_are_diagnostics(example: Path) -> None:
    for args, message in [
        (("promote", "dev", "stagign"), "did you mean 'staging'?"),
        (("promote", "development", "staging", "--release", "nope"), "unknown release 'nope'"),
        (("env", "new", "staging", "--from", "development"), "already an environment"),
        (("env", "new", "QA", "--from", "staging"), "not a DNS-1123 label"),
        (("env", "new", "qa", "--from", "nowhere"), "unknown environment 'nowhere'"),
        (("env", "new", "qa", "--from", "staging", "--promotes-from", "base"), "abstract"),
    ]:
        code, _, stderr = meshc(example, *args)
        assert code == 1, args
        assert message in stderr, (args, stderr)
        assert "Traceback" not in stderr


# --- asking before writing ------------------------------------------------------------------

def test_dry_run_writes_nothing(example: Path) -> None:
    before = tree_files(example)
    code, stdout, stderr = meshc(example, "promote", "development", "staging", "--dry-run")
    assert code == 0, stderr
    assert "+      tag: \"1.1.0-dev.1\"" in stdout and "dry run: nothing written" in stderr
    code, _, stderr = meshc(example, "env", "new", "qa", "--from", "staging", "--dry-run")
    assert code == 0, stderr
    assert tree_files(example) == before


def test_no_terminal_and_no_yes_writes_nothing(example: Path) -> None:
    before = tree_files(example)
    code, _, stderr = meshc(example, "promote", "development", "staging")
    assert code == 1 and "pass --yes" in stderr
    assert tree_files(example) == before


def test_the_prompt(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_support, "can_prompt", lambda: True)
    before = inputs(example)
    code, _, stderr = meshc(example, "promote", "development", "staging", input="n\n")
    assert code == 1 and "Write these changes? [y/N]" in stderr and "nothing written" in stderr
    assert inputs(example) == before
    code, _, stderr = meshc(example, "promote", "development", "staging", input="y\n")
    assert code == 0, stderr
    assert changed(before, inputs(example)) == ["environments/staging/values.yaml"]
    assert "is stale" in stderr


def test_protected_target_asks_for_its_name(example: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_support, "can_prompt", lambda: True)
    before = inputs(example)
    code, _, stderr = meshc(example, "promote", "staging", "production", input="y\n")
    assert code == 1 and "type its name" in stderr and "is protected" in stderr
    assert inputs(example) == before
    code, _, stderr = meshc(example, "promote", "staging", "production", input="production\n")
    assert code == 0, stderr
    assert changed(before, inputs(example)) == ["environments/production/values.yaml"]
    assert "also changes: production/eu-west, production/us-east, production-dr" in stderr
    assert "note: production/eu-west, production/us-east, production-dr are protected" in stderr


def test_render_after_promotion(example: Path) -> None:
    code, _, stderr = meshc(example, "promote", "development", "staging", "--yes", "--render")
    assert code == 0, stderr
    assert "rendered 5 environments" in stderr
    code, stdout, _ = meshc(example, "diff", "--rendered", "staging", "--exit-code")
    assert code == 0, stdout


# --- properties -----------------------------------------------------------------------------

_KEYS = st.sampled_from(["image", "tag", "a", "b", "on", "x.y", "1", "env"])
_SCALARS = st.one_of(st.sampled_from(["1.0.0", "yes", "1.10", "", "a b", "#x", "'q'"]),
                     st.integers(-5, 5), st.booleans(), st.none())
_DATA = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.dictionaries(_KEYS, inner, max_size=4), st.lists(inner, max_size=3)), max_leaves=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.dictionaries(_KEYS, _DATA, max_size=5),
       flow=st.booleans(), indent=st.sampled_from([2, 4]),
       path=st.lists(st.one_of(_KEYS, st.integers(0, 2)), min_size=1, max_size=4),
       value=st.sampled_from(["2.0.0", "no", "0777", "x: y", "ok"]),
       style=st.sampled_from(['"', "'", ""]))
def test_any_edit_is_exact_or_refused(data: dict, flow: bool, indent: int, path: list,
                                      value: str, style: str) -> None:
    """Any document and change: the exact change (read back the way meshc reads values), or an
    EditError — never another exception, never a different document."""
    from compiler.syntax.yamlsrc import load_documents

    text = yaml.safe_dump(data, default_flow_style=flow, indent=indent, sort_keys=False)
    try:
        load_documents(text, "<t>")
    except CompileError:   # PyYAML wrote something Helm's reader rejects (a null key)
        return
    try:
        after = edit_text(text, [Change(tuple(path), value, style)])
    except EditError:
        return
    (doc,) = load_documents(after, "<t>") or [{}]
    assert isinstance(doc, dict)
    node = doc
    for part in path[:-1]:
        node = node[part]
    assert node[path[-1]] == value
