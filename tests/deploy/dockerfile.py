"""Read the Dockerfile's final stage (ENV, HEALTHCHECK, ENTRYPOINT/CMD) so that the tests which
emulate the image use exactly what the image would."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

DOCKERFILE = Path(__file__).resolve().parents[2] / "Dockerfile"


@dataclass(frozen=True)
class FinalStage:
    environment: dict[str, str]
    healthcheck: list[str]
    command: list[str]
    user: str
    workdir: str
    exposed: list[int]


def _instructions(text: str) -> list[tuple[str, str]]:
    joined: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in joined]


def final_stage(path: Path = DOCKERFILE) -> FinalStage:
    instructions = _instructions(path.read_text())
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    environment: dict[str, str] = {}
    healthcheck: list[str] = []
    entrypoint: list[str] = []
    cmd: list[str] = []
    user = workdir = ""
    exposed: list[int] = []
    for name, argument in instructions[last_from + 1 :]:
        if name == "ENV":
            for pair in shlex.split(argument):
                key, _, value = pair.partition("=")
                environment[key] = value
        elif name == "HEALTHCHECK":
            healthcheck = json.loads(argument.split(" CMD ", 1)[1])
        elif name == "ENTRYPOINT":
            entrypoint = json.loads(argument)
        elif name == "CMD":
            cmd = json.loads(argument)
        elif name == "USER":
            user = argument
        elif name == "WORKDIR":
            workdir = argument
        elif name == "EXPOSE":
            exposed += [int(port) for port in argument.split()]
    return FinalStage(environment, healthcheck, entrypoint + cmd, user, workdir, exposed)
