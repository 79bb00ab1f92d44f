"""No Docker engine runs here: this keeps docker-compose.yml and the Dockerfile true to the project."""

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SETTINGS = (ROOT / "ticketing" / "settings.py").read_text()
DOCKERFILE = (ROOT / "Dockerfile").read_text()
SERVICES = COMPOSE["services"]
APP = ("web", "worker", "beat")
DATABASES_HEALTHY = {"postgres": {"condition": "service_healthy"}, "redis": {"condition": "service_healthy"}}
CONTRACT = ("DJANGO_SECRET_KEY", "DJANGO_DEBUG", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "EMAIL_URL",
            "BOOKING_HOLD_MINUTES", "API_THROTTLE_RATES")


def settings_env_names() -> set[str]:
    """Every name settings.py reads with env("NAME") or env.<cast>("NAME")."""
    return set(re.findall(r'\benv(?:\.\w+)?\(\s*"([A-Z0-9_]+)"', SETTINGS))


def command(name):
    value = SERVICES[name]["command"]
    return value if isinstance(value, str) else " ".join(value)


def test_the_stack_has_postgres_redis_web_worker_and_beat():
    assert set(SERVICES) == {"postgres", "redis", "web", "worker", "beat"}
    assert SERVICES["postgres"]["image"] == "postgres:16"
    assert SERVICES["redis"]["image"] == "redis:7"
    assert {SERVICES[name]["image"] for name in APP} == {"ticketing-app"}
    assert all(SERVICES[name]["build"] == "." for name in APP)


def test_the_app_services_run_the_documented_commands():
    web = command("web")
    assert "gunicorn ticketing.wsgi" in web and "--bind 0.0.0.0:8000" in web
    assert web.index("manage.py migrate") < web.index("gunicorn"), "web migrates before it serves"
    assert command("worker").startswith("celery -A ticketing worker")
    assert command("beat").startswith("celery -A ticketing beat")
    assert "8000:8000" in SERVICES["web"]["ports"]


def test_every_service_has_a_healthcheck():
    for name, service in SERVICES.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert "pg_isready" in str(SERVICES["postgres"]["healthcheck"]["test"])
    assert "ping" in str(SERVICES["redis"]["healthcheck"]["test"])
    assert "inspect ping" in str(SERVICES["worker"]["healthcheck"]["test"])


def test_the_web_healthcheck_runs_a_script_the_image_contains():
    test = SERVICES["web"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    assert (ROOT / test[2]).is_file()


def test_the_app_waits_for_healthy_databases_and_worker_and_beat_for_the_migrated_web():
    assert SERVICES["web"]["depends_on"] == DATABASES_HEALTHY
    for name in ("worker", "beat"):
        assert SERVICES[name]["depends_on"] == {**DATABASES_HEALTHY, "web": {"condition": "service_healthy"}}


def test_app_services_share_one_environment_whose_names_settings_read():
    envs = [SERVICES[name]["environment"] for name in APP]
    assert envs[0] == envs[1] == envs[2]
    read = settings_env_names()
    assert set(envs[0]) <= read, f"names settings.py does not read: {set(envs[0]) - read}"
    for contract in CONTRACT:
        assert contract in envs[0]
        assert contract in read
    assert envs[0]["DJANGO_DEBUG"] == "false"
    assert envs[0]["DATABASE_URL"] == "postgres://ticketing:ticketing@postgres:5432/ticketing"
    assert envs[0]["REDIS_URL"].startswith("redis://redis:6379/")


def test_the_database_url_matches_the_postgres_service():
    postgres = SERVICES["postgres"]["environment"]
    user, password, db = postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"]
    assert SERVICES["web"]["environment"]["DATABASE_URL"] == f"postgres://{user}:{password}@postgres:5432/{db}"


def test_the_image_installs_the_pins_collects_static_files_and_runs_gunicorn():
    assert re.search(r"^FROM python:3\.11-slim$", DOCKERFILE, re.M)
    assert "pip install -r requirements.txt" in DOCKERFILE
    assert "collectstatic --noinput" in DOCKERFILE
    assert '"gunicorn", "ticketing.wsgi"' in DOCKERFILE
    assert re.search(r"^USER \w+", DOCKERFILE, re.M), "the app does not run as root"


def test_the_build_context_leaves_out_local_state():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for path in (".venv", ".env", "db.sqlite3*", "var", ".git"):
        assert path in ignored


def _healthcheck():
    spec = importlib.util.spec_from_file_location("healthcheck", ROOT / "scripts" / "healthcheck.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("allowed", "host"), [
    ("localhost,127.0.0.1", "localhost"),
    ("tickets.example.com", "tickets.example.com"),
    (".example.com,www.example.com", "example.com"),
    ("*", "localhost"),
])
def test_the_web_healthcheck_asks_for_a_host_django_serves(monkeypatch, allowed, host):
    monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", allowed)

    assert _healthcheck().host() == host


def test_the_health_endpoint_answers_the_healthcheck(client, settings):
    settings.ALLOWED_HOSTS = ["tickets.example.com"]
    settings.SECURE_SSL_REDIRECT = True  # DJANGO_SECURE=true: /healthz stays reachable over plain HTTP

    response = client.get("/healthz", HTTP_HOST="tickets.example.com")

    assert response.status_code == 200
    assert response.content == b"ok"


def test_the_demo_shape_allows_console_mail_and_the_mock_gateway_visibly_and_needs_a_real_key():
    """Debug is off, so the app refuses development defaults (core/checks.py): the demo allows its mail
    to the console and the mock gateway out loud, and a missing secret key stops `docker compose` itself."""
    env = SERVICES["web"]["environment"]
    assert env["EMAIL_ALLOW_CONSOLE"] == "${EMAIL_ALLOW_CONSOLE:-true}"
    assert env["PAYMENT_GATEWAY_ALLOW_MOCK"] == "${PAYMENT_GATEWAY_ALLOW_MOCK:-true}"
    assert env["DJANGO_SECRET_KEY"].startswith("${DJANGO_SECRET_KEY:?")
    assert env["DJANGO_SECURE_PROXY_SSL_HEADER"] == "${DJANGO_SECURE_PROXY_SSL_HEADER:-false}"
    assert "seed_demo --force" in (ROOT / "docker-compose.yml").read_text()
