"""The container recipe: hadolint finds nothing at warning level or above, and the Dockerfile
keeps the shape docs/deploy.md promises (two stages, non-root, health check, port, command).

Nothing here builds the image: CI has no container engine. The build and its smoke run are
``/work/shared/tools/docker-build.sh`` on a developer's machine.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SERVE_COMMAND = ["mfa", "serve", "--host", "0.0.0.0", "--port", "8000", "--migrate"]


@dataclass(frozen=True, slots=True)
class Instruction:
    keyword: str
    arguments: str


def _instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def _stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    stages: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


@pytest.fixture(scope="module")
def stages() -> list[list[Instruction]]:
    return _stages(_instructions(DOCKERFILE.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def final_stage(stages: list[list[Instruction]]) -> list[Instruction]:
    return stages[-1]


def _all(stage: list[Instruction], keyword: str) -> list[str]:
    return [instruction.arguments for instruction in stage if instruction.keyword == keyword]


def _hadolint() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    if beside_python.is_file():
        return str(beside_python)
    found = shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not found: install the dev extras (pip install -e '.[dev]')")
    return found


def test_hadolint_finds_nothing_at_warning_level() -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "warning", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, f"hadolint findings:\n{result.stdout}{result.stderr}"


def test_image_is_built_in_a_separate_stage(stages: list[list[Instruction]]) -> None:
    assert len(stages) >= 2, "expected a build stage and a runtime stage"
    assert any(arguments.startswith("--from=") for arguments in _all(stages[-1], "COPY")), (
        "the runtime stage should copy the built environment from an earlier stage"
    )


def test_runtime_stage_runs_as_a_non_root_user(final_stage: list[Instruction]) -> None:
    users = _all(final_stage, "USER")
    assert users, "the runtime stage sets no USER, so it runs as root"
    user, _, group = users[-1].partition(":")
    assert user not in ("root", "0"), f"USER {users[-1]} is root"
    assert group not in ("root", "0"), f"USER {users[-1]} runs with the root group"


def test_runtime_stage_checks_health_at_healthz(final_stage: list[Instruction]) -> None:
    checks = _all(final_stage, "HEALTHCHECK")
    assert len(checks) == 1, f"expected one HEALTHCHECK, found {len(checks)}"
    assert "http://127.0.0.1:8000/healthz" in checks[0]


def test_runtime_stage_exposes_port_8000(final_stage: list[Instruction]) -> None:
    ports = {
        port.split("/")[0]
        for arguments in _all(final_stage, "EXPOSE")
        for port in arguments.split()
    }
    assert "8000" in ports


def test_runtime_stage_keeps_what_the_service_writes_in_the_data_volume(
    final_stage: list[Instruction],
) -> None:
    """The service user owns only /data: the database, uploaded imports and Brightway's folder
    must live there, or the first write fails with a permission error."""
    assert _all(final_stage, "VOLUME") == ['["/data"]']
    settings = dict(re.findall(r"(MFA_[A-Z_]+)=(\S+)", " ".join(_all(final_stage, "ENV"))))
    assert settings["MFA_DATABASE_URL"].startswith("sqlite:////data/")
    assert settings["MFA_IMPORT_DIR"].startswith("/data/")
    assert settings["MFA_BRIGHTWAY_DIR"].startswith("/data/")


def test_runtime_stage_serves_with_migrations(final_stage: list[Instruction]) -> None:
    commands = _all(final_stage, "CMD")
    assert commands, "the runtime stage has no CMD"
    assert json.loads(commands[-1]) == SERVE_COMMAND


def test_dependencies_are_installed_at_the_locked_versions(
    stages: list[list[Instruction]],
) -> None:
    installs = [
        arguments
        for stage in stages[:-1]
        for arguments in _all(stage, "RUN")
        if " install " in arguments and "-r " in arguments
    ]
    assert installs, "the build stage installs no dependencies"
    assert all("-c requirements.lock" in arguments for arguments in installs)


def test_copied_paths_exist_in_the_repository(stages: list[list[Instruction]]) -> None:
    """A renamed folder breaks the build, not just the image: catch it without building."""
    for stage in stages:
        for arguments in _all(stage, "COPY"):
            if arguments.startswith("--from="):
                continue
            *sources, _destination = arguments.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such path in the repository"


@pytest.mark.parametrize("pattern", [".git", ".venv", ".env", "var/", "tests/", "**/*.db"])
def test_dockerignore_keeps_local_state_out_of_the_context(pattern: str) -> None:
    patterns = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    assert pattern in patterns
