"""Who may import whom (ARCHITECTURE.md, "Layers"), checked over every import of a project
module, function-local ones included, so a circle cannot hide inside a function body.

Each module belongs to one layer; a module may import its own layer and the layers below it,
with the narrower rules listed in ``EXTRA_RULES``. A new module must be given a layer here.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("schemas", "model", "training", "stream", "bench", "tests")

# (layer, module prefixes), lowest first. A prefix matches the module and its submodules;
# one that starts with "=" matches that module alone.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("contracts", ("schemas", "stream.config", "=stream")),
    ("model", ("model",)),
    (
        "pure",
        (
            "stream.events",
            "stream.validation",
            "stream.schema_check",
            "stream.keywords",
            "stream.segmenter",
            "stream.rows",
            "stream.dlq",
            "stream.reputation.rules",
            "stream.reputation.alerts",
            "stream.reputation.detector",
            "stream.reputation.incidents",
            "stream.reputation.lexicon",
            "stream.reputation.grid",
            "stream.serving.compare",
            "stream.monitoring.rules",
            "stream.monitoring.alerts",
            "stream.access",
            "stream.health",
        ),
    ),
    (
        "adapters",
        ("stream.kafka", "stream.sink", "stream.metrics", "stream.data_dir", "stream.heap"),
    ),
    ("training", ("training",)),
    (
        "features",
        (
            "stream.pipeline",
            "stream.reputation",
            "stream.replay",
            "stream.serving",
            "stream.monitoring",
            "stream.dashboard",
        ),
    ),
    (
        "worker",
        (
            "stream.context",
            "stream.app",
            "stream.faust_extensions",
            "stream.startup",
            "stream.agents",
            "stream.web",
            "stream.predict",
            "stream.worker",
        ),
    ),
    ("dev", ("stream.local",)),
    (
        "cli",
        (
            "stream.cli",
            "stream.worker_cli",
            "stream.demo_cli",
            "stream.local.cli",
            "stream.sink.cli",
            "stream.reputation.cli",
            "stream.serving.cli",
        ),
    ),
    ("bench", ("bench",)),
    ("tests", ("tests",)),
)

# Narrower rules: a module matching the key (and in the key's layer: a CLI module inside an
# area is not bound by the area's rule) may import only modules matching one of these.
EXTRA_RULES: dict[str, tuple[str, ...]] = {
    # Training trains and packages models; it never reaches into the worker.
    "training": ("training", "model", "schemas", "stream.config", "stream.sink"),
    # Pure transforms: no adapter, and of the model only its text cleaning and labels.
    "stream.events": ("stream.events", "model.labels", "schemas"),
    "stream.validation": (
        "stream.events",
        "model.text",
        "schemas",
        "stream.config",
        "stream.schema_check",
    ),
    "stream.schema_check": (),
    "stream.keywords": ("stream.segmenter",),
    "stream.segmenter": (),
    "stream.rows": ("stream.events", "stream.keywords", "stream.validation", "model.labels"),
    "stream.dlq": ("stream.events", "stream.validation"),
    "stream.reputation.rules": ("stream.config", "stream.events", "stream.reputation.detector"),
    "stream.reputation.alerts": ("stream.reputation.rules", "stream.events", "schemas"),
    # Alert statistics (numpy, scipy), the incident lifecycle, lexicon learning, minute grids.
    "stream.reputation.detector": (),
    "stream.reputation.incidents": ("stream.reputation.rules",),
    "stream.reputation.lexicon": (),
    "stream.reputation.grid": ("stream.reputation.rules",),
    # Model-health rules read traffic profiles (model.profile: standard library only).
    "stream.monitoring.rules": ("stream.config", "model.labels", "model.profile"),
    # ... and their events go through the alert engine's incident tracker.
    "stream.monitoring.alerts": (
        "stream.monitoring.rules",
        "stream.events",
        "schemas",
        "stream.reputation.rules",
        "stream.reputation.incidents",
    ),
    "stream.serving.compare": ("model.labels",),
    # Web access (bearer token, loopback bind) and health decisions from plain figures.
    "stream.access": ("stream.config",),
    "stream.health": (),
    # The ClickHouse and Kafka seams know configuration and their own modules only.
    "stream.sink": ("stream.sink", "stream.config", "stream.events"),
    "stream.kafka": ("stream.config",),
    "stream.metrics": (),
    # Dev tooling (local broker and server, the worker as a child process).
    "stream.local": ("stream.local", "stream.config", "stream.kafka", "stream.metrics"),
    # The broker-restart control experiment measures Tansu alone: no project code in it.
    "bench.broker_restart": (),
}

# Who may import the dev tooling: the CLI's dev commands, tests and bench.
DEV_TOOLING = "stream.local"
DEV_USERS = ("stream.local", "stream.demo_cli", "tests", "bench")

# Third-party modules that do I/O; pure transforms must not import them.
IO_MODULES = (
    "confluent_kafka",
    "aiokafka",
    "faust",
    "clickhouse_driver",
    "chdb",
    "prometheus_client",
    "socket",
    "subprocess",
    "urllib",
    "torch",
    "onnxruntime",
)
PURE_LAYER = "pure"


def _matches(module: str, prefix: str) -> bool:
    if prefix.startswith("="):
        return module == prefix[1:]
    return module == prefix or module.startswith(prefix + ".")


@cache
def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def layer_of(module: str) -> tuple[int, str]:
    """The module's layer (rank, name): the longest matching prefix wins."""
    best: tuple[int, int, str] | None = None
    for rank, (name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if _matches(module, prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), rank, name)
    if best is None:
        raise LookupError(f"{module} has no layer: add it to LAYERS in {__file__}")
    return best[1], best[2]


def extra_rule(module: str) -> tuple[str, ...] | None:
    layer = layer_of(module)
    keys = [key for key in EXTRA_RULES if _matches(module, key) and layer_of(key) == layer]
    return EXTRA_RULES[max(keys, key=len)] if keys else None


def imports_of(module: str) -> Iterator[tuple[str, int]]:
    """(imported name, line) of every import in the module, at any depth."""
    path = project_modules()[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno


def project_target(name: str) -> str | None:
    """The project module an imported name refers to, if any."""
    modules = project_modules()
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module in project_modules():
        targets = {project_target(name) for name, _ in imports_of(module)}
        graph[module] = {t for t in targets if t and t != module}
    return graph


def test_every_module_has_a_layer() -> None:
    missing = []
    for module in project_modules():
        try:
            layer_of(module)
        except LookupError:
            missing.append(module)
    assert missing == []


def test_every_arrow_points_down() -> None:
    wrong = []
    for module in project_modules():
        rank, layer = layer_of(module)
        allowed = extra_rule(module)
        for name, line in imports_of(module):
            target = project_target(name)
            if target is None or target == module:
                continue
            target_rank, target_layer = layer_of(target)
            where = f"{module}:{line} -> {target}"
            if target_rank > rank:
                wrong.append(f"{where} (up: {layer} imports {target_layer})")
            elif allowed is not None and not any(_matches(target, p) for p in allowed):
                wrong.append(f"{where} (not among {module}'s allowed imports)")
            elif _matches(target, DEV_TOOLING) and not any(
                _matches(module, user) for user in DEV_USERS
            ):
                wrong.append(f"{where} (dev tooling outside dev commands, tests and bench)")
    assert wrong == [], "\n".join(wrong)


def test_pure_transforms_import_no_io() -> None:
    wrong = [
        f"{module}:{line} imports {name}"
        for module in project_modules()
        if layer_of(module)[1] == PURE_LAYER
        for name, line in imports_of(module)
        if any(_matches(name, io) for io in IO_MODULES)
    ]
    assert wrong == []


def test_no_import_cycles() -> None:
    cycles = strongly_connected(import_graph())
    assert [sorted(c) for c in cycles if len(c) > 1] == []


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the graph's strongly connected components."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph.get(node, ()):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(component)

    for node in graph:
        if node not in index:
            visit(node)
    return components


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ],
)
def test_cycle_finder_finds_circles(graph: dict[str, set[str]], expected: list) -> None:
    found = [sorted(c) for c in strongly_connected(graph) if len(c) > 1]
    assert found == expected
