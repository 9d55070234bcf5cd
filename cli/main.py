"""The `prunelab` command. Each command imports what it needs when it runs, so `prunelab --help`
and the API-side commands never load torch."""

from pathlib import Path

import typer

app = typer.Typer(help="PruneLab: explore neural-network pruning.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
user_app = typer.Typer(help="Users of a team server (PRUNELAB_AUTH=tokens).", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")


@app.command()
def run(
    spec: Path = typer.Argument(..., help="experiment spec (YAML)"),
    out: Path = typer.Option(..., "--out", help="directory for result.json and checkpoints"),
) -> None:
    """Run one experiment here, with no server: writes OUT/result.json and checkpoints."""
    from cli.run import run_spec_file

    raise typer.Exit(run_spec_file(spec, out))


@app.command()
def export(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="a `prunelab run --out` directory"),
    step: int = typer.Option(..., "--step", min=1, help="the step to export, 1-based"),
    fmt: str = typer.Option(..., "--format", help="onnx, torchscript or state_dict"),
    out: Path = typer.Option(..., "--out", help="file to write"),
    latency: bool = typer.Option(False, "--latency", help="onnx: onnxruntime CPU latency, dense vs pruned"),
    batch_size: int = typer.Option(1, "--batch-size", min=1, help="batch size of the latency measurement"),
) -> None:
    """Export one step's model: channel-pruned in its compact shape, masked with its zeros."""
    from cli.export import export_command

    raise typer.Exit(export_command(run_dir, step, fmt, out, latency, batch_size))


@app.command()
def allocate(
    source: str = typer.Argument(
        ..., metavar="RESULT_DIR|JOB_ID", help="a sensitivity run's --out directory, or a job id with --server"
    ),
    server: str | None = typer.Option(None, "--server", help="read the grid of job JOB_ID from this PruneLab server"),
    token: str | None = typer.Option(
        None, "--token", envvar="PRUNELAB_TOKEN", help="API token (team servers)", show_default=False
    ),
    target_sparsity: str | None = typer.Option(
        None, "--target-sparsity", help="share of the scanned weights removed, e.g. 0.9"
    ),
    target_flops: str | None = typer.Option(None, "--target-flops", help="FLOP reduction of the model, e.g. 4x"),
    max_drop: str | None = typer.Option(None, "--max-drop", help="largest predicted accuracy drop, e.g. 0.01"),
    iterative: bool = typer.Option(False, "--iterative", help="the spec: iterative, every layer toward its target"),
    spec_out: Path | None = typer.Option(None, "--spec-out", help="write the ready spec (YAML) here"),
) -> None:
    """Per-layer sparsities from a sensitivity scan for one goal (greedy by accuracy drop per weight or FLOP)."""
    from cli.allocate import allocate_command

    raise typer.Exit(
        allocate_command(source, server, token, target_sparsity, target_flops, max_drop, iterative, spec_out)
    )


# ---------------------------------------------------------------- team server: users, tokens, remote jobs


@user_app.command("add")
def user_add(
    name: str = typer.Argument(..., help="user name (unique)"),
    admin: bool = typer.Option(False, "--admin", help="may cancel and delete anyone's jobs"),
    viewer: bool = typer.Option(False, "--viewer", help="read only"),
) -> None:
    """Add a user and print its API token once (only a hash is stored)."""
    from cli.users import add_user

    if admin and viewer:
        typer.echo("error: role: give --admin or --viewer, not both", err=True)
        raise typer.Exit(2)
    raise typer.Exit(add_user(name, "admin" if admin else "viewer" if viewer else "user"))


@user_app.command("list")
def user_list() -> None:
    """List users, their roles and how many active tokens each has."""
    from cli.users import list_users

    raise typer.Exit(list_users())


@token_app.command("add")
def token_add(user: str = typer.Argument(..., help="user name")) -> None:
    """Give an existing user another API token (printed once)."""
    from cli.users import add_token

    raise typer.Exit(add_token(user))


@token_app.command("list")
def token_list(user: str | None = typer.Option(None, "--user", help="only this user's tokens")) -> None:
    """List tokens by id and prefix (never the token itself)."""
    from cli.users import list_tokens

    raise typer.Exit(list_tokens(user))


@token_app.command("revoke")
def token_revoke(
    token_or_id: str | None = typer.Argument(
        None, metavar="TOKEN_OR_ID", help="the token, its id or its prefix (`token list`)"
    ),
    user: str | None = typer.Option(None, "--user", help="revoke every token of this user"),
) -> None:
    """Revoke a token: requests with it get 401 from then on."""
    from cli.users import revoke

    raise typer.Exit(revoke(token_or_id, user))


_SERVER = typer.Option("http://127.0.0.1:8000", "--server", envvar="PRUNELAB_SERVER", help="PruneLab server URL")
_TOKEN = typer.Option(None, "--token", envvar="PRUNELAB_TOKEN", help="API token (team servers)", show_default=False)


@app.command()
def submit(
    spec: Path = typer.Argument(..., help="experiment spec (YAML), as for `prunelab run`"),
    server: str = _SERVER,
    token: str | None = _TOKEN,
    wait: bool = typer.Option(False, "--wait", help="follow progress; exit non-zero unless the job succeeds"),
    interval: float = typer.Option(1.0, "--interval", min=0.1, help="seconds between progress checks"),
) -> None:
    """Submit a job to a server and print its page URL."""
    from cli.client import submit as submit_job

    raise typer.Exit(submit_job(spec, server, token, wait, interval))


@app.command()
def status(
    job_id: int | None = typer.Argument(None, metavar="ID", help="one job; default: a table of jobs"),
    server: str = _SERVER,
    token: str | None = _TOKEN,
    owner: str | None = typer.Option(None, "--owner", help="only this user's jobs"),
    state: str | None = typer.Option(None, "--status", help="queued|running|succeeded|failed|cancelled"),
    limit: int = typer.Option(20, "--limit", min=1, max=500),
) -> None:
    """Show a server's jobs, or one job's state."""
    from cli.client import status as show_status

    raise typer.Exit(show_status(job_id, server, token, owner=owner, status_filter=state, limit=limit))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations to PRUNELAB_DATABASE_URL (creates the schema on a new database)."""
    from backend.db import upgrade
    from cli.serve import _safe_url
    from core.settings import get_settings

    url = get_settings().database_url
    upgrade(url)
    typer.echo(f"database is up to date: {_safe_url(url)}")


@app.command()
def worker(
    queues: str | None = typer.Option(
        None, "--queues", help="comma separated: default, cpu, gpu (default: PRUNELAB_WORKER_QUEUES plus default)"
    ),
    concurrency: int | None = typer.Option(
        None, "--concurrency", min=1, help="jobs run at once (default: PRUNELAB_WORKER_CONCURRENCY)"
    ),
    loglevel: str = typer.Option("info", "--loglevel", help="debug, info, warning or error"),
) -> None:
    """Run a Celery worker against the configured broker and database (e.g. on a GPU machine)."""
    from cli.serve import run_worker
    from core.queues import parse_queues

    if queues is not None:
        try:
            parse_queues(queues)
        except ValueError as exc:
            raise typer.BadParameter(str(exc).split(": ", 1)[1], param_hint="--queues") from None
    try:
        code = run_worker(queues, concurrency, loglevel)
    except ValueError as exc:
        typer.echo(f"prunelab worker: {exc}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


@app.command()
def serve(
    host: str | None = typer.Option(None, "--host", help="address to listen on (default 127.0.0.1)"),
    port: int | None = typer.Option(None, "--port", min=1, max=65535, help="port (default 8000)"),
    no_worker: bool = typer.Option(False, "--no-worker", help="start the API only (workers run elsewhere)"),
    example: bool = typer.Option(False, "--example", help="queue the example experiments on the digits dataset"),
    access_log: bool = typer.Option(False, "--access-log", help="print one line per HTTP request (uvicorn)"),
    worker_log: str = typer.Option(
        "warning", "--worker-log", help="log level of the worker: debug, info (Celery's banner and task lines), warning"
    ),
) -> None:
    """Start the web app and one worker; Ctrl-C stops both. Prints one line per job event (queued, started,
    step k/N, succeeded, failed) and errors."""
    from cli.serve import _level
    from cli.serve import serve as run_serve

    try:
        _level(worker_log)
    except ValueError as exc:
        raise typer.BadParameter(str(exc).split(": ", 1)[1], param_hint="--worker-log") from None
    raise typer.Exit(
        run_serve(
            host=host,
            port=port,
            with_worker=not no_worker,
            example=example,
            access_log=access_log,
            worker_log=worker_log.lower(),
        )
    )
