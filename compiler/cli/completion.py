"""`meshc completion bash|zsh|fish`: the shell completion script, from click's own completion.

The script calls ``meshc`` back with ``_MESHC_COMPLETE`` set, and click answers with commands,
options and choices. Install it once, e.g. ``eval "$(meshc completion bash)"`` in ~/.bashrc.
"""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_MESHC_COMPLETE"  # what click reads when the shell asks for completions


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    bash: eval "$(meshc completion bash)"          (in ~/.bashrc)
    zsh:  eval "$(meshc completion zsh)"           (in ~/.zshrc)
    fish: meshc completion fish > ~/.config/fish/completions/meshc.fish
    """
    root = ctx.find_root()
    cls = get_completion_class(shell)
    assert cls is not None  # SHELLS are click's built-in shells
    click.echo(cls(root.command, {}, "meshc", COMPLETE_VAR).source())
