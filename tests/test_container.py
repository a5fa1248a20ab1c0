"""The Dockerfile and .dockerignore, proved without a Docker daemon.

The image's build stage is replayed in a fresh virtualenv, from the file set the Docker build
context holds under .dockerignore, and every command the result installs must run; what the image
must not hold (test, development and install tools, the GPL embedded store) is not there.
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
from dataclasses import dataclass
from pathlib import Path

import pytest
from docker.utils.build import exclude_paths
from dockerfile_parse import DockerfileParser

from scim_server.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SCRIPTS = sorted(PYPROJECT["project"]["scripts"])
PACKAGES = ["scim_server", "samlkit", "idp_sim", "conformance"]
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


def runs(command: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60)


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
            done = subprocess.run(
                ["sh", "-c", value],
                cwd=workdir,
                env=environment,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT,
            )
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
        done = subprocess.run(
            [script, "--help"], env=environment, cwd=tmp_path, capture_output=True, text=True
        )
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
    done = subprocess.run(
        ["python", "-c", program],
        env=image_environment(image_venv),
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_the_image_holds_no_test_dev_embedded_or_install_tool(image_venv: Path) -> None:
    program = "import importlib.metadata as m; print('\\n'.join(d.name for d in m.distributions()))"
    done = subprocess.run(
        [str(image_venv / "bin" / "python"), "-c", program],
        env=image_environment(image_venv),
        capture_output=True,
        text=True,
        check=True,
    )
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
