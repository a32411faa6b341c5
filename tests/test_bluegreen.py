"""Blue-green releases: the switch flow on a copy of the ``ok-bluegreen`` golden project.

``web`` deploys as ``web-blue``, ``web-green`` and the router ``web``; production's
``bluegreen/production.yaml`` pins blue (live) to 1.4.0 while the environment asks for 1.5.0,
which goes to green. A switch edits the state file and re-renders; ``--back`` undoes it. There
is no cluster here: "deployed" means rendered and committed, as the plan is what apply runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import GOLDEN, check_text, tree_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.cli import main as cli
from compiler.cli import support as cli_support

PROJECT = GOLDEN / "ok-bluegreen" / "project"
STATE = "bluegreen/production.yaml"


def meshc(project: Path, *args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.main, ["-f", str(project / "meshfile.yaml"), *args],
                                input=input, catch_exceptions=False, prog_name="meshc")
    return result.exit_code, result.stdout, result.stderr


def files(project: Path) -> dict[str, str]:
    """The project's files, rendered output included (not meshc's cache)."""
    return {k: v for k, v in tree_files(project).items() if not k.startswith(".meshc")}


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(n for n in set(before) | set(after) if before.get(n) != after.get(n))


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """The golden project, rendered (as committed after a review)."""
    target = tmp_path / "shop"
    shutil.copytree(PROJECT, target)
    code, _, err = meshc(target, "render")
    assert code == 0, err
    return target


def test_switch_then_back_round_trips(project: Path) -> None:
    first = files(project)
    code, out, err = meshc(project, "switch", "production", "web", "--yes")
    assert code == 0, err
    assert "-  live: blue\n+  live: green\n" in out
    assert "web in production: live slot blue -> green (web-green runs image.tag 1.5.0)" in err
    switched = files(project)
    # the first switch records what green runs (it had no entry); the router now sends traffic
    # to green, which is live; blue, idle, keeps 1.4.0 and scales to idleReplicas (0)
    assert changed(first, switched) == [
        STATE, "rendered/production/plan.json",
        "rendered/production/web-blue/manifests/deployment-web-blue.yaml",
        "rendered/production/web-blue/values.yaml", "rendered/production/web-green/values.yaml",
        "rendered/production/web/manifests/service-web.yaml",
        "rendered/production/web/values.yaml"]
    assert "slot: green" in switched["rendered/production/web/manifests/service-web.yaml"]
    assert "shop/web:1.4.0" in switched[
        "rendered/production/web-blue/manifests/deployment-web-blue.yaml"]
    assert "replicas: 0" in switched[
        "rendered/production/web-blue/manifests/deployment-web-blue.yaml"]

    code, _, err = meshc(project, "switch", "production", "web", "--back", "--yes")
    assert code == 0, err
    # --back removes the entry the switch wrote for green (it only repeats the values files'
    # 1.5.0, which green, idle and holding the new version, gets anyway): every byte as before
    assert files(project) == first
    # and again: a switch and its --back give back every byte
    assert meshc(project, "switch", "production", "web", "--yes")[0] == 0
    assert files(project) == switched
    assert meshc(project, "switch", "production", "web", "--back", "--yes")[0] == 0
    assert files(project) == first


def test_a_new_version_goes_to_the_idle_slot_only(project: Path) -> None:
    assert meshc(project, "switch", "production", "web", "--yes")[0] == 0
    values = project / "environments" / "production.yaml"
    values.write_text(values.read_text().replace("1.5.0", "1.6.0"))
    code, out, err = meshc(project, "plan", "production")
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith(("  web", "  db"))]
    status = {line.split()[0]: line.rsplit("[", 1)[1] for line in lines}
    assert status == {"db": "unchanged]", "web-blue": "changed: 5 changes]",
                      "web-green": "unchanged]", "web": "unchanged]"}, out
    assert "idle slot of web: gets the new version" in out
    code, out, _ = meshc(project, "values", "production", "web-blue")
    assert "tag: 1.6.0" in out and "live: false" in out and "idleReplicas" not in out


def test_switch_refusals(project: Path) -> None:
    assert meshc(project, "switch", "production", "web", "--yes")[0] == 0
    before = files(project)
    # forward again: blue runs 1.4.0, behind the live green's 1.5.0
    code, _, err = meshc(project, "switch", "production", "web", "--yes")
    assert code == 1
    assert ("refusing to switch 'web' in 'production' to blue: blue runs a version behind the "
            "live green (image.tag 1.4.0 < 1.5.0); to go back to it: --back") in err
    assert "--force switches anyway" in err
    # a new version in the values, not rendered yet: blue was never deployed with it
    values = project / "environments" / "production.yaml"
    values.write_text(values.read_text().replace("1.5.0", "1.6.0"))
    code, _, err = meshc(project, "switch", "production", "web", "--back", "--yes")
    assert code == 1
    assert "blue was not live before: it holds a version that was never live" in err
    assert ("slot web-blue was never deployed with what it runs now "
            "(rendered/production/web-blue/values.yaml differs") in err
    assert files(project) == before | {"environments/production.yaml":
                                       files(project)["environments/production.yaml"]}
    code, _, err = meshc(project, "switch", "production", "web", "--back", "--force", "--yes")
    assert code == 0, err
    assert "forced: slot web-blue was never deployed" in err


def test_switch_when_nothing_is_deployed(tmp_path: Path) -> None:
    shutil.copytree(PROJECT, tmp_path / "p")
    code, _, err = meshc(tmp_path / "p", "switch", "staging", "web", "--force")
    assert code == 1 and "Traceback" not in err
    assert "nothing of blue-green release 'web' is deployed in 'staging'" in err


def test_protected_switch_is_confirmed(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = files(project)
    code, _, err = meshc(project, "switch", "production", "web")
    assert code == 1 and "is protected and there is no terminal to confirm on" in err
    monkeypatch.setattr(cli_support, "can_prompt", lambda: True)
    code, _, err = meshc(project, "switch", "production", "web", input="prod\n")
    assert code == 1 and "cancelled: 'production' was not confirmed" in err
    assert files(project) == before
    code, _, err = meshc(project, "switch", "production", "web", "--dry-run")
    assert code == 0 and "dry run: nothing written" in err and files(project) == before
    code, _, err = meshc(project, "switch", "production", "web", input="production\n")
    assert code == 0, err
    assert "live: green" in (project / STATE).read_text()
    # staging is not protected: no question; it has no state file yet: the switch writes one
    code, _, err = meshc(project, "switch", "staging", "web")
    assert code == 0, err
    check_text(GOLDEN / "ok-bluegreen" / "switch-staging.state.yaml",
               (project / "bluegreen" / "staging.yaml").read_text(), False)
    assert "slot: green" in (project / "rendered/staging/web/manifests/service-web.yaml").read_text()


def test_promote_reaches_the_idle_slot(project: Path) -> None:
    staging = project / "environments" / "staging.yaml"
    staging.write_text(staging.read_text().replace("1.5.0", "1.6.0"))
    code, _, err = meshc(project, "promote", "staging", "production", "--yes")
    assert code == 0, err
    assert "web image.tag: 1.5.0 -> 1.6.0  (environments/production.yaml)" in err
    code, out, _ = meshc(project, "versions")
    row = {line.split()[0]: line.split()[2:] for line in out.splitlines()[3:7]}
    assert row["web-blue"] == ["1.6.0", "live", "1.4.0", "live"]
    assert row["web-green"] == ["1.6.0", "idle", "1.6.0", "idle"]
    assert row["web"] == ["1.6.0", "1.6.0", "="]


# any state file: a result or located diagnostics, never a traceback ---------------------------

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(
    ["blue", "green", "purple", "1.4.0", "", "web", "live"]))
_KEYS = st.sampled_from(["web", "db", "wbe", "live", "blue", "green", "image", "tag", "x"])
_DATA = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=4)), max_leaves=12)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=_DATA)
def test_any_state_file_gives_values_or_diagnostics(data: object, tmp_path_factory:
                                                     pytest.TempPathFactory) -> None:
    from compiler.core.diagnostics import CompileError
    from compiler.core.files import ProjectFiles
    from compiler.pipeline import load_project, prepare

    root = tmp_path_factory.mktemp("state")
    shutil.copytree(PROJECT, root / "p")
    (root / "p" / STATE).write_text(yaml.safe_dump(data))
    compiler = load_project(ProjectFiles(root / "p"))
    try:
        prepared = prepare(compiler, compiler.project.environment("production"))
    except CompileError as exc:
        assert all(d.span is not None and d.span.file == STATE for d in exc.diagnostics), exc
        return
    (status,) = prepared.slots
    assert status.live in ("blue", "green")
