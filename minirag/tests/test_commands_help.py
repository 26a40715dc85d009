"""Every MiniRAG management command, run as an operator runs it (`python manage.py ...` in a
subprocess): `--help` explains it with an example, and bad input ends with exit status 1 and a
one-line `CommandError: ...` on stderr, never a traceback.

Commands are discovered from the project's apps, so a new command fails here until it has a
proper help text and an error-path case below.

Each command runs in a process of its own, forked from one that has already imported the
third-party packages every `manage.py` imports first (minirag/tests/manage_forks.py): forty Python
start-ups cost most of this module's time otherwise."""

from __future__ import annotations

import itertools
import json
import os
import queue
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.core.management import get_commands, load_command_class

BASE_DIR = Path(__file__).resolve().parents[2]
MINIRAG_APPS = {"tenants", "bots", "sources", "chat", "webhooks", "minirag"}


def minirag_commands() -> dict[str, str]:
    """command name → app, for every command one of MiniRAG's own apps provides."""
    return {name: app for name, app in sorted(get_commands().items()) if app in MINIRAG_APPS}


@dataclass(frozen=True)
class ErrorCase:
    command: str
    args: tuple[str, ...]
    message: str  # expected in the one stderr line
    stdin: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.command}: {self.message}"


ERROR_CASES = [
    ErrorCase("migrate", ("nosuchapp",), "No installed app with label 'nosuchapp'."),
    ErrorCase(
        "createtenant",
        ("--name", "Acme", "--slug", "Not A Slug", "--owner-email", "o@acme.example", "--owner-password-stdin"),
        "--slug: Use lowercase letters, digits and hyphens only.",
        stdin="a long passphrase\n",
    ),
    ErrorCase(
        "createtenant",
        ("--name", "Acme", "--slug", "acme", "--owner-email", "not-an-email", "--owner-password-stdin"),
        "--owner-email: Enter a valid email address.",
        stdin="a long passphrase\n",
    ),
    ErrorCase("createtoken", ("--tenant", "nope", "--name", "CI"), "No tenant with slug or id 'nope'."),
    ErrorCase(
        "createtoken",
        ("--tenant", "nope", "--name", "CI", "--origin", "https://a.example"),
        "No tenant with slug or id 'nope'.",
    ),
    ErrorCase("changepassword", ("owner@acme.example", "--tenant", "nope"), "No tenant with slug or id 'nope'."),
    ErrorCase(
        "changepassword",
        ("ghost@example.com",),
        "No user 'ghost@example.com' among platform operators (use --tenant for a tenant's user).",
    ),
    ErrorCase("createsuperuser", ("--noinput", "--email", "not-an-email"), "Enter a valid email address."),
    ErrorCase("ingest", ("--tenant", "nope", "--all"), "No tenant with slug or id 'nope'."),
    ErrorCase("chat", ("--tenant", "nope", "--bot", "x", "--message", "Hi"), "No tenant with slug or id 'nope'."),
    ErrorCase("seed_demo", ("--base-url", "localhost:8000", "--skip-knowledge"), "--base-url: 'localhost:8000'"),
    ErrorCase(
        "rotate_keys",
        (),
        "MINIRAG_ENCRYPTION_KEYS must be comma-separated Fernet keys",
        env={"MINIRAG_TEST_ENV_OVERRIDES": json.dumps({"MINIRAG_ENCRYPTION_KEYS": "not-a-fernet-key"})},
    ),
    ErrorCase("rotate_keys", ("--batch-size", "0"), "--batch-size must be at least 1."),
    ErrorCase(
        "reindex",
        ("--if-needed",),
        "The vector store could not be reached",
        env={"MINIRAG_TEST_ENV_OVERRIDES": json.dumps({"QDRANT_URL": "http://127.0.0.1:9"})},
    ),
]


def _database_url(settings_dict: dict[str, Any]) -> str:
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{credentials}{settings_dict.get('HOST') or '127.0.0.1'}{port}/{settings_dict['NAME']}"


class ManageForks:
    """`python manage.py <args>` as a process of its own, forked from one of a few preloaded
    processes (minirag/tests/manage_forks.py); the answer is what `subprocess.run` would give."""

    def __init__(self, env: dict[str, str], directory: Path, processes: int) -> None:
        self.directory = directory
        self.runs = itertools.count()
        self.idle: queue.SimpleQueue[subprocess.Popen[str]] = queue.SimpleQueue()
        self.processes = []
        for number in range(processes):
            with (directory / f"preloader-{number}.stderr").open("w") as stderr:
                process = subprocess.Popen(
                    [sys.executable, str(Path(__file__).with_name("manage_forks.py"))],
                    cwd=BASE_DIR,
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    text=True,
                )
            self.processes.append(process)
            self.idle.put(process)
        for process in self.processes:
            assert process.stdout is not None
            assert json.loads(process.stdout.readline() or "{}") == {"ready": True}, self.preloader_errors()

    def run(self, args: list[str], *, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
        number = next(self.runs)
        paths = {stream: self.directory / f"{number}.{stream}" for stream in ("stdin", "stdout", "stderr")}
        paths["stdin"].write_text(stdin)
        request = {"args": args, "env": env, "cwd": str(BASE_DIR), "timeout": 120}
        request.update({stream: str(path) for stream, path in paths.items()})
        process = self.idle.get()
        try:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
            reply = json.loads(process.stdout.readline() or "{}")
        finally:
            self.idle.put(process)
        assert "status" in reply, self.preloader_errors()
        return subprocess.CompletedProcess(
            [sys.executable, "manage.py", *args],
            reply["status"],
            paths["stdout"].read_text(),
            paths["stderr"].read_text(),
        )

    def preloader_errors(self) -> str:
        return "".join(path.read_text() for path in sorted(self.directory.glob("preloader-*.stderr")))

    def close(self) -> None:
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.close()
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def subprocess_env(django_db_setup: Any, django_db_blocker: Any) -> dict[str, str]:
    """The environment of a `manage.py` child: test settings, pointed at this run's test
    database (which the child only reads: every case fails before writing)."""
    from django.db import connection

    with django_db_blocker.unblock():
        url = _database_url(connection.settings_dict)
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "minirag.settings_test", "MINIRAG_TEST_DATABASE_URL": url}


@pytest.fixture(scope="module")
def manage(subprocess_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManageForks]:
    forks = ManageForks(subprocess_env, tmp_path_factory.mktemp("manage"), processes=2)
    yield forks
    forks.close()
    # What the preloaded imports printed would have been in every command's stderr.
    assert forks.preloader_errors() == ""


@pytest.fixture(scope="module")
def help_outputs(manage: ManageForks, subprocess_env: dict[str, str]) -> dict[str, subprocess.CompletedProcess[str]]:
    """`manage.py <command> --help` of every command, two at a time (each child starts Django)."""
    names = list(minirag_commands())
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(lambda name: manage.run([name, "--help"], env=subprocess_env), names)
        return dict(zip(names, results, strict=True))


@pytest.fixture(scope="module")
def error_outputs(manage: ManageForks, subprocess_env: dict[str, str]) -> dict[str, subprocess.CompletedProcess[str]]:
    def run(case: ErrorCase) -> subprocess.CompletedProcess[str]:
        return manage.run([case.command, *case.args], env={**subprocess_env, **case.env}, stdin=case.stdin)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip([case.id for case in ERROR_CASES], pool.map(run, ERROR_CASES), strict=True))


def _description(help_output: str) -> str:
    """The command's own text in `--help`: between the usage block and the first argument list."""
    after_usage = help_output.split("\n\n", 1)[1]
    for heading in ("\npositional arguments:", "\noptions:", "\noptional arguments:"):
        after_usage = after_usage.split(heading, 1)[0]
    return after_usage.strip()


def test_discovery_finds_every_minirag_command() -> None:
    assert set(minirag_commands()) >= {
        "changepassword",
        "chat",
        "createsuperuser",
        "createtenant",
        "createtoken",
        "ingest",
        "migrate",
        "reindex",
        "rotate_keys",
        "seed_demo",
    }
    # Our createsuperuser/changepassword replace Django's (tenants comes before django.contrib.auth).
    assert minirag_commands()["createsuperuser"] == "tenants"
    assert minirag_commands()["changepassword"] == "tenants"


@pytest.mark.parametrize("command", list(minirag_commands()))
def test_help_explains_the_command_with_an_example(
    command: str, help_outputs: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    result = help_outputs[command]
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    description = _description(result.stdout)
    assert len(description) >= 80, description
    assert f"python manage.py {command}" in description, "the help has no example"
    # The text is shown as written (paragraphs, indented examples), not re-wrapped into one block.
    assert "\n\n" in description
    help_text = load_command_class(minirag_commands()[command], command).help
    assert help_text.strip().splitlines()[0] in description


def test_every_command_has_an_error_path_case() -> None:
    assert {case.command for case in ERROR_CASES} == set(minirag_commands())


@pytest.mark.parametrize("case", ERROR_CASES, ids=[case.id for case in ERROR_CASES])
def test_bad_input_is_one_clear_line_and_exit_status_1(
    case: ErrorCase, error_outputs: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    result = error_outputs[case.id]
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("CommandError: ") and case.message in lines[0], lines[0]
