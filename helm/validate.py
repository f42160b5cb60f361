"""Validate the Helm chart without a helm binary or a cluster: lint, render, schema-check, chart checks.

Run it with any Python 3 (``make helm`` does): it creates the tool environment ``.venv-helm`` when it is
missing or its pins changed (``helm/requirements.txt``, installed with ``--ignore-requires-python``), then
re-runs itself there.  For each values scenario (``helm/ci/*.yaml`` by default):

1. **Lint** with Helm v4's own linter (``helm-sdkpy``'s ``Lint``), strict: a warning fails too.  Lint reads
   the chart's ``values.yaml``, so a scenario is linted on a copy of the chart whose ``values.yaml`` is the
   scenario merged over the defaults the way Helm merges values.
2. **Render** with Helm v4's own install action, run against a fake Kubernetes API server on 127.0.0.1
   that this script starts: it serves ``/version`` and the discovery documents of a real Kubernetes
   version (every built-in kind of that version, from kubernetes-validate's schemas, plus the CRDs listed
   in ``CRDS``), answers every read with 404 / an empty list, and accepts every write.  Helm therefore does
   what ``helm install`` does: checks ``kubeVersion``, validates the values against ``values.schema.json``,
   renders, maps every object to an API the cluster serves, and sends it; the manifest comes back in the
   release.  Nothing is scheduled or defaulted: no controller, admission or server-side validation runs.
3. **Schema-check** every rendered object with ``kubernetes-validate`` (strict: unknown fields fail)
   against each Kubernetes version rendered for (the chart's minimum and kubernetes-validate's newest).
   Kinds without a built-in schema (the ServiceMonitor) get the structural checks in ``chart_checks``.
4. **Chart checks**: what a schema cannot see (selectors that select, the advertised web host, probes,
   grace period, where the admin token comes from, references between objects).

Exit status 0 when everything passes; the rendered manifests and a summary go to ``--out`` when given.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HELM_DIR = Path(__file__).resolve().parent
REPO = HELM_DIR.parent
CHART = HELM_DIR / "carryover"
SCENARIOS = HELM_DIR / "ci"
REQUIREMENTS = HELM_DIR / "requirements.txt"
TOOL_VENV = Path(os.environ.get("HELM_VENV", REPO / ".venv-helm")).resolve()
STAMP = TOOL_VENV / ".requirements.sha256"

RELEASE = "carryover"
NAMESPACE = "carryover"
# Custom resources the chart may render, served by the fake API server as if their CRDs were installed.
CRDS = {("monitoring.coreos.com", "v1", "ServiceMonitor")}
# Built-in kinds that are not namespaced (the rest are): only changes the URLs Helm uses.
CLUSTER_SCOPED = {
    "APIService",
    "CertificateSigningRequest",
    "ClusterRole",
    "ClusterRoleBinding",
    "ClusterTrustBundle",
    "ComponentStatus",
    "CSIDriver",
    "CSINode",
    "CustomResourceDefinition",
    "DeviceClass",
    "FlowSchema",
    "IngressClass",
    "IPAddress",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "MutatingWebhookConfiguration",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PriorityClass",
    "PriorityLevelConfiguration",
    "ResourceSlice",
    "RuntimeClass",
    "ServiceCIDR",
    "StorageClass",
    "StorageVersion",
    "StorageVersionMigration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
    "VolumeAttributesClass",
}
AGGREGATED = "g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}


# --- the tool environment -------------------------------------------------------------------------------


def _requirements_digest() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def ensure_tool_venv() -> Path:
    """Create or refresh .venv-helm (pinned, --ignore-requires-python); return its python."""
    python = TOOL_VENV / "bin" / "python"
    lock_path = (
        Path(tempfile.gettempdir()) / f"carryover-venv-helm-{hashlib.sha1(bytes(TOOL_VENV)).hexdigest()}"
    )
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs at once (make helm beside make test) install once
        if python.exists() and STAMP.exists() and STAMP.read_text().strip() == _requirements_digest():
            return python
        print(f"creating the tool environment {TOOL_VENV} from {REQUIREMENTS.relative_to(REPO)}", flush=True)
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(TOOL_VENV)], check=True)  # noqa: S603
        pip = [str(python), "-m", "pip", "--disable-pip-version-check", "--quiet"]
        subprocess.run(  # noqa: S603
            [*pip, "install", "--ignore-requires-python", "--no-deps", "-r", str(REQUIREMENTS)], check=True
        )
        subprocess.run([*pip, "check"], check=True)  # noqa: S603
        STAMP.write_text(_requirements_digest() + "\n")
        return python


def in_tool_venv() -> bool:
    return Path(sys.prefix).resolve() == TOOL_VENV


# --- values ---------------------------------------------------------------------------------------------


def coalesce(base: Any, override: Any) -> Any:
    """Helm's merge of a values file over the chart's: maps merge, anything else replaces, null deletes."""
    if not (isinstance(base, dict) and isinstance(override, dict)):
        return copy.deepcopy(override)
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = coalesce(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# --- a fake Kubernetes API server -----------------------------------------------------------------------


def builtin_kinds(kube_version: str) -> set[tuple[str, str, str]]:
    """(group, version, kind) of every built-in object kind of a Kubernetes version (kubernetes-validate)."""
    import importlib.resources

    schemas = importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema"
    definitions = json.loads((schemas / f"v{kube_version}-local-strict" / "_definitions.json").read_text())
    kinds = set()
    for definition in definitions["$defs"].values():
        gvks = definition.get("x-kubernetes-group-version-kind", [])
        metadata = definition.get("properties", {}).get("metadata", {})
        if len(gvks) == 1 and "ObjectMeta" in json.dumps(metadata) and not gvks[0]["kind"].endswith("List"):
            kinds.add((gvks[0]["group"], gvks[0]["version"], gvks[0]["kind"]))
    return kinds


def _plural(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith("y") and not lower.endswith("ey"):
        return lower[:-1] + "ies"
    return lower + ("es" if lower.endswith(("s", "x", "ch")) else "s")


class FakeApiServer:
    """Discovery of one Kubernetes version on 127.0.0.1; reads find nothing, writes are accepted and kept."""

    def __init__(self, kube_version: str, kinds: set[tuple[str, str, str]]) -> None:
        self.kube_version = kube_version
        self.created: list[dict[str, Any]] = []
        groups: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for group, version, kind in sorted(kinds):
            groups.setdefault(group, {}).setdefault(version, []).append(
                {
                    "name": _plural(kind),
                    "singularName": kind.lower(),
                    "namespaced": kind not in CLUSTER_SCOPED,
                    "kind": kind,
                    "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                }
            )
        self.resource_lists = {
            ("/api/" if group == "" else f"/apis/{group}/") + version: {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": version if group == "" else f"{group}/{version}",
                "resources": resources,
            }
            for group, versions in groups.items()
            for version, resources in versions.items()
        }
        self.api_groups = {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": group,
                    "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in sorted(versions)],
                    "preferredVersion": {
                        "groupVersion": f"{group}/{max(versions)}",
                        "version": max(versions),
                    },
                }
                for group, versions in sorted(groups.items())
                if group
            ],
        }
        self.core_versions = sorted(groups.get("", {}))
        # Aggregated discovery (apidiscovery.k8s.io/v2, GA in 1.30): all resources in two answers, which
        # spares client-go one rate-limited request per group version.
        self.aggregated = {
            root: {
                "kind": "APIGroupDiscoveryList",
                "apiVersion": "apidiscovery.k8s.io/v2",
                "metadata": {},
                "items": [
                    {
                        "metadata": {"name": group},
                        "versions": [
                            {
                                "version": version,
                                "freshness": "Current",
                                "resources": [
                                    {
                                        "resource": r["name"],
                                        "singularResource": r["singularName"],
                                        "responseKind": {
                                            "group": group,
                                            "version": version,
                                            "kind": r["kind"],
                                        },
                                        "scope": "Namespaced" if r["namespaced"] else "Cluster",
                                        "verbs": r["verbs"],
                                    }
                                    for r in resources
                                ],
                            }
                            for version, resources in sorted(versions.items(), reverse=True)
                        ],
                    }
                    for group, versions in sorted(groups.items())
                    if (group == "") == (root == "/api")
                ],
            }
            for root in ("/api", "/apis")
        }
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, document: dict[str, Any]) -> None:
                self._reply(status, json.dumps(document).encode())

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                major, minor = fake.kube_version.split(".")[:2]
                if path == "/version":
                    return self._json(
                        200, {"major": major, "minor": minor, "gitVersion": f"v{fake.kube_version}"}
                    )
                if path in fake.aggregated and AGGREGATED in self.headers.get("Accept", ""):
                    body = json.dumps(fake.aggregated[path]).encode()
                    return self._reply(200, body, f"application/json;{AGGREGATED}")
                if path == "/api":
                    return self._json(200, {"kind": "APIVersions", "versions": fake.core_versions})
                if path == "/apis":
                    return self._json(200, fake.api_groups)
                if path in fake.resource_lists:
                    return self._json(200, fake.resource_lists[path])
                if "labelSelector" in query or path.rstrip("/").split("/")[-1] in {
                    r["name"] for rl in fake.resource_lists.values() for r in rl["resources"]
                }:
                    return self._json(200, {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": []})
                return self._json(
                    404,
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "reason": "NotFound",
                        "code": 404,
                    },
                )

            def _accept(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                content_type = self.headers.get("Content-Type", "application/json")
                if content_type.startswith("application/json"):
                    document = json.loads(body)
                    if not document.get("metadata", {}).get("labels", {}).get("owner") == "helm":
                        fake.created.append(document)
                # The release record (a Secret) comes as protobuf: echoing the bytes is a valid answer.
                self._reply(201, body, content_type)

            do_POST = do_PUT = do_PATCH = _accept  # noqa: N815

        return Handler

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- lint and render with helm-sdkpy --------------------------------------------------------------------


@contextlib.contextmanager
def isolated_helm_env(workdir: Path, kubeconfig: Path | None = None) -> Iterator[None]:
    """Helm's directories, kubeconfig and storage pinned to workdir: no user config, no real cluster."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("HELM_") or name in {
            "KUBECONFIG",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "http_proxy",
            "https_proxy",
        }:
            del os.environ[name]
    os.environ.update(
        HELM_CACHE_HOME=str(workdir / "cache"),
        HELM_CONFIG_HOME=str(workdir / "config"),
        HELM_DATA_HOME=str(workdir / "data"),
        HELM_DRIVER="secret",
        NO_PROXY="127.0.0.1,localhost",
        KUBECONFIG=str(kubeconfig or workdir / "no-kubeconfig"),
    )
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def lint(chart: Path, values: dict[str, Any] | None, workdir: Path) -> tuple[list[str], bool]:
    """Helm lint (strict); values: the merged values to lint with, on a copy of the chart."""
    import asyncio

    import helm_sdkpy
    import yaml

    target = chart
    if values is not None:
        target = workdir / "lint" / chart.name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(chart, target)
        (target / "values.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    with isolated_helm_env(workdir):
        config = helm_sdkpy.Configuration(namespace=NAMESPACE)
        result = asyncio.run(helm_sdkpy.Lint(config).run(str(target)))
    messages = []
    failed = bool(result.get("Errors"))
    for message in result.get("Messages") or []:
        severity = SEVERITY.get(message.get("Severity"), str(message.get("Severity")))
        text = message.get("Err")
        # helm-sdkpy serialises Go errors as {}: the text is lost, only severity and path remain.
        detail = text if isinstance(text, str) and text else "(helm-sdkpy passes no message text)"
        messages.append(f"[{severity}] {message.get('Path')}: {detail}")
        failed = failed or message.get("Severity", 0) >= 2
    return messages, failed


def render(chart: Path, values: dict[str, Any], kube_version: str, workdir: Path) -> tuple[str, list[dict]]:
    """helm install against the fake API server: (the release's manifest, the objects Helm sent)."""
    import asyncio

    import helm_sdkpy

    kinds = builtin_kinds(kube_version) | CRDS
    with FakeApiServer(kube_version, kinds) as api:
        kubeconfig = workdir / f"kubeconfig-{kube_version}"
        kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "fake", "cluster": {"server": api.url}}],
                    "users": [{"name": "fake", "user": {"token": "fake"}}],
                    "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                    "current-context": "fake",
                }
            )
        )
        with isolated_helm_env(workdir, kubeconfig):
            config = helm_sdkpy.Configuration(namespace=NAMESPACE, kubeconfig=str(kubeconfig))
            release = asyncio.run(
                helm_sdkpy.Install(config).run(
                    RELEASE, str(chart), values=values or None, wait=False, timeout=60
                )
            )
        return release["manifest"], api.created


# --- checks on the rendered objects ---------------------------------------------------------------------


def schema_check(docs: list[dict], kube_version: str) -> tuple[list[str], list[str]]:
    """kubernetes-validate, strict: (errors, kinds without a schema)."""
    import kubernetes_validate

    errors, unchecked = [], []
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            kubernetes_validate.validate(doc, kube_version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            unchecked.append(name)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            errors.append(f"{name} @ {kube_version}: {where}: {exc.message}")
    return errors, unchecked


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def chart_checks(docs: list[dict], values: dict[str, Any]) -> tuple[list[str], list[str]]:
    """What a schema does not see: (passed checks, failures)."""
    passed: list[str] = []
    failed: list[str] = []

    def check(ok: bool, what: str) -> None:
        (passed if ok else failed).append(what)

    by_kind: dict[str, list[dict]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    workloads = by_kind.get("StatefulSet", []) + by_kind.get("Deployment", [])
    services = by_kind.get("Service", [])
    grace_extra = int(values["terminationGraceExtraSeconds"])
    admin = values["adminToken"]
    existing_secrets = {
        s for s in (admin.get("existingSecret"), values["secretEnv"].get("existingSecret")) if s
    }

    for cm in by_kind.get("ConfigMap", []):
        check(
            "CARRYOVER_ADMIN_TOKEN" not in cm.get("data", {}),
            f"ConfigMap/{cm['metadata']['name']}: no admin token",
        )
    for wl in workloads:
        kind, name = wl["kind"], wl["metadata"]["name"]
        spec, pod = wl["spec"], wl["spec"]["template"]
        labels = pod["metadata"].get("labels", {})
        check(_selects(spec["selector"]["matchLabels"], labels), f"{kind}/{name}: selector matches its pods")
        (container,) = pod["spec"]["containers"]
        env = _env(container)
        roles = set(env["CARRYOVER_ROLES"]["value"].split(","))
        data_dir = env["CARRYOVER_DATA_DIR"]["value"]
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        if roles & {"normalize", "state"}:
            check(kind == "StatefulSet", f"{kind}/{name}: roles {sorted(roles)} hold tables: a StatefulSet")
            check(env["CARRYOVER_STORE"]["value"] == "rocksdb://", f"{kind}/{name}: tables on rocksdb://")
        else:
            check(kind == "Deployment", f"{kind}/{name}: ingestion only: a Deployment")
        if kind == "StatefulSet":
            claims = {c["metadata"]["name"] for c in spec.get("volumeClaimTemplates", [])}
            check(
                mounts.get(data_dir) in claims,
                f"{kind}/{name}: a PVC mounted at CARRYOVER_DATA_DIR {data_dir}",
            )
            headless = [s for s in services if s["metadata"]["name"] == spec["serviceName"]]
            check(
                len(headless) == 1
                and headless[0]["spec"].get("clusterIP") == "None"
                and _selects(headless[0]["spec"]["selector"], labels),
                f"{kind}/{name}: serviceName {spec['serviceName']} is a headless Service selecting its pods",
            )
            order = [e["name"] for e in container["env"]]
            expected = f"$(POD_NAME).{spec['serviceName']}.$(POD_NAMESPACE).svc.{values['clusterDomain']}"
            check(
                env["CARRYOVER_WEB_HOST"].get("value") == expected
                and env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
                and env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
                and order.index("POD_NAME") < order.index("CARRYOVER_WEB_HOST")
                and order.index("POD_NAMESPACE") < order.index("CARRYOVER_WEB_HOST"),
                f"{kind}/{name}: advertises {expected} (downward API)",
            )
        check(env.get("CARRYOVER_WEB_BIND", {}).get("value") == "0.0.0.0", f"{kind}/{name}: binds 0.0.0.0")
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        check(
            ports.get("web") == int(env["CARRYOVER_WEB_PORT"]["value"]), f"{kind}/{name}: port web = WEB_PORT"
        )
        probes = {
            probe: (container.get(probe) or {}).get("httpGet", {})
            for probe in ("startupProbe", "livenessProbe", "readinessProbe")
        }
        check(
            probes["startupProbe"].get("path") == "/healthz"
            and probes["livenessProbe"].get("path") == "/healthz"
            and probes["readinessProbe"].get("path") == "/readyz"
            and all(p.get("port") == "web" for p in probes.values()),
            f"{kind}/{name}: startup and liveness /healthz, readiness /readyz on port web",
        )
        grace = float(env["CARRYOVER_SHUTDOWN_GRACE_SECONDS"]["value"])
        check(
            pod["spec"].get("terminationGracePeriodSeconds") == int(-(-grace // 1)) + grace_extra,
            f"{kind}/{name}: terminationGracePeriodSeconds = CARRYOVER_SHUTDOWN_GRACE_SECONDS {grace:g}"
            f" + {grace_extra}",
        )
        check(bool(container.get("resources", {}).get("requests")), f"{kind}/{name}: resource requests")
        token = env.get("CARRYOVER_ADMIN_TOKEN")
        if admin.get("existingSecret") or admin.get("value"):
            ref = (token or {}).get("valueFrom", {}).get("secretKeyRef", {})
            check(
                token is not None
                and "value" not in token
                and ref.get("key") == admin["key"]
                and (ref.get("name") in existing_secrets or ("Secret", ref.get("name")) in names),
                f"{kind}/{name}: CARRYOVER_ADMIN_TOKEN from Secret {ref.get('name')} key {ref.get('key')}",
            )
        else:
            check(token is None, f"{kind}/{name}: no admin token configured, none set")
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                ref_name = source["configMapRef"]["name"]
                check(
                    ("ConfigMap", ref_name) in names, f"{kind}/{name}: envFrom ConfigMap {ref_name} rendered"
                )
            if "secretRef" in source:
                ref_name = source["secretRef"]["name"]
                check(
                    ("Secret", ref_name) in names or ref_name in existing_secrets,
                    f"{kind}/{name}: envFrom Secret {ref_name} rendered or named in values",
                )
        pdbs = [
            p
            for p in by_kind.get("PodDisruptionBudget", [])
            if _selects(p["spec"]["selector"]["matchLabels"], labels)
        ]
        check(len(pdbs) == 1, f"{kind}/{name}: one PodDisruptionBudget")
    for pdb in by_kind.get("PodDisruptionBudget", []):
        selected = [
            w
            for w in workloads
            if _selects(pdb["spec"]["selector"]["matchLabels"], w["spec"]["template"]["metadata"]["labels"])
        ]
        check(len(selected) == 1, f"PodDisruptionBudget/{pdb['metadata']['name']}: selects one worker group")
    for svc in services:
        selected = [
            w
            for w in workloads
            if _selects(svc["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])
        ]
        check(bool(selected), f"Service/{svc['metadata']['name']}: selects worker pods")
    for monitor in by_kind.get("ServiceMonitor", []):
        spec = monitor["spec"]
        targets = [
            s for s in services if _selects(spec["selector"]["matchLabels"], s["metadata"].get("labels", {}))
        ]
        endpoints = spec.get("endpoints", [])
        check(
            bool(targets)
            and all(any(p.get("name") == "web" for p in s["spec"]["ports"]) for s in targets)
            and all(e.get("port") == "web" and e.get("path") == "/metrics" for e in endpoints)
            and bool(endpoints),
            f"ServiceMonitor/{monitor['metadata']['name']}: /metrics on port web of {len(targets)} Services",
        )
        pods = [
            w
            for w in workloads
            if any(
                _selects(s["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"]) for s in targets
            )
        ]
        check(
            len(pods) == len(workloads),
            f"ServiceMonitor/{monitor['metadata']['name']}: covers every worker group",
        )
    return passed, failed


# --- main -----------------------------------------------------------------------------------------------


def run_scenario(
    chart: Path, scenario: Path, kube_versions: list[str], workdir: Path, out: Path | None
) -> dict:
    import yaml

    name = scenario.name.removesuffix(".yaml").removesuffix("-values")
    overrides = yaml.safe_load(scenario.read_text()) or {}
    defaults = yaml.safe_load((chart / "values.yaml").read_text()) or {}
    merged = coalesce(defaults, overrides)
    summary: dict[str, Any] = {"scenario": name, "values": str(scenario), "ok": False}
    print(f"== scenario {name} ({scenario})")

    messages, lint_failed = lint(chart, merged if overrides else None, workdir)
    summary["lint"] = {"ok": not lint_failed, "messages": messages}
    print(f"lint: {'FAILED' if lint_failed else 'ok'}" + "".join(f"\n  {m}" for m in messages))

    renders = {}
    for version in kube_versions:
        try:
            manifest, created = render(chart, overrides, version, workdir)
        except Exception as exc:  # helm-sdkpy raises its own errors: their text is what a user needs
            print(f"render @ Kubernetes {version}: FAILED\n  {type(exc).__name__}: {exc}")
            summary["render_error"] = f"{type(exc).__name__}: {exc}"
            return summary
        renders[version] = (manifest, created)
    manifest, created = renders[kube_versions[0]]
    docs = [d for d in yaml.safe_load_all(manifest) if d]
    kinds = Counter(d["kind"] for d in docs)
    summary["kinds"] = dict(sorted(kinds.items()))
    summary["objects"] = [f"{d['kind']}/{d['metadata']['name']}" for d in docs]
    print(
        f"render @ Kubernetes {', '.join(kube_versions)}: {len(docs)} objects, "
        + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
    )
    ok = not lint_failed
    if sorted(f"{d['kind']}/{d['metadata']['name']}" for d in created) != sorted(summary["objects"]):
        print("  FAILED: the objects Helm sent differ from its manifest")
        ok = False
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.yaml").write_text(manifest)
    summary["schema"] = {}
    for version in kube_versions:
        version_docs = [d for d in yaml.safe_load_all(renders[version][0]) if d]
        errors, unchecked = schema_check(version_docs, version)
        summary["schema"][version] = {"errors": errors, "no_schema": unchecked}
        valid = len(version_docs) - len(unchecked) - len(errors)
        print(
            f"kubernetes-validate {version} (strict): {valid} valid, {len(errors)} invalid"
            + (f", no schema: {', '.join(unchecked)}" if unchecked else "")
        )
        for error in errors:
            print(f"  {error}")
        ok = ok and not errors
    passed, failed = chart_checks(docs, merged)
    summary["checks"] = {"passed": passed, "failed": failed}
    total = len(passed) + len(failed)
    print(f"chart checks: {len(failed)} of {total} FAILED" if failed else f"chart checks: all {total} hold")
    for failure in failed:
        print(f"  FAILED: {failure}")
    summary["ok"] = ok and not failed
    return summary


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chart", type=Path, default=CHART)
    parser.add_argument(
        "--values", type=Path, action="append", help="scenario values file (default: helm/ci/*)"
    )
    parser.add_argument(
        "--kube-versions", help="comma separated (default: the chart's minimum and the newest)"
    )
    parser.add_argument("--out", type=Path, help="write <scenario>.yaml manifests and summary.json here")
    args = parser.parse_args(argv)

    if not in_tool_venv():
        python = ensure_tool_venv()
        os.execv(python, [str(python), str(Path(__file__).resolve()), *argv])  # noqa: S606

    from importlib import metadata

    import helm_sdkpy
    import kubernetes_validate
    import yaml

    chart = args.chart.resolve()
    chart_meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    if args.kube_versions:
        kube_versions = args.kube_versions.split(",")
    else:
        minimum = re.search(r"(\d+\.\d+)", chart_meta.get("kubeVersion", "")) or re.search(
            r"(\d+\.\d+)", "1.27"
        )
        kube_versions = [f"{minimum.group(1)}.0", kubernetes_validate.latest_version()]
    scenarios = args.values or sorted(SCENARIOS.glob("*.yaml"))
    print(
        f"chart {chart_meta['name']} {chart_meta['version']} ({chart}); {helm_sdkpy.get_version()} "
        f"(Helm v4 library); kubernetes-validate {metadata.version('kubernetes-validate')}"
    )
    with tempfile.TemporaryDirectory(prefix="carryover-helm-") as tmp:
        summaries = [run_scenario(chart, s.resolve(), kube_versions, Path(tmp), args.out) for s in scenarios]
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "summary.json").write_text(json.dumps(summaries, indent=2) + "\n")
    bad = [s["scenario"] for s in summaries if not s["ok"]]
    if bad:
        print(f"chart validation FAILED in scenario(s): {', '.join(bad)}")
    else:
        print(f"chart validation OK: every check of {len(summaries)} scenario(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
