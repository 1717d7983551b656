"""Docker does not run on this machine: check the compose file, Procfile and .env.example by parsing."""

from pathlib import Path

import yaml
from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def test_compose_has_the_services_with_healthchecks_and_ordering():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"web", "worker", "beat", "redis", "postgres"} <= set(services)
    for name in ("postgres", "redis", "web", "worker"):
        assert "healthcheck" in services[name], name
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["environment"]["HASHINSIGHT_ENV"] == "production"
    assert "uvicorn" in (ROOT / "Dockerfile").read_text()
    assert "worker" in " ".join(services["worker"]["command"])
    assert "DatabaseScheduler" in " ".join(services["beat"]["command"])


def test_procfile_runs_web_worker_and_beat():
    roles = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert {"web", "worker", "beat"} <= set(roles)
    assert "hashinsight.asgi:application" in roles["web"]


def test_env_example_lists_every_variable():
    names = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert {"DATABASE_URL", "REDIS_URL", "OPENAI_API_KEY", "SECRET_KEY", "FIELD_ENCRYPTION_KEY", "ALLOWED_HOSTS",
            "CORS_ALLOWED_ORIGINS"} <= names  # fmt: skip


def test_makefile_targets():
    text = (ROOT / "Makefile").read_text()
    for target in ("run:", "test:", "up:", "logs:", "migrate:", "seed:"):
        assert f"\n{target}" in text, target


def test_every_app_container_shares_the_private_files_volume():
    """A report rendered by a worker is downloaded through web, and the SLA keyring must be the same for all: every
    process of the app mounts one private volume at PRIVATE_MEDIA_ROOT, which the app user may write."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("web", "worker", "worker-housekeeping", "worker-intelligence", "beat", "migrate"):
        root = services[name]["environment"]["PRIVATE_MEDIA_ROOT"]
        assert f"private:{root}" in services[name]["volumes"], name
    assert "private" in compose["volumes"]
    assert "chown hashinsight /srv/hashinsight-private" in (ROOT / "Dockerfile").read_text()
