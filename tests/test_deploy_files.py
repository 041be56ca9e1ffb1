"""The Dockerfile and the compose file agree with each other and with what production requires: no Docker
engine runs here, so what can be read is checked."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
OUR_SERVICES = ("migrate", "web", "worker")


def _instance_dir() -> str:
    return re.search(r"SANDAN_INSTANCE_DIR=(\S+)", DOCKERFILE).group(1)


def test_web_and_worker_keep_the_instance_dir_on_one_named_volume():
    """Photos outlive a rebuild, and the worker removes the files the web stored."""
    mounts = {name: COMPOSE["services"][name].get("volumes", []) for name in OUR_SERVICES}
    shared = {m for m in mounts["web"] if m.endswith(":" + _instance_dir())}
    assert shared and shared <= set(mounts["worker"]), mounts
    assert all(m.split(":")[0] in COMPOSE["volumes"] for m in shared)


def test_only_the_web_keeps_the_images_healthcheck():
    """The image's check asks the web's port; a service that serves none would be unhealthy for ever."""
    assert "HEALTHCHECK" in DOCKERFILE and "5000" in COMPOSE["services"]["web"]["ports"][0]
    assert COMPOSE["services"]["web"].get("healthcheck") is None
    for name in ("migrate", "worker"):
        assert COMPOSE["services"][name].get("healthcheck") == {"disable": True}, name


def test_production_gets_every_secret_it_requires_and_wechat_over_https():
    environment = COMPOSE["services"]["web"]["environment"]
    assert environment["SANDAN_ENV"] == "production"
    for name in ("SECRET_KEY", "SANDAN_ENCRYPTION_KEYS", "SANDAN_HMAC_KEY", "WECHAT_APPID", "WECHAT_SECRET"):
        assert environment[name] == f"${{{name}:?set {name} in .env}}", name
    assert environment["WECHAT_API_BASE_URL"].endswith(":-https://api.weixin.qq.com/}")
