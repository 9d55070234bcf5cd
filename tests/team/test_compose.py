"""The deployment files: docker-compose.yml, the Dockerfiles and .env.example agree with the code.

Docker does not run here, so what is checked is what can go wrong without it: the compose file parses and
has the services it should, every `prunelab ...` command in it (and in the images' CMD) parses against the
real CLI, and every PRUNELAB_* name it or .env.example sets is a real setting with a value that validates.
"""

import os
import re
import shlex
from pathlib import Path

import pytest
import typer.main
import yaml

from cli.main import app
from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILES = {"api": ROOT / "docker" / "Dockerfile.api", "worker": ROOT / "docker" / "Dockerfile.worker"}
SETTING_NAMES = {f"PRUNELAB_{name.upper()}" for name in Settings.model_fields}
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${NAME} / ${NAME:-default} substitution, with .env.example as the .env file."""
    return VARIABLE.sub(lambda m: variables.get(m.group(1)) or (m.group(2) or ""), value)


def prunelab_invocations(command) -> list[list[str]]:
    """The argument lists of every `prunelab ...` call in a compose command or Dockerfile CMD."""
    if isinstance(command, list) and command[:2] == ["sh", "-c"]:
        command = command[2]
    if isinstance(command, list):
        return [command[1:]] if command and command[0] == "prunelab" else []
    calls = []
    for part in re.split(r"&&|\|\||;", command):
        words = shlex.split(part)
        if words and words[0] == "exec":
            words = words[1:]
        if words and words[0] == "prunelab":
            calls.append(words[1:])
    return calls


def assert_cli_accepts(args: list[str]) -> None:
    """Parse ARGS with the real command tree (options, arguments, types), without running anything.
    Typer ships its own copy of click, so groups are told apart by what they can do, not by class."""
    command, name, rest = typer.main.get_command(app), "prunelab", list(args)
    ctx = command.context_class(command, info_name=name)
    while hasattr(command, "list_commands"):  # a group: descend (`db upgrade`)
        assert rest, f"`prunelab {' '.join(args)}` names no command"
        name, *rest = rest
        command = command.get_command(ctx, name)
        assert command is not None, f"`prunelab {' '.join(args)}`: no command {name!r}"
        ctx = command.context_class(command, info_name=name, parent=ctx)
    command.make_context(name, rest, parent=ctx.parent)


def test_services_and_their_wiring(compose):
    services = compose["services"]
    assert {"redis", "postgres", "api", "worker", "worker-cpu"} <= set(services)
    assert services["worker-cpu"]["profiles"] == ["cpu"]
    assert all("profiles" not in services[name] for name in ("redis", "postgres", "api", "worker"))

    assert services["postgres"]["healthcheck"]["test"]
    assert any(v.startswith("postgres-data:") for v in services["postgres"]["volumes"])
    assert "--appendonly" in services["redis"]["command"]
    assert set(compose["volumes"]) >= {"postgres-data", "artifacts"}

    devices = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "deploy" not in services["worker-cpu"]

    assert services["api"]["build"]["dockerfile"] == "docker/Dockerfile.api"
    for name in ("worker", "worker-cpu"):
        assert services[name]["build"]["dockerfile"] == "docker/Dockerfile.worker"
        assert services[name]["depends_on"]["api"]["condition"] == "service_healthy"
    assert services["api"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_api_and_workers_share_the_artifact_directory(compose):
    services = compose["services"]
    for name in ("api", "worker", "worker-cpu"):
        env = services[name]["environment"]
        mounts = dict(v.split(":")[:2] for v in services[name]["volumes"])
        assert mounts.get("artifacts") == env["PRUNELAB_ARTIFACT_DIR"], name
        assert env["PRUNELAB_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["PRUNELAB_BROKER_URL"].startswith("redis://redis:")
    assert services["api"]["environment"]["PRUNELAB_AUTH"] == "tokens"


def test_api_runs_migrations_then_the_server_on_all_interfaces(compose):
    calls = prunelab_invocations(compose["services"]["api"]["command"])
    assert calls[0] == ["db", "upgrade"]
    serve = calls[1]
    assert serve[0] == "serve" and "--no-worker" in serve
    assert serve[serve.index("--host") + 1] == "0.0.0.0"


def test_worker_queues(compose):
    def queues(name):
        args = prunelab_invocations(compose["services"][name]["command"])[0]
        assert args[0] == "worker"
        return set(args[args.index("--queues") + 1].split(","))

    # The API routes device=cuda jobs to "gpu", device=cpu to "cpu", device=auto to "default".
    from backend.store import queue_for_device

    assert queues("worker") == {queue_for_device("cuda"), queue_for_device("auto")}
    assert queues("worker-cpu") == {queue_for_device("cpu"), queue_for_device("auto")}


def every_command() -> list[tuple[str, list[str]]]:
    data = yaml.safe_load(COMPOSE.read_text())
    found = [
        (f"compose {name}", args)
        for name, service in data["services"].items()
        if "command" in service
        for args in prunelab_invocations(service["command"])
    ]
    for name, path in DOCKERFILES.items():
        cmd = re.search(r"^CMD (.+)$", path.read_text(), re.M).group(1)
        found += [(f"Dockerfile.{name}", args) for args in prunelab_invocations(yaml.safe_load(cmd))]
    return found


@pytest.mark.parametrize("where,args", every_command(), ids=lambda v: v if isinstance(v, str) else " ".join(v))
def test_every_prunelab_command_exists_in_the_cli(where, args):
    assert_cli_accepts(args)


def test_the_command_check_catches_a_wrong_command():
    with pytest.raises(Exception, match="No such option"):
        assert_cli_accepts(["serve", "--no-such-option"])
    with pytest.raises(AssertionError, match="no command 'downgrade-everything'"):
        assert_cli_accepts(["db", "downgrade-everything"])
    with pytest.raises(AssertionError, match="no command 'sevre'"):
        assert_cli_accepts(["sevre", "--host", "0.0.0.0"])
    with pytest.raises(Exception, match="valid integer"):
        assert_cli_accepts(["serve", "--port", "eighty"])
    assert_cli_accepts(["user", "add", "alice", "--admin"])


def compose_environment_names(compose: dict) -> set[str]:
    names = set()
    for service in compose["services"].values():
        names |= set(service.get("environment") or {})
    names |= {name for name, _default in VARIABLE.findall(COMPOSE.read_text())}
    return names


def test_every_prunelab_env_name_is_a_setting(compose):
    names = compose_environment_names(compose) | set(env_example())
    for path in DOCKERFILES.values():
        names |= set(re.findall(r"\b(PRUNELAB_[A-Z_]+)=", path.read_text()))
    prunelab_names = {n for n in names if n.startswith("PRUNELAB_")}
    assert prunelab_names, "expected PRUNELAB_* settings in the deployment files"
    unknown = prunelab_names - SETTING_NAMES
    assert not unknown, f"not settings (backend/settings.py): {sorted(unknown)}"


def test_every_compose_variable_has_a_default_or_an_example():
    variables = env_example()
    for name, default in VARIABLE.findall(COMPOSE.read_text()):
        assert default or name in variables, f"${{{name}}} has no default and is not in .env.example"


@pytest.mark.parametrize("service", ["api", "worker", "worker-cpu"])
def test_service_environment_validates_as_settings(compose, service, monkeypatch):
    for name in list(os.environ):
        if name.startswith("PRUNELAB_"):
            monkeypatch.delenv(name)
    env = {k: interpolate(str(v), env_example()) for k, v in compose["services"][service]["environment"].items()}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.auth == "tokens"
    assert settings.database_url == env["PRUNELAB_DATABASE_URL"]
    assert str(settings.artifact_dir) == "/artifacts"
    assert settings.visibility_timeout_s >= 3600


def test_env_example_values_validate_as_settings(monkeypatch):
    for name, value in env_example().items():
        if name.startswith("PRUNELAB_"):
            monkeypatch.setenv(name, value)
    Settings()  # raises on a value of the wrong type


def test_dockerfiles_small_non_root_and_torch_only_in_the_worker():
    api, worker = (DOCKERFILES[k].read_text() for k in ("api", "worker"))
    for text in (api, worker):
        assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
        user = re.findall(r"^USER (\S+)$", text, re.M)
        assert user and user[-1] not in ("root", "0")
    assert re.search(r"pip install \.( |$)", api, re.M) and "[worker]" not in api
    assert "'.[worker,export]'" in worker

    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in deps if d.startswith(("torch", "torchvision"))], "the API image must not get torch"


def test_dockerignore_keeps_what_the_images_copy():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    copied = set()
    for path in DOCKERFILES.values():
        for line in re.findall(r"^COPY (.+)$", path.read_text(), re.M):
            copied |= set(line.split()[:-1])
    assert copied >= {"pyproject.toml", "README.md", "backend", "worker", "frontend"}
    assert not copied & ignored


def test_deployment_docs_name_only_real_settings():
    client_side = {"PRUNELAB_SERVER", "PRUNELAB_TOKEN"}  # read by `prunelab submit/status`, not Settings
    named = set(re.findall(r"\b(PRUNELAB_[A-Z_]*[A-Z])\b", (ROOT / "docs" / "deploy.md").read_text()))
    assert "PRUNELAB_AUTH" in named
    assert not named - SETTING_NAMES - client_side


def test_api_image_carries_no_worker_code():
    copied = [line.split()[1] for line in DOCKERFILES["api"].read_text().splitlines() if line.startswith("COPY ")]
    assert "worker" not in copied and {"core", "backend", "cli", "frontend"} <= set(copied)
    assert "[worker]" not in DOCKERFILES["api"].read_text()
