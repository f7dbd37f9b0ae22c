"""Bake the API path's projects and lint what deploys them.

The Dockerfile goes through hadolint, the Kubernetes manifests through
kubernetes-validate (strict, against an older release and the newest one it has schemas for), every
YAML file through yamllint and the CI workflow through check-jsonschema's GitHub
Actions schema. This machine has no Docker engine, so ``docker compose config`` cannot
run: compose files are read with PyYAML and checked for their services, volumes and
the absence of secret values. Each linter also gets a broken input, which proves that
the check can fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import huey
import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from generator.cli import main

VARIANTS = {
    "hubspot": ["--preset", "riyadh-perfume-hubspot", "--set", "path=api"],
    # The service does not sync to Zoho yet, but the API path renders for it.
    "zoho": ["--preset", "jeddah-fashion-zoho", "--set", "path=api"],
    "custom": ["--preset", "custom-erp"],
}
CORE_MANIFESTS = ("configmap.yaml", "web-service.yaml", "web-pods-service.yaml",
                  "web-statefulset.yaml", "web-hpa.yaml", "worker-pvc.yaml",
                  "worker-deployment.yaml")
SCALED_OBJECT = "deploy/k8s/keda/worker-scaledobject.yaml"
# An older release that clusters still run, and the newest one kubernetes-validate 1.37 covers.
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")
# kubernetes-validate prints this and exits 0 for a kind it has no schema for.
NO_SCHEMA = "Couldn't find schema"
YAMLLINT_CONFIG = ("{extends: default, rules: {line-length: {max: 100}, "
                   "document-start: disable, truthy: {check-keys: false}}}")
# Settings whose value is a secret (see service/.env.example). None may be written inline.
SECRET_SETTINGS = frozenset({
    "SHOPIFY_WEBHOOK_SECRETS", "WOOCOMMERCE_WEBHOOK_SECRETS", "STOREFRONT_WEBHOOK_SECRETS",
    "HUBSPOT_ACCESS_TOKEN", "DATABASE_URL", "CUSTOMDB_READONLY_PASSWORD", "REDIS_PASSWORD",
    "ZOHO_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN",
})
SECRET_NAME = "storesync-secrets"
APP_SERVICES = {
    "hubspot": {"web", "worker", "flusher"},
    "zoho": {"web", "worker", "flusher"},
    "custom": {"migrate", "web", "worker"},
}
STATE_MOUNT = "storesync-data:/data"

# The fields of KEDA 2's ScaledObject and of its redis (lists) trigger that this project
# may use, from KEDA's ScaledObject specification and Redis Lists scaler pages. Trigger
# metadata values are strings there.
_REDIS_METADATA = {name: {"type": "string"} for name in (
    "address", "addressFromEnv", "host", "hostFromEnv", "port", "portFromEnv",
    "usernameFromEnv", "passwordFromEnv", "listName", "listLength", "activationListLength",
    "enableTLS", "unsafeSsl", "databaseIndex")}
SCALED_OBJECT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "labels": {"type": "object"}},
        },
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {name: {"type": "string"} for name in (
                        "name", "kind", "apiVersion", "envSourceContainerName")},
                },
                **{name: {"type": "integer", "minimum": 0} for name in (
                    "pollingInterval", "cooldownPeriod", "initialCooldownPeriod",
                    "idleReplicaCount", "minReplicaCount", "maxReplicaCount")},
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "additionalProperties": False,
                        "properties": {
                            "type": {"const": "redis"},
                            "name": {"type": "string"},
                            "metadata": {
                                "type": "object",
                                "required": ["listName", "listLength"],
                                "additionalProperties": False,
                                "properties": _REDIS_METADATA,
                            },
                            "authenticationRef": {"type": "object"},
                        },
                    },
                },
            },
        },
    },
}


def bake(output: Path, args: list[str]) -> Path:
    result = CliRunner().invoke(main, ["new", "--no-input", "--output-dir", str(output), *args],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (project,) = [path for path in output.iterdir() if path.is_dir()]
    return project


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[str, Path]:
    crm = str(request.param)
    return crm, bake(tmp_path_factory.mktemp(crm), VARIANTS[crm])


def tool(name: str) -> str:
    """Return the path of a linter from the test extra, skipping (failing under CI) without it."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        reason = f"{name} is not installed; install the test extra: pip install -e '.[test]'"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}. CI is set, so the deployment linters must run.")
        pytest.skip(reason)
    return found


def lint(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120,
                          check=False)


def report(result: subprocess.CompletedProcess[str]) -> str:
    return f"{' '.join(result.args)} exited {result.returncode}:\n{result.stdout}{result.stderr}"


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    """Lint ``dockerfile`` with hadolint. Every finding fails, down to the style level."""
    return lint([tool("hadolint"), "--no-color", "--failure-threshold", "style",
                 str(dockerfile)], dockerfile.parent)


def kubernetes_validate(files: list[Path], version: str) -> subprocess.CompletedProcess[str]:
    return lint([tool("kubernetes-validate"), "--strict", "--kubernetes-version", version,
                 *map(str, files)], files[0].parent)


def workflow_check(workflow: Path) -> subprocess.CompletedProcess[str]:
    return lint([tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                 str(workflow)], workflow.parent)


def read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def manifest(project: Path, name: str) -> dict[str, Any]:
    data = read_yaml(project / "deploy/k8s" / name)
    assert isinstance(data, dict), name
    return data


def pod_spec(project: Path, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = manifest(project, name)["spec"]["template"]["spec"]
    return spec


def containers(project: Path, name: str) -> dict[str, dict[str, Any]]:
    spec = pod_spec(project, name)
    every = [*spec.get("initContainers", []), *spec["containers"]]
    return {container["name"]: container for container in every}


def inline_secrets(compose: dict[str, Any]) -> list[str]:
    """Return ``service.VARIABLE`` for every secret value written into a compose file.

    A secret setting may not appear at all, and no URL may carry a password.
    """
    found = []
    for service_name, service in (compose.get("services") or {}).items():
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.partition("=")[::2] for item in environment)
        for variable, value in environment.items():
            has_password = isinstance(value, str) and "://" in value and bool(
                urlsplit(value).password)
            if variable in SECRET_SETTINGS or has_password:
                found.append(f"{service_name}.{variable}")
    return found


def env_variables(container: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for entry in container.get("env", []):
        yield entry["name"], entry


# --- Dockerfile ---------------------------------------------------------------------------


def test_dockerfile_passes_hadolint(variant: tuple[str, Path]) -> None:
    _, project = variant
    result = hadolint(project / "service/Dockerfile")
    assert result.returncode == 0, report(result)


def test_hadolint_rejects_broken_dockerfile(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python\nRUN apt-get update && apt-get install -y curl\n",
                          encoding="utf-8")
    result = hadolint(dockerfile)
    assert result.returncode != 0, report(result)
    assert "DL3006" in result.stdout, report(result)


def test_dockerfile_runtime_rules(variant: tuple[str, Path]) -> None:
    _, project = variant
    text = (project / "service/Dockerfile").read_text(encoding="utf-8")
    stages = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert stages == ["FROM ${PYTHON_IMAGE} AS builder", "FROM ${PYTHON_IMAGE} AS runtime"]
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    assert "USER 10001:10001" in text
    assert 'VOLUME ["/data"]' in text
    assert "urllib.request.urlopen" in text
    assert "/healthz" in text
    copies = [line for line in text.splitlines() if line.startswith("COPY ")]
    assert copies, "the Dockerfile copies nothing"
    for line in copies:
        assert ".env" not in line, line
    ignored = (project / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert "**/.env" in ignored
    assert "service/var" in ignored


# --- Kubernetes ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_pass_kubernetes_validate(variant: tuple[str, Path], version: str) -> None:
    _, project = variant
    files = [project / "deploy/k8s" / name for name in CORE_MANIFESTS]
    assert sorted(path.name for path in (project / "deploy/k8s").glob("*.yaml")) == sorted(
        CORE_MANIFESTS)
    result = kubernetes_validate(files, version)
    assert result.returncode == 0, report(result)
    assert NO_SCHEMA not in result.stdout + result.stderr, report(result)


def test_kubernetes_validate_rejects_unknown_field(tmp_path: Path) -> None:
    broken = tmp_path / "service.yaml"
    broken.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], "replica": 2},
    }), encoding="utf-8")
    result = kubernetes_validate([broken], KUBERNETES_VERSIONS[-1])
    assert result.returncode != 0, report(result)
    assert "replica" in result.stdout + result.stderr, report(result)


def test_manifests_name_secret_only(variant: tuple[str, Path]) -> None:
    _, project = variant
    for path in sorted((project / "deploy").rglob("*.yaml")):
        assert read_yaml(path)["kind"] != "Secret", path.name
    for name in ("web-statefulset.yaml", "worker-deployment.yaml"):
        for container_name, container in containers(project, name).items():
            sources = container["envFrom"]
            assert {"secretRef": {"name": SECRET_NAME}} in sources, container_name
            assert {"configMapRef": {"name": "storesync-config"}} in sources, container_name
            for variable, entry in env_variables(container):
                assert variable not in SECRET_SETTINGS, (container_name, variable)
                assert "value" not in entry or "://" not in str(entry["value"]), variable
    settings = manifest(project, "configmap.yaml")["data"]
    assert SECRET_SETTINGS.isdisjoint(settings)
    assert "REDIS_URL" not in settings


def test_web_probes_and_autoscaler(variant: tuple[str, Path]) -> None:
    _, project = variant
    web = containers(project, "web-statefulset.yaml")["web"]
    assert web["args"] == ["intake"]
    assert web["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert web["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert set(web["resources"]) == {"requests", "limits"}
    statefulset = manifest(project, "web-statefulset.yaml")
    assert statefulset["spec"]["serviceName"] == manifest(
        project, "web-pods-service.yaml")["metadata"]["name"]
    assert statefulset["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    hpa = manifest(project, "web-hpa.yaml")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "StatefulSet",
                                             "name": statefulset["metadata"]["name"]}


def test_worker_pods_share_state(variant: tuple[str, Path]) -> None:
    crm, project = variant
    deployment = manifest(project, "worker-deployment.yaml")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    spec = pod_spec(project, "worker-deployment.yaml")
    term = spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    claim = manifest(project, "worker-pvc.yaml")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    (data,) = [volume for volume in spec["volumes"] if volume["name"] == "data"]
    assert data["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    by_name = containers(project, "worker-deployment.yaml")
    expected = {"hubspot": {"worker", "flusher"}, "zoho": {"worker", "flusher"},
                "custom": {"migrate", "worker"}}[crm]
    assert set(by_name) == expected
    for container_name, container in by_name.items():
        mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
        assert mounts["data"] == "/data", container_name
        assert set(container["resources"]) == {"requests", "limits"}, container_name
    if "flusher" in by_name:
        assert by_name["flusher"]["args"] == ["flusher"]
    assert by_name["worker"]["livenessProbe"]["httpGet"]["path"] == "/metrics"


def test_scaledobject_watches_huey_queue(variant: tuple[str, Path]) -> None:
    crm, project = variant
    scaled = read_yaml(project / SCALED_OBJECT)
    jsonschema.validate(scaled, SCALED_OBJECT_SCHEMA)
    prefix = manifest(project, "configmap.yaml")["data"]["REDIS_KEY_PREFIX"]
    # The installed huey names the list, and constructing RedisHuey opens no connection.
    queue = huey.RedisHuey(name=prefix, url="redis://127.0.0.1:6379/0", results=False)
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["metadata"]["listName"] == queue.storage.queue_key
    assert trigger["metadata"]["addressFromEnv"] in manifest(project, "configmap.yaml")["data"]
    target = scaled["spec"]["scaleTargetRef"]
    assert target["name"] == manifest(project, "worker-deployment.yaml")["metadata"]["name"]
    assert target["envSourceContainerName"] == "worker"
    assert scaled["spec"]["minReplicaCount"] == 1
    assert scaled["spec"]["maxReplicaCount"] == (1 if crm == "custom" else 4)


def test_scaledobject_schema_rejects_missing_list(variant: tuple[str, Path]) -> None:
    _, project = variant
    scaled = read_yaml(project / SCALED_OBJECT)
    del scaled["spec"]["triggers"][0]["metadata"]["listName"]
    with pytest.raises(jsonschema.ValidationError, match="'listName' is a required property"):
        jsonschema.validate(scaled, SCALED_OBJECT_SCHEMA)


# --- YAML, workflow and compose -----------------------------------------------------------


def test_yaml_passes_yamllint(variant: tuple[str, Path]) -> None:
    _, project = variant
    result = lint([tool("yamllint"), "--strict", "-d", YAMLLINT_CONFIG, "compose.yaml",
                   "compose.redis.yaml", "deploy", ".github/workflows/ci.yml"], project)
    assert result.returncode == 0, report(result)


def test_yamllint_rejects_duplicate_key(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web: {}\n  web: {}\n", encoding="utf-8")
    result = lint([tool("yamllint"), "--strict", "-d", YAMLLINT_CONFIG, "compose.yaml"],
                  tmp_path)
    assert result.returncode != 0, report(result)
    assert "duplication of key" in result.stdout, report(result)


def test_ci_workflow_passes_schema(variant: tuple[str, Path]) -> None:
    crm, project = variant
    workflow = project / ".github/workflows/ci.yml"
    result = workflow_check(workflow)
    assert result.returncode == 0, report(result)
    jobs = read_yaml(workflow)["jobs"]
    assert set(jobs["test"]["services"]) == ({"redis", "postgres"} if crm == "custom"
                                             else {"redis"})
    steps = [step.get("run", "") for step in jobs["test"]["steps"]]
    assert "bash scripts/test.sh" in steps
    assert any(step.get("run", "").startswith("docker build") for step in jobs["image"]["steps"])


def test_workflow_schema_rejects_missing_runner(tmp_path: Path) -> None:
    workflow = tmp_path / "ci.yml"
    workflow.write_text(yaml.safe_dump({"on": "push",
                                        "jobs": {"test": {"steps": [{"run": "true"}]}}}),
                        encoding="utf-8")
    result = workflow_check(workflow)
    assert result.returncode != 0, report(result)
    assert "runs-on" in result.stdout + result.stderr, report(result)


def test_compose_services_and_volume(variant: tuple[str, Path]) -> None:
    crm, project = variant
    compose = read_yaml(project / "compose.yaml")
    slug = read_yaml(project / ".rabt/answers.yaml")["project_slug"]
    assert compose["name"] == slug
    assert set(compose["services"]) == APP_SERVICES[crm]
    assert set(compose["volumes"]) == {"storesync-data"}
    for name, service in compose["services"].items():
        assert service["env_file"] == "service/.env", name
        assert service["volumes"] == [STATE_MOUNT], name
        assert service["build"] == {"context": ".", "dockerfile": "service/Dockerfile"}, name
        assert service["environment"]["DATA_DIR"] == "/data", name
    assert compose["services"]["web"]["ports"] == ["127.0.0.1:8000:8000"]
    assert compose["services"]["web"]["command"] == ["intake"]
    assert "profiles" not in compose["services"]["web"]
    if crm == "custom":
        wait = {"migrate": {"condition": "service_completed_successfully"}}
        assert compose["services"]["web"]["depends_on"] == wait
        assert compose["services"]["worker"]["depends_on"] == wait


def test_compose_redis_override(variant: tuple[str, Path]) -> None:
    crm, project = variant
    override = read_yaml(project / "compose.redis.yaml")
    assert set(override["services"]) == APP_SERVICES[crm] - {"migrate"} | {"redis"}
    assert set(override["volumes"]) == {"redis-data"}
    assert override["services"]["redis"]["volumes"] == ["redis-data:/data"]
    for name in APP_SERVICES[crm] - {"migrate"}:
        service = override["services"][name]
        assert service["environment"] == {"REDIS_URL": "redis://redis:6379/0"}, name
        assert service["depends_on"] == {"redis": {"condition": "service_healthy"}}, name


def test_compose_has_no_inline_secrets(variant: tuple[str, Path]) -> None:
    _, project = variant
    for name in ("compose.yaml", "compose.redis.yaml"):
        assert inline_secrets(read_yaml(project / name)) == [], name


def test_inline_secret_check_reports_values() -> None:
    compose = {"services": {
        "web": {"environment": {"HUBSPOT_ACCESS_TOKEN": "pat-not-a-real-token"}},
        "worker": {"environment": ["REDIS_URL=redis://:not-real@redis:6379/0", "LOG_LEVEL=INFO"]},
    }}
    assert inline_secrets(compose) == ["web.HUBSPOT_ACCESS_TOKEN", "worker.REDIS_URL"]
