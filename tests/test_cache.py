"""The release cache never serves stale output: every kind of input change shows up, an
unchanged re-render writes nothing, and a tampered output is repaired."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import copy_features_project, fresh_tree, render_tree, run_meshc

project = pytest.fixture(name="project")(copy_features_project)


def render(project: Path, *args: str) -> tuple[str, dict[str, str]]:
    return render_tree(project, "render", *args)


def fresh(project: Path, *args: str) -> dict[str, str]:
    return fresh_tree(project, "render", *args)


def test_unchanged_rerender_writes_nothing(project: Path) -> None:
    _, first = render(project)
    assert (project / ".meshc-cache").is_dir()
    message, second = render(project)
    assert "is up to date" in message
    assert first == second == fresh(project)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


EDITS = {
    "values file": ("env/live.yaml", "  replicas: 4", "  replicas: 6"),
    "chart values": ("charts/web/values.yaml", "port: 8080", "port: 8081"),
    "template": ("charts/web/deployment.yaml.j2", "name: web\n", "name: web-main\n"),
    "imported macro": ("charts/web/_helpers.j2", "managed-by: meshc", "managed-by: meshc-x"),
    "features template": ("features.yaml.j2", "{{ global.brand }} {{ env.name }}",
                          "{{ global.brand }} / {{ env.name }}"),
    "meshfile": ("meshfile.yaml", "kubeContext: live-ctx", "kubeContext: live-eu-ctx"),
    "patch": ("meshfile.yaml", 'value: "yes"', 'value: "no"'),
}


@pytest.mark.parametrize("what", sorted(EDITS))
def test_every_kind_of_input_change_is_seen(project: Path, what: str) -> None:
    _, before = render(project)
    file, old, new = EDITS[what]
    edit(project / file, old, new)
    _, after = render(project)
    assert after != before, f"a change to the {what} did not change the output"
    assert after == fresh(project), f"cached output after a {what} change is stale"


def test_set_flags_are_part_of_the_key(project: Path) -> None:
    _, before = render(project)
    _, after = render(project, "--set", "web.replicas=9")
    assert after != before
    assert after == fresh(project, "--set", "web.replicas=9")
    _, again = render(project)
    assert again == before


def test_tampered_output_is_repaired(project: Path) -> None:
    _, before = render(project)
    victim = project / "rendered" / "live" / "web" / "values.yaml"
    victim.write_text("tampered: true\n")
    message, after = render(project)
    assert "is up to date" not in message
    assert after == before


def test_plan_uses_and_agrees_with_the_cache(project: Path) -> None:
    render(project)
    edit(project / "env" / "live.yaml", "  replicas: 4", "  replicas: 5")
    code, cached, err = run_meshc("-f", str(project / "meshfile.yaml"), "plan", "live")
    assert code == 0, err
    code, uncached, err = run_meshc("-f", str(project / "meshfile.yaml"), "plan", "live",
                                    "--no-cache")
    assert code == 0, err
    assert cached == uncached
    assert "~ Deployment/web spec.replicas: 4 → 5" in cached


def test_a_forged_cache_is_ignored(project: Path) -> None:
    render(project)
    for pack in (project / ".meshc-cache").glob("*.pickle"):
        pack.write_bytes(b"not a sealed pickle")
    edit(project / "env" / "live.yaml", "  replicas: 4", "  replicas: 7")
    _, after = render(project)
    assert after == fresh(project)


def test_values_parsed_ahead_on_every_core_agree_and_errors_still_report(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Values files are parsed ahead in forked workers when large (here: always); the result
    must be the serial one, and broken files must be reported as a serial parse reports them."""
    from compiler.output import cache as cache_module
    monkeypatch.setattr(cache_module, "PREFETCH_BYTES", 0)
    expected = fresh(project)
    shutil.rmtree(project / ".meshc-cache", ignore_errors=True)
    _, got = render(project)
    assert got == expected
    shutil.rmtree(project / ".meshc-cache")
    (project / "env/qa.yaml").write_text("a: [1\n")
    (project / "env/live.yaml").write_text("b: {\n")
    code, _, err = run_meshc("-f", str(project / "meshfile.yaml"), "render")
    serial_code, _, serial = run_meshc("-f", str(project / "meshfile.yaml"), "render",
                                       "--no-cache")
    assert code == serial_code == 1
    assert err == serial and "env/qa.yaml:2:1" in err and "env/live.yaml:2:1" in err, err
