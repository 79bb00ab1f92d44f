"""No Docker engine runs here: this keeps docker-compose.yml true to the project."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SETTINGS = (ROOT / "ticketing" / "settings.py").read_text()
SERVICES = COMPOSE["services"]
APP = ("web", "worker", "beat")


def command(name):
    value = SERVICES[name]["command"]
    return value if isinstance(value, str) else " ".join(value)


def test_the_stack_has_postgres_redis_web_worker_and_beat():
    assert set(SERVICES) == {"postgres", "redis", "web", "worker", "beat"}
    assert SERVICES["postgres"]["image"].startswith("postgres:")
    assert SERVICES["redis"]["image"].startswith("redis:")


def test_the_app_services_run_the_documented_commands():
    assert "gunicorn ticketing.wsgi" in command("web") and "migrate" in command("web")
    assert command("worker").startswith("celery -A ticketing worker")
    assert command("beat").startswith("celery -A ticketing beat")


def test_every_service_has_a_healthcheck_and_the_app_waits_for_healthy_databases():
    for name, service in SERVICES.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name in APP:
        depends = SERVICES[name]["depends_on"]
        assert depends == {"postgres": {"condition": "service_healthy"}, "redis": {"condition": "service_healthy"}}


def test_app_services_share_one_environment_whose_names_settings_read():
    envs = [SERVICES[name]["environment"] for name in APP]
    assert envs[0] == envs[1] == envs[2]
    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z_]+)"', SETTINGS))
    assert set(envs[0]) <= read, f"names settings.py does not read: {set(envs[0]) - read}"
    for contract in ("DJANGO_SECRET_KEY", "DJANGO_DEBUG", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL",
                     "EMAIL_URL", "BOOKING_HOLD_MINUTES", "API_THROTTLE_RATES"):
        assert contract in envs[0]
    assert envs[0]["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in envs[0]["DATABASE_URL"]
    assert envs[0]["REDIS_URL"].startswith("redis://redis:6379")


def test_the_web_port_is_published_and_the_image_runs_gunicorn():
    assert "8000:8000" in SERVICES["web"]["ports"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "requirements.txt" in dockerfile and "gunicorn" in dockerfile
