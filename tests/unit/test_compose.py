"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

Every service, image, command, healthcheck and required variable; each carprice
command must be one the CLI accepts and one the tests run natively (`carprice up`'s
plan, which tests/e2e/test_up.py runs, and `carprice init`, run by test_init.py).
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest
import typer.main
import yaml

from cli.context import CLI
from cli.main import cli as cli_app
from devstack.up import plan
from tests import REPO_ROOT

APP_SERVICES = {"init", "api", "relay", "reaper", "webhooks", "inference", "projector", "ui"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]  # type: ignore[no-any-return]


def _subcommand(argv: list[str]) -> tuple[str, ...]:
    """The subcommand path of a `carprice ...` argv, validated by the CLI's own parser."""
    group: Any = typer.main.get_command(cli_app)
    ctx = group.make_context("carprice", list(argv))
    path: list[str] = []
    while hasattr(group, "resolve_command"):  # a group (typer's own class, not click.Group)
        args = [*ctx._protected_args, *ctx.args]  # noqa: SLF001 - click keeps them here
        name, group, rest = group.resolve_command(ctx, args)
        assert group is not None, argv
        path.append(str(name))
        ctx = group.make_context(str(name), rest, parent=ctx)  # raises on a bad option
    return tuple(path)


def test_the_stack_has_every_service(services: dict[str, Any]) -> None:
    assert set(services) == {"postgres", "kafka"} | APP_SERVICES


def test_postgres_is_official_persistent_and_health_checked(services: dict[str, Any]) -> None:
    pg = services["postgres"]
    assert re.fullmatch(r"postgres:\d+", pg["image"])
    assert any(v.endswith(":/var/lib/postgresql") for v in pg["volumes"])
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert pg["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def test_kafka_is_the_tested_version_in_kraft_mode(services: dict[str, Any]) -> None:
    pom = (REPO_ROOT / "devstack" / "kafka" / "pom.xml").read_text()
    tested = re.search(r"<kafka.version>(\d+\.\d+)\.\d+</kafka.version>", pom)
    assert tested, "the pom names the Kafka version the tests run"
    kafka = services["kafka"]
    image, _, version = kafka["image"].partition(":")
    assert image == "apache/kafka" and version.rsplit(".", 1)[0] == tested.group(1)
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller" and "ZOOKEEPER" not in str(env)
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # init creates them, with partitions
    assert any(v.endswith(":" + env["KAFKA_LOG_DIRS"]) for v in kafka["volumes"])
    assert "kafka-broker-api-versions" in " ".join(kafka["healthcheck"]["test"])


def test_each_carprice_service_runs_a_command_the_tests_run_natively(services: dict[str, Any]) -> None:
    natively = {_subcommand(spec.argv[len(CLI):]) for spec in plan(CLI, "db", "kafka", 1, 2)} | {("init",)}
    used = set()
    for name in APP_SERVICES:
        svc = services[name]
        assert svc["image"].startswith("carprice:") and svc["build"] == "."
        assert svc["command"][0] == "carprice"
        used.add(_subcommand(svc["command"][1:]))
    assert used == natively


def test_start_order_waits_for_health_and_for_init(services: dict[str, Any]) -> None:
    assert services["init"]["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                              "kafka": {"condition": "service_healthy"}}
    assert services["init"]["restart"] == "no"
    for name in APP_SERVICES - {"init"}:
        assert services[name]["depends_on"]["init"] == {"condition": "service_completed_successfully"}
    assert services["ui"]["depends_on"]["api"] == {"condition": "service_healthy"}
    assert "/healthz" in " ".join(services["api"]["healthcheck"]["test"])
    assert services["inference"]["deploy"]["replicas"] == 2


def test_secrets_are_required_variables_and_only_where_needed(services: dict[str, Any]) -> None:
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    variables = set(re.findall(r"\$\{(\w+)", text))
    required = set(re.findall(r"\$\{(\w+):\?", text))
    assert required == {"POSTGRES_PASSWORD", "JWT_SECRET", "METRICS_TOKEN", "CARPRICE_PROXY_TOKEN"}
    assert all(re.search(rf"\$\{{{v}:[-?]", text) for v in variables), "every variable: default or required"
    example = (REPO_ROOT / ".env.example").read_text()
    for var in variables:
        assert re.search(rf"^#? ?{var}=", example, re.M), f"{var} missing from .env.example"
    for var in required:
        assert re.search(rf"^{var}=$", example, re.M), f"{var} must have no default in .env.example"
    for secret, where in (("JWT_SECRET", {"api"}), ("METRICS_TOKEN", {"api"}),
                          ("CARPRICE_PROXY_TOKEN", {"api", "ui"})):
        holders = {n for n in APP_SERVICES if secret in services[n].get("environment", {})}
        assert holders == where, secret
    assert "DATABASE_URL" not in services["ui"]["environment"]
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond localhost"


def test_the_image_is_complete_non_root_and_holds_no_secret() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert not re.search(r"^(ENV|ARG)\s.*(SECRET|PASSWORD|TOKEN)", dockerfile, re.M | re.I)
    packages = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())[
        "tool"]["setuptools"]["packages"]["find"]["include"]
    for package in (p.rstrip("*") for p in packages):
        assert f"COPY {package} ./{package}" in dockerfile, f"the image lacks {package}/"
    assert re.search(r"^RUN pip install \. ", dockerfile, re.M)  # no dev stack in production
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".env", ".carprice", ".venv"} <= set(ignored)
