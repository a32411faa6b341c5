"""`meshc export argocd|flux` and `meshc ci github`: the GitOps hand-off (library:
compiler.ops.export, compiler.gitops.github)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..gitops.model import ExportOptions
from ..ops.export import ExportRequest, default_folder, export_gitops, write_workflows
from ..pipeline import find_environment
from .support import Options, _Session, _sops_tools


def _export(options: Options, engine: str, environments: tuple[str, ...], repo_url: str | None,
            revision: str | None, out: Path | None, application_set: bool = False) -> None:
    session = _Session(options)
    compiler = session.compiler()

    def work() -> int:
        project = compiler.project
        envs = ([find_environment(project, name) for name in environments] if environments
                else list(project.deployable))
        root = options.meshfile.parent
        target = out if out is not None else root / default_folder(engine)
        try:
            folder = target.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            folder = default_folder(engine)  # outside the project: paths as if in place
        needs_secrets = engine == "flux"
        sops, key = _sops_tools(need_key=True) if needs_secrets else (None, None)
        request = ExportRequest(engine, tuple(envs),
                                ExportOptions(repo_url or "", revision or "",
                                              application_set=application_set),
                                target, folder)
        result = export_gitops(compiler, request, sops, key)
        changed = ", ".join(result.written) or "nothing changed"
        fresh = f"; {result.encrypted} Secret(s) encrypted anew" if result.encrypted else ""
        click.echo(f"exported {len(result.environments)} environment"
                   f"{'s' * (len(result.environments) != 1)} to {engine}: {result.files} files "
                   f"in {target} ({changed}){fresh}", err=True)
        return 0

    sys.exit(session.run(work))


def _export_options(func):  # type: ignore[no-untyped-def]
    func = click.option("--out", type=click.Path(file_okay=False, path_type=Path),
                        help="The engine's folder (default: gitops/<engine>).")(func)
    func = click.option("--revision", metavar="BRANCH",
                        help="The branch the engine follows (default: the committed export's, "
                             "else main).")(func)
    func = click.option("--repo-url", metavar="URL",
                        help="The git repository holding this project (default: the one the "
                             "committed export names).")(func)
    return click.argument("environments", nargs=-1)(func)


@click.group("export")
def export_group() -> None:
    """Export the plans to a GitOps engine: Argo CD or Flux (docs/gitops.md)."""


@export_group.command("argocd")
@click.option("--applicationset", "application_set", is_flag=True,
              help="One ApplicationSet per environment (list generator, RollingSync by wave) "
                   "instead of an Application per release.")
@_export_options
@click.pass_obj
def export_argocd(options: Options, /, environments: tuple[str, ...], repo_url: str | None,
                  revision: str | None, out: Path | None, application_set: bool) -> None:
    """Write Argo CD objects for ENVIRONMENTS (default: all deployable): an AppProject, an
    Application per release with its wave as sync-wave, an app-of-apps root, the argocd-cm
    health check.

    \b
    Example: meshc export argocd --repo-url https://github.com/acme/mesh.git
    """
    _export(options, "argocd", environments, repo_url, revision, out, application_set)


@export_group.command("flux")
@_export_options
@click.pass_obj
def export_flux(options: Options, /, environments: tuple[str, ...], repo_url: str | None,
                revision: str, out: Path | None) -> None:
    """Write Flux objects for ENVIRONMENTS (default: all deployable): a GitRepository, a
    HelmRelease per release with its needs as dependsOn, SOPS-encrypted Secrets for its
    secrets, a Kustomization.

    Secrets changed since the last export are re-encrypted: that needs an age key
    (SOPS_AGE_KEY_FILE), as for `meshc secrets rotate`.

    \b
    Example: meshc export flux --repo-url https://github.com/acme/mesh.git
    """
    _export(options, "flux", environments, repo_url, revision, out)


@click.group("ci")
def ci_group() -> None:
    """Generate CI workflows for the project (docs/gitops.md, "The PR workflow")."""


@ci_group.command("github")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="The workflows folder (default: .github/workflows beside the meshfile).")
@click.option("--meshc", "meshc_spec", default="meshc", show_default=True, metavar="REQUIREMENT",
              help="What the workflows pip-install for meshc (pin it: meshc==0.1.0; or a URL).")
@click.pass_obj
def ci_github(options: Options, /, out: Path | None, meshc_spec: str) -> None:
    """Write GitHub Actions workflows: plan on every pull request (one comment, updated in
    place), apply on push to main (protected environments behind a GitHub environment), and
    promotion as a pull request (workflow_dispatch).

    \b
    Example: meshc ci github
    """
    session = _Session(options)
    compiler = session.compiler(manifests=False)

    def work() -> int:
        target = out if out is not None else options.meshfile.parent / ".github" / "workflows"
        names, written = write_workflows(compiler, target, meshc_spec)
        click.echo(f"{len(names)} workflows in {target}: "
                   f"{', '.join(written) + ' written' if written else 'up to date'}", err=True)
        return 0

    sys.exit(session.run(work))
