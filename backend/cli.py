"""The `prunelab` command. Each command imports what it needs when it runs, so `prunelab --help`
and the API-side commands never load torch."""
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="PruneLab: explore neural-network pruning.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
user_app = typer.Typer(help="Users of a team server (PRUNELAB_AUTH=tokens).", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")


@app.command()
def run(spec: Path = typer.Argument(..., help="experiment spec (YAML)"),
        out: Path = typer.Option(..., "--out", help="directory for result.json and checkpoints")) -> None:
    """Run one experiment here, with no server: writes OUT/result.json and checkpoints."""
    from worker.engine.cli_run import run_spec_file

    raise typer.Exit(run_spec_file(spec, out))
