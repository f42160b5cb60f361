"""The Helm chart, checked as ``make helm`` checks it: Helm v4's linter and install action (helm-sdkpy, in the
tool venv ``.venv-helm`` that ``helm/validate.py`` creates from ``helm/requirements.txt``), the rendered
manifests against Kubernetes' schemas (kubernetes-validate), and the chart's own checks.

No cluster and no helm binary: the render is Helm's install against a fake API server on 127.0.0.1 (see
``helm/validate.py``). The first run installs the tool venv from PyPI; later runs take seconds.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VALIDATE = REPO / "helm" / "validate.py"
CHART = REPO / "helm" / "carryover"
SCENARIOS = REPO / "helm" / "ci"
TABLE_ROLES = {"normalize", "state"}


@dataclass
class Run:
    returncode: int
    output: str
    out: Path

    def manifests(self, scenario: str) -> list[dict[str, Any]]:
        return [d for d in yaml.safe_load_all((self.out / f"{scenario}.yaml").read_text()) if d]


def validate(out: Path, *args: str) -> Run:
    result = subprocess.run(  # noqa: S603
        [sys.executable, str(VALIDATE), "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=900,  # the first run installs the tool venv
        cwd=REPO,
    )
    output = result.stdout + result.stderr
    print(output)  # shown by pytest on failure: the validation output is the evidence
    return Run(result.returncode, output, out)


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """``make helm``'s run: every scenario of helm/ci/."""
    return validate(tmp_path_factory.mktemp("helm"))


def _by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _worker_env(workload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container["env"]}


def test_the_chart_lints_renders_and_validates(scenarios: Run) -> None:
    assert scenarios.returncode == 0, scenarios.output
    assert scenarios.output.count("lint: ok") == 2
    assert "kubernetes-validate 1.27.0 (strict)" in scenarios.output
    assert " invalid" in scenarios.output and "FAILED" not in scenarios.output
    assert "chart validation OK: every check of 2 scenario(s)" in scenarios.output


def test_tables_run_in_statefulsets_and_ingestion_in_a_deployment(scenarios: Run) -> None:
    docs = scenarios.manifests("default")
    kinds = {d["kind"] for d in docs}
    assert {"StatefulSet", "Deployment", "Service", "PodDisruptionBudget", "ConfigMap"} <= kinds
    statefulsets, deployments = _by_kind(docs, "StatefulSet"), _by_kind(docs, "Deployment")
    services = _by_kind(docs, "Service")
    assert set(statefulsets) == {"carryover-normalize", "carryover-state"}
    assert set(deployments) == {"carryover-ingest"}
    assert set(_by_kind(docs, "PodDisruptionBudget")) == {
        "carryover-ingest",
        "carryover-normalize",
        "carryover-state",
    }
    assert services["carryover-web"]["spec"]["type"] == "ClusterIP"

    for name, sts in statefulsets.items():
        env = _worker_env(sts)
        assert set(env["CARRYOVER_ROLES"]["value"].split(",")) & TABLE_ROLES
        assert env["CARRYOVER_STORE"]["value"] == "rocksdb://"
        assert env["CARRYOVER_STANDBY_REPLICAS"]["value"] == "1"
        (claim,) = sts["spec"]["volumeClaimTemplates"]
        (container,) = sts["spec"]["template"]["spec"]["containers"]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts[claim["metadata"]["name"]] == env["CARRYOVER_DATA_DIR"]["value"]
        headless = services[sts["spec"]["serviceName"]]["spec"]
        assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
        # Faust's router sends other workers to the advertised host: the pod's own stable DNS name.
        assert env["CARRYOVER_WEB_HOST"]["value"] == (
            f"$(POD_NAME).{name}.$(POD_NAMESPACE).svc.cluster.local"
        )
        assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        assert env["CARRYOVER_WEB_BIND"]["value"] == "0.0.0.0"

    ingest_env = _worker_env(deployments["carryover-ingest"])
    assert ingest_env["CARRYOVER_ROLES"]["value"] == "ingest"
    assert ingest_env["CARRYOVER_WEB_HOST"]["value"] == "$(POD_IP)"


def test_probes_resources_and_the_grace_period(scenarios: Run) -> None:
    default = scenarios.manifests("default")
    options = scenarios.manifests("options")
    for docs, grace in ((default, 20), (options, 45)):  # extra: values.yaml's terminationGraceExtraSeconds
        for workload in [*_by_kind(docs, "StatefulSet").values(), *_by_kind(docs, "Deployment").values()]:
            pod = workload["spec"]["template"]["spec"]
            (container,) = pod["containers"]
            assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert container["resources"]["requests"]["memory"]
            assert _worker_env(workload)["CARRYOVER_SHUTDOWN_GRACE_SECONDS"]["value"] == str(grace)
            assert pod["terminationGracePeriodSeconds"] == grace + 25


def test_the_options_scenario_adds_a_service_monitor_and_uses_existing_secrets(scenarios: Run) -> None:
    docs = scenarios.manifests("options")
    (monitor,) = _by_kind(docs, "ServiceMonitor").values()
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"] == [
        {"port": "web", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}
    ]
    assert "StatefulSet/carryover-state" not in {f"{d['kind']}/{d['metadata']['name']}" for d in docs}
    sts = _by_kind(docs, "StatefulSet")["carryover-normalize"]
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "gp3"
    assert _by_kind(docs, "PodDisruptionBudget")["carryover-normalize"]["spec"] == {
        "minAvailable": 2,
        "selector": sts["spec"]["selector"],
    }
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    assert {"secretRef": {"name": "carryover-cloud-credentials"}} in container["envFrom"]


def test_the_admin_token_only_ever_comes_from_a_secret(scenarios: Run, tmp_path: Path) -> None:
    default, options = scenarios.manifests("default"), scenarios.manifests("options")
    for workload in _by_kind(default, "StatefulSet").values():
        assert "CARRYOVER_ADMIN_TOKEN" not in _worker_env(workload)  # none configured: admin views stay off
    for workload in _by_kind(options, "StatefulSet").values():
        assert _worker_env(workload)["CARRYOVER_ADMIN_TOKEN"] == {
            "name": "CARRYOVER_ADMIN_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "carryover-admin", "key": "token"}},
        }

    token = "s3cret-admin-token-for-the-test"
    values = tmp_path / "token-values.yaml"
    values.write_text(yaml.safe_dump({"adminToken": {"value": token}}))
    run = validate(tmp_path / "out", "--values", str(values), "--kube-versions", "1.27.0")
    assert run.returncode == 0, run.output
    docs = run.manifests("token")
    (secret,) = _by_kind(docs, "Secret").values()
    assert base64.b64decode(secret["data"]["admin-token"]).decode() == token
    for doc in docs:
        if doc["kind"] != "Secret":
            assert token not in yaml.safe_dump(doc), (
                f"{doc['kind']}/{doc['metadata']['name']} holds the token"
            )
    for workload in [*_by_kind(docs, "StatefulSet").values(), *_by_kind(docs, "Deployment").values()]:
        ref = _worker_env(workload)["CARRYOVER_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": secret["metadata"]["name"], "key": "admin-token"}


def test_an_admin_token_in_the_config_map_is_refused(tmp_path: Path) -> None:
    values = tmp_path / "leak-values.yaml"
    values.write_text(yaml.safe_dump({"config": {"CARRYOVER_ADMIN_TOKEN": "oops"}}))
    run = validate(tmp_path / "out", "--values", str(values), "--kube-versions", "1.27.0")
    assert run.returncode != 0
    assert "lint: FAILED" in run.output
    assert "values don't meet the specifications of the schema" in run.output
    assert "CARRYOVER_ADMIN_TOKEN" in run.output


def test_a_broken_template_fails_lint(tmp_path: Path) -> None:
    chart = tmp_path / "carryover"
    shutil.copytree(CHART, chart)
    with (chart / "templates" / "configmap.yaml").open("a") as template:
        template.write("  broken: {{ .Values.config | toYaml \n")  # unclosed action
    run = validate(
        tmp_path / "out", "--chart", str(chart), "--values", str(SCENARIOS / "default-values.yaml")
    )
    assert run.returncode != 0
    assert "lint: FAILED" in run.output
    assert "[ERROR] templates/" in run.output
    assert "configmap.yaml" in run.output  # the render step names the template and the parse error


def test_the_chart_readme_lists_every_value() -> None:
    readme = (CHART / "README.md").read_text()
    documented = set(re.findall(r"^\| `([^`]+)` \|", readme, flags=re.MULTILINE))

    def leaves(node: Any, path: tuple[str, ...]) -> list[tuple[str, ...]]:
        if isinstance(node, dict) and node:
            return [leaf for key, value in node.items() for leaf in leaves(value, (*path, key))]
        return [path]

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    missing = []
    for leaf in leaves(values, ()):
        path = tuple("<g>" if i == 1 and leaf[0] == "workers" else part for i, part in enumerate(leaf))
        prefixes = [".".join(path[:n]) for n in range(len(path), 0, -1)]
        # the nearest documented prefix; the `workers` row alone does not document a group's keys
        if not any(p in documented for p in prefixes if p != "workers"):
            missing.append(".".join(path))
    assert not missing, f"values not in helm/carryover/README.md: {sorted(set(missing))}"
