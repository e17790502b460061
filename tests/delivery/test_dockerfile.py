"""The operator image: a pinned slim base, the package installed from the repository, a non-root user,
`bellwether run` as the entrypoint, and a build context holding only what the build copies.

There is no container runtime here, so the Dockerfile is read, not built; the checks are the ones a
review would make.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

import yaml

from support.chartkit import CHART, ROOT

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    logical, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):  # comments may sit inside a continued instruction
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    out = []
    for entry in logical:
        keyword, _, args = entry.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip()))
    return out


PARSED = instructions(DOCKERFILE.read_text())


def stages() -> list[list[Instruction]]:
    found: list[list[Instruction]] = []
    for ins in PARSED:
        if ins.keyword == "FROM":
            found.append([])
        if found:
            found[-1].append(ins)
    return found


def base_images() -> list[str]:
    """Every FROM's image, with `${ARG}` replaced by the ARG's default."""
    args = {}
    for ins in PARSED:
        if ins.keyword == "ARG" and "=" in ins.args:
            name, _, default = ins.args.partition("=")
            args[name] = default
    images = []
    for ins in PARSED:
        if ins.keyword == "FROM":
            image = ins.args.split()[0]
            images.append(re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image))
    return images


def test_the_base_is_slim_debian_python_pinned_to_a_patch_release_or_digest() -> None:
    images = base_images()
    assert images and len(set(images)) == 1, "build and runtime stages share one base"
    (image,) = set(images)
    pinned_tag = re.fullmatch(r"python:3\.(\d+)\.\d+-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?", image)
    assert pinned_tag, f"{image}: pin python:3.X.Y-slim-<debian> (or its digest), never a moving tag"
    assert int(pinned_tag.group(1)) >= 11  # requires-python in pyproject.toml
    if not pinned_tag.group(3):
        assert "not pinned by digest" in DOCKERFILE.read_text(), "say why there is no digest, and how to add one"


def test_the_image_runs_as_a_numeric_non_root_user() -> None:
    final = stages()[-1]
    users = [ins.args for ins in final if ins.keyword == "USER"]
    assert users, "the runtime stage sets USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric, so Kubernetes can verify runAsNonRoot"
    assert not gid or (gid.isdigit() and int(gid) != 0)
    # The chart runs the pod as the same user.
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    assert f"runAsUser: {uid}" in deployment


def test_the_package_is_installed_from_the_repository_without_a_pip_cache() -> None:
    runs = [ins.args for stage in stages() for ins in stage if ins.keyword == "RUN"]
    assert any(re.search(r"\bpip install --no-cache-dir \.(\s|$)", run) for run in runs)
    copies = [shlex.split(ins.args) for ins in PARSED if ins.keyword == "COPY" and "--from" not in ins.args]
    copied = {src.rstrip("/") for args in copies for src in args[:-1]}
    assert {"pyproject.toml", "operator"} <= copied
    readme = re.search(r'^readme = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), flags=re.MULTILINE)
    assert readme and readme.group(1) in copied, "setuptools needs the readme pyproject.toml names"


def test_the_entrypoint_is_bellwether_run() -> None:
    entrypoints = [ins.args for ins in stages()[-1] if ins.keyword == "ENTRYPOINT"]
    assert entrypoints and json.loads(entrypoints[-1]) == ["bellwether", "run"]  # exec form: signals reach kopf
    assert re.search(r"^bellwether = ", (ROOT / "pyproject.toml").read_text(), flags=re.MULTILINE)


def test_the_exposed_ports_are_the_charts_defaults() -> None:
    exposed = {int(p) for ins in stages()[-1] if ins.keyword == "EXPOSE" for p in ins.args.split()}
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert exposed == {values["metrics"]["port"], values["healthPort"]}


def test_the_build_context_holds_only_what_the_build_copies() -> None:
    lines = [ln.strip() for ln in DOCKERIGNORE.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "*", "ignore everything, then let in what the build needs"
    let_in = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    copies = [shlex.split(ins.args) for ins in PARSED if ins.keyword == "COPY" and "--from" not in ins.args]
    assert let_in == {src.rstrip("/") for args in copies for src in args[:-1]}


def test_the_parser_joins_continuations_and_skips_comments() -> None:
    parsed = instructions("FROM x AS a\n# note\nRUN a \\\n    # inside\n    && b\nUSER 1:1\n")
    assert parsed == [Instruction("FROM", "x AS a"), Instruction("RUN", "a && b"), Instruction("USER", "1:1")]
