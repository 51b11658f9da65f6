"""The Dockerfile and the Docker examples of the docs, read as a new user follows them (no
Docker engine runs where the tests run, so this reads the files): issue 18, item 6."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from kit import ROOT

DOCKERFILE = ROOT / "Dockerfile"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# containers the examples reach by name: they resolve only on a user-defined network
OTHER_CONTAINERS = re.compile(r"(?<![\w.-])(dsiem-nats|frontend)(?![\w-])")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}\b")
NETWORK = re.compile(r"\s--net(work)?[ =]\S")


def instructions(text: str) -> list[tuple[str, str]]:
    """The Dockerfile's instructions, (KEYWORD, arguments), continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            out.append((keyword.upper(), args.strip()))
    return out


def option(command: str, name: str) -> str | None:
    m = re.search(rf"(?:^|\s){re.escape(name)}[ =](\S+)", command)
    return m.group(1) if m else None


def final_stage(text: str) -> list[tuple[str, str]]:
    steps = instructions(text)
    last_from = max(i for i, (k, _) in enumerate(steps) if k == "FROM")
    return steps[last_from:]


def test_the_user_and_group_have_fixed_numeric_ids():
    """`useradd --system` alone gives the group the next free system gid (999, 998, ...,
    whatever the base image has taken), which shows on bind-mounted files."""
    stage = final_stage(DOCKERFILE.read_text())
    run = " && ".join(args for k, args in stage if k == "RUN")
    commands = [c.strip() for c in re.split(r"&&|;", run)]
    groupadd = [c for c in commands if c.startswith("groupadd")]
    useradd = [c for c in commands if c.startswith("useradd")]
    assert len(groupadd) == 1 and len(useradd) == 1, commands
    gid = option(groupadd[0], "--gid") or option(groupadd[0], "-g")
    uid = option(useradd[0], "--uid") or option(useradd[0], "-u")
    user_gid = option(useradd[0], "--gid") or option(useradd[0], "-g")
    assert gid is not None and gid.isdigit(), groupadd[0]
    assert uid is not None and uid.isdigit(), useradd[0]
    assert user_gid == gid, useradd[0]
    users = [args for k, args in stage if k == "USER"]
    assert users == [f"{uid}:{gid}"], "USER: the numeric uid:gid (a name needs /etc/passwd)"

    docs = (ROOT / "docs" / "deployment.md").read_text()
    assert f"uid {uid}" in docs and f"gid {gid}" in re.sub(r"\s+", " ", docs)
    assert f"chown -R {uid}:{gid} " in docs  # how to give a bind mount to them


def docker_runs(path: Path) -> list[tuple[int, str]]:
    """The `docker run` commands of a document: in code blocks (with their `\\`
    continuation lines) and in inline code spans."""
    found: list[tuple[int, str]] = []
    lines = path.read_text().splitlines()
    fence = False
    number = 0
    while number < len(lines):
        line = lines[number]
        if line.lstrip().startswith("```"):
            fence = not fence
        elif fence and re.search(r"\bdocker\s+run\b", line):
            start, command = number, line
            while command.rstrip().endswith("\\") and number + 1 < len(lines):
                number += 1
                command = command.rstrip()[:-1] + " " + lines[number]
            found.append((start + 1, command))
        elif not fence:
            found += [(number + 1, span) for span in re.findall(r"`([^`]+)`", line)
                      if span.startswith("docker run")]
        number += 1
    return found


def all_docker_runs() -> list[tuple[str, str]]:
    return [(f"{path.name}:{line}", command) for path in DOCS
            for line, command in docker_runs(path)]


def test_every_docker_run_that_reaches_another_container_names_a_network():
    """On Docker's default bridge containers do not resolve each other's names."""
    reaching = [(where, c) for where, c in all_docker_runs()
                if OTHER_CONTAINERS.search(c.split("#")[0])]
    assert reaching, "no `docker run` example that reaches dsiem-nats or frontend was found"
    missing = [where for where, c in reaching if not NETWORK.search(c)]
    assert not missing, f"docker run without --network: {missing}"


@pytest.mark.parametrize("command, ok", [
    ("docker run -d -e DSIEM_MSQ=nats://dsiem-nats:4222 dsiem-sql serve", False),
    ("docker run -d --network dsiem -e DSIEM_MSQ=nats://dsiem-nats:4222 dsiem-sql", True),
    ("docker run -d --net=dsiem -e DSIEM_FRONTEND=http://frontend:8080 dsiem-sql", True),
])
def test_the_network_check(command, ok, tmp_path):
    doc = tmp_path / "x.md"
    wrapped = command.replace(" -e", " \\\n  -e", 1)  # a continuation line
    doc.write_text(f"```sh\n{wrapped}\n```\n")
    [(_, found)] = docker_runs(doc)
    assert re.sub(r"\s+", " ", found) == command
    assert OTHER_CONTAINERS.search(found)
    assert bool(NETWORK.search(found)) is ok


def paragraphs(path: Path) -> list[str]:
    return [re.sub(r"\s+", " ", p) for p in re.split(r"\n\s*\n", path.read_text())]


def test_the_docs_call_no_tag_pinned():
    """A tag is moved by its publisher to new builds; only a digest pins an image."""
    steps = instructions(DOCKERFILE.read_text())
    base = [args for k, args in steps if k == "FROM"]
    assert base and all(b.split()[0] == "${PYTHON_IMAGE}" for b in base), base
    [default] = [args.partition("=")[2] for k, args in steps
                 if k == "ARG" and args.startswith("PYTHON_IMAGE=")]
    claims = [p for path in DOCS for p in paragraphs(path)
              if re.search(r"base image", p, re.I) and re.search(r"\bpinned\b", p, re.I)]
    if not DIGEST.search(default):  # the default is a tag
        assert not claims, f"the base image {default} is a tag, not pinned: {claims}"
    docs = (ROOT / "docs" / "deployment.md").read_text()
    assert f"`{default}`" in docs  # the docs name the tag...
    assert "docker inspect --format '{{index .RepoDigests 0}}'" in docs  # ...how to pin it
    assert re.search(r"--build-arg PYTHON_IMAGE=python@sha256:", docs)
