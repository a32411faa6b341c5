"""The render journal (compiler/output/journal.py): a re-render with nothing changed stops before
compiling, and every kind of change — including those no cache key names, such as a file added
to a chart folder, a symlink retargeted, an allowed environment variable, a --limit flag, an
edited output file — falls through to a real compile that sees it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import copy_features_project, fresh_tree, render_tree, run_meshc, tree_files

from compiler.cli import support as cli_support
from compiler.core.files import ProjectFiles
from compiler.output.journal import still_holds

HOSTILE_ENV = Path(__file__).resolve().parent / "hostile" / "env-allowed" / "project"

project = pytest.fixture(name="project")(copy_features_project)
render = render_tree
fresh = fresh_tree


def no_compile(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make loading the project fail loudly: the journal must answer without it."""
    calls: list[str] = []

    def explode(*args: Any, **kwargs: Any) -> Any:
        calls.append("load_project")
        raise AssertionError("the project was compiled")

    monkeypatch.setattr(cli_support, "load_project", explode)
    return calls


def test_nothing_changed_answers_without_compiling(project: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _, first = render(project, "render")
    no_compile(monkeypatch)
    message, second = render(project, "render")
    assert message.endswith(f"rendered is up to date ({len(first)} files: written 0, removed 0, "
                            f"unchanged {len(first)})\n"), message
    assert second == first


def test_a_touched_input_with_the_same_bytes_still_answers(project: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    render(project, "render")
    values = project / "env" / "live.yaml"
    values.write_bytes(values.read_bytes())  # new mtime, same content
    no_compile(monkeypatch)
    message, _ = render(project, "render")
    assert "is up to date" in message


def _add_template(project: Path) -> None:
    (project / "charts/web/configmap.yaml.j2").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-extra\ndata:\n  a: b\n")


def _remove_file(project: Path) -> None:
    (project / "release/web.yaml").write_text("{}\n")


def _retarget_symlink(project: Path) -> None:
    (project / "env/live-real.yaml").write_text((project / "env/live.yaml").read_text()
                                                .replace("  replicas: 4", "  replicas: 7"))
    (project / "env/live.yaml").unlink()
    (project / "env/live.yaml").symlink_to("live-real.yaml")


CHANGES = {
    "a template added to the chart folder": _add_template,
    "a values file emptied": _remove_file,
    "a values file replaced by a symlink to other content": _retarget_symlink,
}


@pytest.mark.parametrize("what", sorted(CHANGES))
def test_changes_no_cache_key_names_are_seen(project: Path, what: str) -> None:
    _, before = render(project, "render")
    CHANGES[what](project)
    message, after = render(project, "render")
    assert "up to date" not in message
    assert after != before, f"{what}: output unchanged"
    assert after == fresh(project, "render")


def test_a_limit_flag_is_part_of_the_command(project: Path) -> None:
    render(project, "render")
    code, _, err = run_meshc("-f", str(project / "meshfile.yaml"), "--limit=templateOutput=20",
                             "render")
    assert code == 1 and "templateOutput" in err, err  # not "up to date": the limit applies


def test_an_edited_output_file_is_rewritten(project: Path) -> None:
    _, before = render(project, "render")
    victim = next(p for p in sorted((project / "rendered").rglob("*.yaml")))
    victim.write_text(victim.read_text() + "# edited by hand\n")
    message, after = render(project, "render")
    assert "up to date" not in message
    assert after == before


def test_an_allowed_environment_variable_is_an_input(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "env"
    shutil.copytree(HOSTILE_ENV, project)
    monkeypatch.setenv("MESHC_HOSTILE_NS", "blue")
    _, blue = render(project, "render")
    monkeypatch.setenv("MESHC_HOSTILE_NS", "green")
    message, green = render(project, "render")
    assert "up to date" not in message
    assert any("ns-green" in text for text in green.values())
    assert not any("ns-blue" in text for text in green.values()), blue
    monkeypatch.delenv("MESHC_HOSTILE_NS")
    code, _, err = run_meshc("-f", str(project / "meshfile.yaml"), "render")
    assert code == 1 and "MESHC_HOSTILE_NS" in err, err


def test_set_file_content_is_always_read(project: Path, tmp_path: Path) -> None:
    """--set-file reads outside the project: such a render is never answered from the journal."""
    extra = tmp_path / "replicas.txt"
    extra.write_text("5")
    _, before = render(project, "render", "--set-file", f"web.note={extra}")
    extra.write_text("6")
    message, after = render(project, "render", "--set-file", f"web.note={extra}")
    assert "up to date" not in message
    assert after != before


def test_out_folder_is_part_of_the_command(project: Path, tmp_path: Path) -> None:
    render(project, "render")
    other = tmp_path / "elsewhere"
    code, _, err = run_meshc("-f", str(project / "meshfile.yaml"), "render", "--out", str(other))
    assert code == 0 and "up to date" not in err, err
    assert tree_files(other) == tree_files(project / "rendered")


def test_replay_notices_each_kind_of_observation(tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / "charts/a").mkdir(parents=True)
    (root / "charts/a/x.j2").write_text("x")
    (root / "v.yaml").write_text("a: 1\n")
    environ = {"ALLOWED": "1"}
    files = ProjectFiles(root, environ, journal={})
    files.read("v.yaml")
    files.list_dir("charts/a")
    files.is_dir("charts/b")
    files.all_templates()
    _ = "ALLOWED" in files.environ
    _ = "UNSET" in files.environ
    with pytest.raises(OSError):
        files.read("missing.yaml")
    journal = dict(files.journal or {})
    assert still_holds(root, journal, environ)

    def changed(step: Any, env: dict[str, str] | None = None) -> bool:
        step()
        try:
            return not still_holds(root, journal, environ if env is None else env)
        finally:
            shutil.rmtree(root)
            (root / "charts/a").mkdir(parents=True)
            (root / "charts/a/x.j2").write_text("x")
            (root / "v.yaml").write_text("a: 1\n")

    assert changed(lambda: (root / "v.yaml").write_text("a: 2\n"))
    assert changed(lambda: (root / "charts/a/y.j2").write_text("y"))
    assert changed(lambda: (root / "charts/b").mkdir())
    assert changed(lambda: (root / "missing.yaml").write_text("now here\n"))
    assert changed(lambda: (root / "deep/er").mkdir(parents=True) or
                   (root / "deep/er/t.j2").write_text("t"))
    assert changed(lambda: None, {"ALLOWED": "2"})
    assert changed(lambda: None, {"ALLOWED": "1", "UNSET": "now"})
    assert not changed(lambda: os.utime(root / "v.yaml", (0, 0)))


def _hard_links_work(folder: Path) -> bool:
    """Whether the file system under ``folder`` has hard links (meshc writes where it has not)."""
    (folder / "link-probe").write_text("x")
    try:
        os.link(folder / "link-probe", folder / "link-probe-2")
    except OSError:
        return False
    finally:
        (folder / "link-probe").unlink()
    (folder / "link-probe-2").unlink()
    return True


def _inodes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_ino for p in root.rglob("*")
            if p.is_file()}


def test_one_environment_changed_writes_only_its_changed_files(project: Path) -> None:
    """An edit that changes one environment's output writes that environment's changed files
    alone, each replaced by a rename (a new inode): every other file keeps its inode."""
    _, before = render(project, "render")
    inodes = _inodes(project / "rendered")
    edit = project / "env" / "qa.yaml"
    edit.write_text(edit.read_text() + "extraForQa: 1\n")
    message, after = render(project, "render")
    changed = sorted(rel for rel in after if after[rel] != before.get(rel))
    assert changed and all(rel.startswith("qa/") for rel in changed), changed
    assert f"written {len(changed)}, removed 0, unchanged {len(after) - len(changed)}" \
        in message, message
    assert after == fresh(project, "render") and after != before
    now = _inodes(project / "rendered")
    for rel, ino in inodes.items():
        if rel in changed:
            assert now[rel] != ino, f"{rel} changed in place, not replaced atomically"
            continue
        assert now[rel] == ino, f"{rel} was rewritten"  # other environments, unchanged files
    assert not [p for p in project.iterdir() if ".rendered.meshc-" in p.name], "staging left"
    from compiler.core import sealed
    from compiler.output.journal import tree_stats

    snapshot = sealed.read_map(project / ".meshc-cache" / "output.pickle")
    assert snapshot["stats"] == tree_stats(project / "rendered"), "snapshot is not the tree"


def test_a_change_to_several_environments_rewrites_the_tree(project: Path) -> None:
    render(project, "render")
    edit = project / "env" / "common.yaml"
    edit.write_text(edit.read_text() + "extraForAll: 1\n")
    message, after = render(project, "render")
    assert "up to date" not in message, message
    assert after == fresh(project, "render")


def test_a_hand_edited_output_is_rewritten_whole(project: Path) -> None:
    """With a file of the output touched since meshc wrote it, which environments differ is not
    known: the whole tree is rewritten (and repaired)."""
    _, before = render(project, "render")
    (project / "rendered" / "live" / "plan.json").write_text("{}\n")
    edit = project / "env" / "qa.yaml"
    edit.write_text(edit.read_text() + "extraForQa: 1\n")
    message, after = render(project, "render")
    assert "only" not in message, message
    assert after == fresh(project, "render")
    assert after["live/plan.json"] == before["live/plan.json"]


def test_plan_review_agrees_whether_or_not_it_reads_the_committed_tree(project: Path) -> None:
    """The plan review skips reading an environment's committed folder that meshc wrote and
    nobody touched since; its answer must be the one reading gives, touched or not."""
    render(project, "render")

    def plans() -> tuple[str, str]:
        meshfile = str(project / "meshfile.yaml")
        code, shortcut, err = run_meshc("-f", meshfile, "plan", "live")
        assert code == 0, err
        code, read, err = run_meshc("-f", meshfile, "plan", "live", "--no-cache")
        assert code == 0, err
        return shortcut, read

    shortcut, read = plans()
    assert shortcut == read
    deployment = next((project / "rendered" / "live").rglob("deployment-*.yaml"))
    deployment.write_text(deployment.read_text().replace("replicas: 4", "replicas: 2"))
    shortcut, read = plans()
    assert shortcut == read
    assert "spec.replicas: 2 → 4" in shortcut, shortcut


def test_the_snapshot_taken_from_the_writes_is_what_a_walk_finds(project: Path) -> None:
    """A full render records the output's file times from its own writes instead of walking
    the tree: they must be exactly what a walk of the tree finds."""
    from compiler.core import sealed
    from compiler.output.journal import tree_stats

    render(project, "render")
    snapshot = sealed.read_map(project / ".meshc-cache" / "output.pickle")
    assert snapshot["stats"] == tree_stats(project / "rendered")


def test_no_hard_links_are_needed(project: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    def no_links(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EPERM, "hard links not supported here")

    render(project, "render")
    monkeypatch.setattr(os, "link", no_links)
    edit = project / "env" / "qa.yaml"
    edit.write_text(edit.read_text() + "extraForQa: 1\n")
    message, after = render(project, "render")
    assert "written " in message and "removed 0" in message, message
    assert after == fresh(project, "render")
