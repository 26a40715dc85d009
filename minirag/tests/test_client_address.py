"""Per-address limits see the real client: a forwarded header is trusted only as configured.

The rule (docs/security.md): the ASGI server never takes the client address from request headers
(`make run`'s uvicorn runs with --no-proxy-headers, the image's gunicorn with a worker that turns
them off); MiniRAG reads `X-Forwarded-For` itself, for exactly `MINIRAG_NUM_PROXIES` hops. Outside
testing found the opposite: uvicorn trusts the header from 127.0.0.1 by default, so any process on
the host got a fresh login throttle and widget count with every new `X-Forwarded-For`.

Each server runs as its own process, started exactly as `make run` and the Docker image start it,
against the test database.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from minirag.tests.test_deployment import PYTHON, ROOT, free_port
from minirag.throttling import client_address
from tenants.models import Role
from tenants.tests.factories import TenantFactory, UserFactory

LOGIN_RATE = 4


def make_run_server_command(port: int) -> list[str]:
    """The uvicorn command line `make run` executes (as `make -n` prints it), on `port`."""
    planned = subprocess.run(
        ["make", "-n", "run", f"PORT={port}"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
    ).stdout
    line = next(line for line in planned.splitlines() if "uvicorn minirag.asgi:application" in line)
    command = shlex.split(line.removeprefix("exec ").strip())
    command[0] = str(Path(PYTHON).with_name("uvicorn"))  # the suite's own interpreter, wherever .venv is
    return command


def image_server_command(port: int) -> list[str]:
    """The Docker image's CMD, with the repository's gunicorn configuration."""
    return [str(Path(PYTHON).with_name("gunicorn")), "minirag.asgi:application", "--config", "deploy/gunicorn.conf.py"]


@pytest.fixture
def serve(transactional_db: Any, tmp_path: Path) -> Iterator[Any]:
    """Start a server command as its own process, on the test database; yields its base URL."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(command_for: Any, **overrides: str) -> str:
        port = free_port()
        db = connection.settings_dict
        overrides = {
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            "MINIRAG_LOGIN_RATE": f"{LOGIN_RATE}/minute",
            **overrides,
        }
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "minirag.settings_test",
            "MINIRAG_TEST_ENV_OVERRIDES": json.dumps(overrides),
            "PORT": str(port),
            "WEB_CONCURRENCY": "1",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"metrics-{port}"),
        }
        log = (tmp_path / f"server-{port}.log").open("wb")
        process = subprocess.Popen(
            command_for(port), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        processes.append(process)
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while not _answers(f"{base_url}/health"):
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / f"server-{port}.log").read_text()
            time.sleep(0.2)
        return base_url

    yield start
    for process in processes:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def wrong_logins(base_url: str, email: str, count: int, forwarded_for: list[str]) -> list[int]:
    statuses = []
    for attempt in range(count):
        body = json.dumps({"email": email, "password": f"wrong-{attempt}"}).encode()
        request = urllib.request.Request(
            f"{base_url}/v1/auth/login",
            data=body,
            headers={"Content-Type": "application/json", "X-Forwarded-For": forwarded_for[attempt]},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                statuses.append(response.status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)
    return statuses


def a_user() -> str:
    tenant = TenantFactory(slug="proxy-test")
    return UserFactory(tenant=tenant, role=Role.OWNER, email="owner@proxy.example").email


FRESH_ADDRESSES = [f"198.51.100.{n}" for n in range(1, 20)]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("command_for", [make_run_server_command, image_server_command], ids=["make-run", "image"])
def test_a_forwarded_header_alone_does_not_reset_the_login_throttle(serve: Any, command_for: Any) -> None:
    email = a_user()
    base_url = serve(command_for)
    statuses = wrong_logins(base_url, email, LOGIN_RATE + 3, FRESH_ADDRESSES)
    assert statuses == [401] * LOGIN_RATE + [429] * 3, statuses


@pytest.mark.timeout(180)
def test_behind_one_configured_proxy_the_forwarded_address_is_the_client(serve: Any) -> None:
    """The other half of the rule: with MINIRAG_NUM_PROXIES=1 (a proxy in front that sets the header),
    each forwarded client has its own limit, and the hop the proxy appended is the one read."""
    email = a_user()
    base_url = serve(image_server_command, MINIRAG_NUM_PROXIES="1")
    # A client that sends its own header gets it prefixed by the proxy's: only the last entry counts.
    spoofed = [f"10.0.0.{n}, 203.0.113.7" for n in range(1, 20)]
    assert wrong_logins(base_url, email, LOGIN_RATE + 2, spoofed) == [401] * LOGIN_RATE + [429] * 2
    assert wrong_logins(base_url, email, LOGIN_RATE, FRESH_ADDRESSES) == [401] * LOGIN_RATE


def test_the_address_rule_in_process(settings: Any) -> None:
    factory = APIRequestFactory()
    request = factory.get("/", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="198.51.100.9, 203.0.113.5")
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 0}
    assert client_address(Request(request)) == "192.0.2.1"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    assert client_address(Request(request)) == "203.0.113.5"
