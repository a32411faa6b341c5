"""`meshc schema`: the meshfile's JSON Schema, for editors and CI (library:
compiler.model.schema, generated from the loader's field tables)."""

from __future__ import annotations

import click

from ..model.schema import schema_json


@click.command()
def schema() -> None:
    """Print the meshfile JSON Schema (draft-07), for editors and CI."""
    click.echo(schema_json(), nl=False)
