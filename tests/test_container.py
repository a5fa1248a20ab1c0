"""The Dockerfile, .dockerignore and compose.yaml, proved without a Docker daemon.

The image: its build stage is replayed in a fresh virtualenv, from the file set the Docker build
context holds under .dockerignore, and every command the result installs must run. The compose
file: valid by the Compose Specification's schema, and every value it gives the server and the
IdP simulator is exercised by starting them, with that environment and those commands, on the
test's store; the health checks run as Docker would run them. Only MongoDB's own health check,
which needs ``mongosh`` and a ``mongod``, is checked by reading it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import lxml.html
import pytest
import yaml
from docker.utils.build import exclude_paths
from dockerfile_parse import DockerfileParser
from pymongo import MongoClient
from pymongo.uri_parser import parse_uri

from scim_server.config import ENVIRONMENT
from scim_server.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SCRIPTS = sorted(PYPROJECT["project"]["scripts"])
PACKAGES = [
    pattern.rstrip("*")
    for pattern in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
]
"""The top-level packages the distribution ships, each of which the image must hold."""
VENV_BIN = Path(sys.executable).parent
"""Where this test session's own commands are: ``scim-server``, ``idp-sim``, ``python``."""
INSTALL_TIMEOUT = 300


@dataclass(frozen=True)
class Stage:
    """One ``FROM`` of the Dockerfile and the instructions under it, comments left out."""

    base: str
    instructions: list[tuple[str, str]]

    def values(self, instruction: str) -> list[str]:
        return [value for name, value in self.instructions if name == instruction]

    def environment(self) -> dict[str, str]:
        """Every ``ENV KEY=VALUE ...`` of the stage, in order, values as the shell splits them."""
        pairs = (word.partition("=") for value in self.values("ENV") for word in shlex.split(value))
        return {key: raw for key, _, raw in pairs}


def dockerfile() -> DockerfileParser:
    return DockerfileParser(path=str(ROOT / "Dockerfile"))


def stages() -> list[Stage]:
    found: list[Stage] = []
    for entry in dockerfile().structure:
        name, value = entry["instruction"], entry["value"]
        if name == "FROM":
            found.append(Stage(value, []))
        elif name != "COMMENT" and found:
            found[-1].instructions.append((name, value))
    return found


def healthcheck_command(value: str) -> list[str]:
    """The exec form after ``CMD`` in a ``HEALTHCHECK [options] CMD [...]`` instruction."""
    _, _, command = value.partition(" CMD ")
    parsed: list[str] = json.loads(command)
    return parsed


def session_environment() -> dict[str, str]:
    """This session's environment with no server setting, its own commands first on PATH."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key != "MONGODB_URI" and not key.startswith("SCIM_")
    }
    environment["PATH"] = f"{VENV_BIN}{os.pathsep}{environment.get('PATH', '')}"
    return environment


def runs(
    command: list[str], environment: dict[str, str], cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` to its end, its output captured as text."""
    return subprocess.run(
        command, env=environment, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


# The image ------------------------------------------------------------------------------------


def build_context(target: Path) -> None:
    """Copy into ``target`` the files ``docker build .`` sends, by .dockerignore's rules (read
    as the Docker SDK reads them: blank lines and comments dropped)."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for relative in exclude_paths(str(ROOT), patterns):
        source = ROOT / relative
        if source.is_file():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / relative)


def replay_build_stage(context: Path, root: Path, venv: Path) -> None:
    """Run the Dockerfile's build stage here: ``root`` stands for ``/``, ``venv`` for
    ``$VIRTUAL_ENV``, and a fresh virtualenv with pip for the base image's Python (so whatever
    a RUN installs lands in a throwaway, never in this session's environment); each ``RUN`` goes
    to ``sh -c`` as Docker sends it."""
    build = stages()[0]
    base = root / "base-python"
    subprocess.run([sys.executable, "-m", "venv", str(base)], check=True, timeout=120)
    environment = session_environment()
    environment.pop("PYTHONPATH", None)  # the install, not this checkout, must be what runs
    environment["PATH"] = f"{base / 'bin'}{os.pathsep}{os.environ['PATH']}"
    environment.update(build.environment())
    environment["VIRTUAL_ENV"] = str(venv)
    workdir = root
    for name, value in build.instructions:
        if name == "WORKDIR":
            workdir = root / value.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif name == "COPY":
            *sources, destination = shlex.split(value)
            for source in sources:
                copy_into(context / source, workdir / destination, destination.endswith("/"))
        elif name == "RUN":
            assert "/opt/" not in value, "RUN names the virtualenv as $VIRTUAL_ENV only"
            done = runs(["sh", "-c", value], environment, workdir, INSTALL_TIMEOUT)
            assert done.returncode == 0, done.stdout + done.stderr
        else:
            assert name == "ENV", f"the replay does not know {name} {value}"


def copy_into(source: Path, destination: Path, into_directory: bool) -> None:
    """Docker's COPY: a directory's contents into the destination, a file to it or into it."""
    if source.is_dir():
        shutil.copytree(source, destination, dirs_exist_ok=True)
    else:
        target = destination / source.name if into_directory else destination
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's virtualenv, built by replaying the Dockerfile on its build context."""
    work = tmp_path_factory.mktemp("image")
    build_context(work / "context")
    replay_build_stage(work / "context", work / "root", work / "venv")
    return work / "venv"


def image_environment(venv: Path) -> dict[str, str]:
    """The final stage's environment, with the replayed virtualenv where the image has its own."""
    final = stages()[-1]
    environment = session_environment()
    environment.pop("PYTHONPATH", None)
    environment.update(final.environment())
    environment["VIRTUAL_ENV"] = str(venv)
    environment["PATH"] = f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"
    return environment


def test_build_context_is_the_package_and_nothing_else(tmp_path: Path) -> None:
    build_context(tmp_path)
    top = sorted(path.name for path in tmp_path.iterdir())
    files = [".dockerignore", "Dockerfile", "LICENSE", "README.md", "pyproject.toml"]
    assert top == sorted([*files, *PACKAGES])
    kept_out = {".venv", ".git", "tests", "test-artifacts", ".scim-data", "bench", "docs"}
    names = {part for path in tmp_path.rglob("*") for part in path.relative_to(tmp_path).parts}
    assert not names & kept_out
    assert not [name for name in names if name == "__pycache__" or name.endswith(".pyc")]


def test_every_command_the_image_installs_runs(image_venv: Path, tmp_path: Path) -> None:
    environment = image_environment(image_venv)
    installed = sorted(path.name for path in (image_venv / "bin").iterdir())
    assert set(SCRIPTS) <= set(installed)
    for script in SCRIPTS:
        done = runs([script, "--help"], environment, tmp_path)
        assert done.returncode == 0, f"{script} --help: {done.stderr}"
        assert done.stdout.startswith(f"usage: {script}"), done.stdout


def test_the_image_imports_every_module_of_its_packages(image_venv: Path, tmp_path: Path) -> None:
    """Beyond ``--help``: a module that needs a package the image lacks fails here."""
    program = (
        "import importlib, pkgutil, sys\n"
        f"for name in {PACKAGES!r}:\n"
        "    package = importlib.import_module(name)\n"
        "    assert package.__file__.startswith(sys.prefix), package.__file__\n"
        "    for module in pkgutil.walk_packages(package.__path__, name + '.'):\n"
        "        if not module.name.endswith('.__main__'):  # each runs its command\n"
        "            importlib.import_module(module.name)\n"
    )
    done = runs(["python", "-c", program], image_environment(image_venv), tmp_path)
    assert done.returncode == 0, done.stderr


def test_the_image_without_mongodb_uri_says_to_set_it(image_venv: Path, tmp_path: Path) -> None:
    """The image has no embedded store: its CMD without MONGODB_URI stops at once, saying so."""
    command = json.loads(stages()[-1].values("CMD")[0])
    done = runs(command, image_environment(image_venv), tmp_path)
    assert done.returncode == 1
    assert "set MONGODB_URI" in done.stderr and "Traceback" not in done.stderr


def test_the_image_holds_no_test_dev_embedded_or_install_tool(image_venv: Path) -> None:
    program = "import importlib.metadata as m; print('\\n'.join(d.name for d in m.distributions()))"
    done = runs(["python", "-c", program], image_environment(image_venv))
    assert done.returncode == 0, done.stderr
    installed = {re.sub(r"[-_.]+", "-", name).lower() for name in done.stdout.split()}
    extras = PYPROJECT["project"]["optional-dependencies"]
    unwanted = {
        re.split(r"[<>=!~\[ ;]", requirement)[0].lower()
        for requirement in extras["dev"] + extras["embedded"]
        if not requirement.startswith("scim-toolkit")
    }
    assert {"pytest", "playwright", "matplotlib", "scim2-server", "secantusdb"} <= unwanted
    assert not installed & (unwanted | {"pip", "setuptools", "wheel"})
    assert {"scim-toolkit", "faker"} <= installed


def test_final_stage_runs_the_build_stages_virtualenv_as_the_scim_user() -> None:
    build, final = stages()
    pinned = re.fullmatch(
        r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", dockerfile().baseimage
    )
    assert pinned, dockerfile().baseimage
    assert build.base == "${PYTHON_IMAGE} AS build" and final.base == "${PYTHON_IMAGE}"
    venv = build.environment()["VIRTUAL_ENV"]
    assert final.values("COPY") == [f"--from=build {venv} {venv}"]
    assert final.environment()["VIRTUAL_ENV"] == venv
    assert final.environment()["PATH"].startswith(f"{venv}/bin:")
    (user,) = final.values("USER")
    (accounts,) = final.values("RUN")
    uid, _, gid = user.partition(":")
    assert f"--uid {uid} " in accounts and f"--gid {gid} " in accounts and uid != "0"
    assert "useradd" in accounts and accounts.count(" scim") >= 2
    assert "pip install" not in accounts
    labels = dockerfile().labels
    assert labels["org.opencontainers.image.version"] == PYPROJECT["project"]["version"]
    assert labels["org.opencontainers.image.licenses"] == PYPROJECT["project"]["license"]
    assert final.values("EXPOSE") == [final.environment()["SCIM_PORT"]]
    assert json.loads(final.values("CMD")[0])[0] in SCRIPTS


def test_image_healthcheck_fails_where_no_server_answers() -> None:
    healthcheck = healthcheck_command(stages()[-1].values("HEALTHCHECK")[0])
    nobody = {**session_environment(), "SCIM_PORT": str(free_port())}
    assert runs(healthcheck, nobody).returncode != 0


# compose.yaml ---------------------------------------------------------------------------------


COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
COMPOSE_SCHEMA = json.loads((Path(__file__).parent / "data" / "compose-spec.json").read_text())
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+):-(?P<default>[^}]*)\}")


def interpolated(value: str) -> str:
    """A compose value with each ``${NAME:-default}`` at its default: what a machine that sets
    none of those variables runs (the README's local default)."""
    return INTERPOLATION.sub(lambda match: match["default"], value)


def service(name: str) -> dict[str, Any]:
    found: dict[str, Any] = COMPOSE["services"][name]
    return found


def service_environment(name: str) -> dict[str, str]:
    return {key: interpolated(str(value)) for key, value in service(name)["environment"].items()}


def published_port(name: str) -> tuple[str, int]:
    """The (host address, container port) of a service's one published port."""
    (mapping,) = service(name)["ports"]
    address, _, rest = mapping.partition(":")
    _, _, container = rest.partition(":")
    return address, int(container)


def option(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def with_option(command: list[str], flag: str, value: str) -> list[str]:
    """``command`` with the value after ``flag`` replaced."""
    position = command.index(flag) + 1
    return [*command[:position], value, *command[position + 1 :]]


def test_compose_file_is_valid_by_the_compose_specification() -> None:
    # The schema declares draft-07 (by a URI spelling jsonschema does not look up by itself).
    validator = jsonschema.Draft7Validator(COMPOSE_SCHEMA)
    assert [error.message for error in validator.iter_errors(COMPOSE)] == []
    misspelt = {**COMPOSE, "services": {"mongo": {**service("mongo"), "enviroment": {}}}}
    assert not validator.is_valid(misspelt)


def test_docker_compose_accepts_the_compose_file() -> None:
    docker = shutil.which("docker")
    environment = session_environment()
    if docker is None or runs([docker, "compose", "version"], environment).returncode:
        pytest.skip("no docker compose here")
    done = runs(
        [docker, "compose", "--file", "compose.yaml", "config", "--quiet"], environment, ROOT
    )
    assert done.returncode == 0, done.stderr


def test_compose_server_reaches_the_replica_set_mongo_initiates() -> None:
    server, mongo = service("scim-server"), service("mongo")
    assert server["depends_on"] == {"mongo": {"condition": "service_healthy"}}
    set_name = option(mongo["command"], "--replSet")
    uri = parse_uri(service_environment("scim-server")["MONGODB_URI"])
    assert uri["nodelist"] == [("mongo", 27017)]
    assert uri["options"]["replicaSet"] == set_name
    # Discovery follows the member names of the set's config: the one the server resolves.
    assert not uri["options"].get("directConnection", False)
    check = mongo["healthcheck"]["test"]
    assert check[:2] == ["CMD", "mongosh"]
    assert f"_id: '{set_name}'" in check[-1] and "host: 'mongo:27017'" in check[-1]
    assert "rs.initiate" in check[-1] and "isWritablePrimary" in check[-1]
    assert mongo["image"].startswith("mongo:7.")


def test_compose_server_sets_only_real_settings_and_the_images_port() -> None:
    server = service("scim-server")
    assert set(server["environment"]) <= set(ENVIRONMENT.values())
    assert server["environment"]["SCIM_ADMIN_TOKEN"].startswith("${SCIM_ADMIN_TOKEN:-")
    assert server["build"] == "." and "command" not in server  # the image's CMD
    final = stages()[-1]
    assert published_port("scim-server") == ("127.0.0.1", int(final.environment()["SCIM_PORT"]))
    assert server["healthcheck"]["test"] == [
        "CMD",
        *healthcheck_command(final.values("HEALTHCHECK")[0]),
    ]
    assert published_port("idp-sim") == (
        "127.0.0.1",
        int(option(service("idp-sim")["command"], "--port")),
    )


@dataclass(frozen=True)
class Running:
    """A server started from the compose file's values, on a free loopback port."""

    process: subprocess.Popen[str]
    environment: dict[str, str]
    url: str
    banner: str


def start(command: list[str], environment: dict[str, str], port: int, marker: str) -> Running:
    """Start ``command`` (its first word one of this session's commands, by PATH) and read its
    banner up to the line that holds ``marker``."""
    process = subprocess.Popen(
        command,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    lines = [process.stdout.readline()]
    while marker not in lines[-1] and lines[-1]:
        lines.append(process.stdout.readline())
    assert marker in lines[-1], f"{command[0]} exited {process.wait()}: {''.join(lines)}"
    return Running(process, environment, f"http://127.0.0.1:{port}", "".join(lines))


def stop(running: Running) -> None:
    running.process.terminate()
    running.process.wait(timeout=60)


@pytest.fixture(scope="module")
def compose_server(mongodb_uri: str) -> Iterator[Running]:
    """The Dockerfile's CMD with the image's environment and the compose server's, the store
    at the test's MONGODB_URI; the address a free loopback port (SCIM_HOST and SCIM_PORT, the
    only values changed besides the database's name, which isolates this run)."""
    environment = session_environment()
    environment.update(
        {key: value for key, value in stages()[-1].environment().items() if key.startswith("SCIM_")}
    )
    environment.update(service_environment("scim-server"))
    database = f"container_{uuid.uuid4().hex[:12]}"
    port = free_port()
    environment.update(
        MONGODB_URI=mongodb_uri, SCIM_DATABASE=database, SCIM_HOST="127.0.0.1", SCIM_PORT=str(port)
    )
    command = json.loads(stages()[-1].values("CMD")[0])
    running = start(command, environment, port, "listening on")
    try:
        yield running
    finally:
        stop(running)
        with MongoClient(mongodb_uri) as client:
            client.drop_database(database)


def test_image_healthcheck_passes_on_the_server_compose_configures(compose_server: Running) -> None:
    healthcheck = healthcheck_command(stages()[-1].values("HEALTHCHECK")[0])
    done = runs(healthcheck, compose_server.environment)
    assert done.returncode == 0, done.stderr
    assert "/healthz" in healthcheck[-1]


def admin(running: Running, method: str, path: str, body: Any = None) -> Any:
    """An admin API call with the compose file's default admin token; HTTPError unless 2xx."""
    token = service_environment("scim-server")["SCIM_ADMIN_TOKEN"]
    request = urllib.request.Request(
        f"{running.url}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def scim_get(running: Running, tenant: str, token: str, search: str) -> Any:
    """A SCIM list of the tenant's Users matching the filter ``search``."""
    query = urllib.parse.urlencode({"filter": search})
    request = urllib.request.Request(
        f"{running.url}/scim/v2/{tenant}/Users?{query}",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_compose_admin_token_default_opens_the_admin_api(compose_server: Running) -> None:
    assert "tenants" in admin(compose_server, "GET", "/admin/tenants")
    request = urllib.request.Request(
        f"{compose_server.url}/admin/tenants", headers={"Authorization": "Bearer not-the-token"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 401
    refused.value.close()


async def test_compose_idp_sim_signs_a_person_in_to_the_compose_servers_tenant(
    compose_server: Running,
) -> None:
    """The README's steps on the compose values: the IdP's app is the SP the server describes for
    its tenant, its metadata imports, SSO is enabled, and a person picked on the IdP's tile lands
    signed in and provisioned just in time. Only the two addresses move to free loopback ports;
    the IdP's health check passes."""
    idp = service("idp-sim")
    port = free_port()
    command = with_option(with_option(idp["command"], "--host", "127.0.0.1"), "--port", str(port))
    environment = session_environment()
    running = start(command, environment, port, "posts to ACS")
    try:
        public = option(idp["command"], "--public-url")
        printed = dict(re.findall(r"^  (metadata URL|launch URL) +(\S+)$", running.banner, re.M))
        readme = re.search(r"--metadata-url (http://[^/]+)(/\S+)", (ROOT / "README.md").read_text())
        assert readme is not None and printed["metadata URL"] == f"{public}{readme[2]}"
        assert readme[1] == f"http://idp-sim:{option(idp['command'], '--port')}"
        local = {name: url.replace(public, running.url) for name, url in printed.items()}

        vendor, _, app = option(idp["command"], "--app").partition(":")
        entity_id, acs_url = app.split(",")
        found = re.fullmatch(r".*/sso/([^/]+)/saml/metadata", entity_id)
        assert vendor == "okta" and found is not None
        server_public = service_environment("scim-server")["SCIM_PUBLIC_URL"]
        assert entity_id.startswith(server_public) and acs_url.startswith(server_public)
        tenant = found[1]
        token = admin(compose_server, "POST", "/admin/tenants", {"name": tenant})["token"]
        sso = admin(compose_server, "GET", f"/admin/tenants/{tenant}/sso")
        assert sso["service_provider"]["entity_id"] == entity_id
        assert sso["service_provider"]["acs_url"] == acs_url

        sso_base = f"/admin/tenants/{tenant}/sso"
        imported = admin(
            compose_server, "POST", f"{sso_base}/metadata", {"url": local["metadata URL"]}
        )
        assert imported["idp"]["sso_url"].startswith(public)
        admin(compose_server, "PATCH", sso_base, {"preset": "okta", "enabled": True})

        async with aiohttp.ClientSession() as browser:
            tile = await browser.get(local["launch URL"], allow_redirects=False)
            assert tile.status == 303
            chooser = await browser.get(f"{running.url}{tile.headers['Location']}")
            # The first person listed as active (a deactivated one's login is marked).
            login = re.search(
                r'name="login" value="([^"]+)"[^>]*>[^<]*</button> <small>', await chooser.text()
            )
            assert login is not None
            txn = urllib.parse.parse_qs(urllib.parse.urlsplit(str(chooser.url)).query)["txn"][0]
            posting = await browser.post(
                f"{running.url}/signin", data={"txn": txn, "login": login[1]}
            )
            form = lxml.html.fromstring(await posting.text()).forms[0]
            assert form.action == acs_url
            landed = await browser.post(
                acs_url.replace(server_public, compose_server.url),
                data=dict(form.form_values()),
                allow_redirects=False,
            )
            assert landed.status == 303, await landed.text()

        users = scim_get(compose_server, tenant, token, f'userName eq "{login[1]}"')
        assert users["totalResults"] == 1

        healthcheck = idp["healthcheck"]["test"]
        assert healthcheck[0] == "CMD"
        probe = [word.replace(":8090/", f":{port}/") for word in healthcheck[1:]]
        assert probe != healthcheck[1:]
        assert runs(probe, environment).returncode == 0
    finally:
        stop(running)
