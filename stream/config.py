"""Configuration in frozen, typed sections, and the one resolver that fills them.

Values come from, in rising priority: field defaults, ``REVIEWPULSE_*`` environment
variables (e.g. ``REVIEWPULSE_KAFKA_BROKER``), and command-line flags (``--kafka-broker``).
A field's name is its flag and its variable: ``kafka_broker`` is ``--kafka-broker`` and
``REVIEWPULSE_KAFKA_BROKER``. Names are unique across sections, so a flat name always finds its
section. Each command adds the flags of the sections it reads (``add_config_arguments``) and
resolves them once at the edge (``resolve``); each layer then receives only its section.
Nothing else reads the environment. Field descriptions double as ``--help`` and README text.

Pure: pydantic only. Every area may import this module (``training`` included).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal, Self, TypeVar, get_type_hints

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "REVIEWPULSE_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
_FLAG_DEST = "config_"


class ConfigSection(BaseSettings):
    """A frozen group of settings read from ``REVIEWPULSE_*`` variables."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")


Section = TypeVar("Section", bound=ConfigSection)


class KafkaConfig(ConfigSection):
    """The broker, the topics, and the Faust app that consumes them."""

    kafka_broker: str = Field(
        "127.0.0.1:9092", description="Bootstrap servers, host:port[,host:port]."
    )
    input_topic: str = Field("review.created", description="Topic of incoming review events.")
    output_topic: str = Field("review.sentiment", description="Topic of sentiment events.")
    dlq_topic: str = Field("review.dead-letter", description="Topic of dead-lettered input.")
    alerts_topic: str = Field("review.alerts", description="Topic of quality alerts.")
    topic_partitions: int = Field(4, ge=1, description="Partitions for topics this app creates.")
    topic_replication_factor: int = Field(
        1,
        ge=1,
        description="Replication factor for topics this app creates (3 on a production Kafka "
        "cluster; 1 on a single broker).",
    )
    app_id: str = Field("reviewpulse", description="Faust app id; also the consumer group.")
    session_timeout_s: float = Field(
        10.0, gt=0, description="Consumer group session timeout (short: Tansu joins take ~half)."
    )
    heartbeat_interval_s: float = Field(1.0, gt=0, description="Consumer heartbeat interval.")
    commit_interval_s: float = Field(1.0, gt=0, description="How often acked offsets commit.")
    stream_buffer_maxsize: int = Field(
        4096,
        ge=1,
        description="Most fetched but unprocessed messages Faust buffers for the agent; with "
        "consumer-max-fetch-bytes it bounds the worker's memory under a backlog. At least "
        "batch-size: a smaller buffer fills while a batch waits to be taken, and Faust then "
        "stops fetching until it drains (1024: 12% fewer reviews/s at batch-size 4096).",
    )
    consumer_max_fetch_bytes: int = Field(
        1_048_576,
        ge=65536,
        description="Most bytes fetched per partition per request (a larger message still "
        "arrives alone); at least the broker's largest message.",
    )
    consumer_max_poll_records: int = Field(
        4096,
        ge=1,
        description="Most messages one consumer poll returns (each poll is a round trip to "
        "the consumer's thread; with the buffer, a batch arrives in one or two).",
    )
    consumer_fetch_max_wait_ms: int = Field(
        100,
        ge=1,
        le=60_000,
        description="Longest the broker may hold the worker's fetch waiting for records "
        "(Kafka's fetch.max.wait.ms; Faust fixes 1500). Tansu answers a waiting fetch late "
        "even when records arrive, adding up to half of this to a review's latency; Kafka "
        "answers once records are there, so this only sets how often an idle worker asks.",
    )
    producer_linger_ms: float = Field(
        0.0,
        ge=0,
        description="How long the worker's producer holds records to fill a request before "
        "sending. 0: at once (the worker sends a whole micro-batch, then awaits its acks).",
    )
    producer_compression: Literal["none", "gzip"] = Field(
        "none",
        description="Compression of the records the worker produces: none, or gzip (works "
        "with Tansu; costs worker CPU, pays off when the network to the brokers is the limit).",
    )
    lag_interval_s: float = Field(
        15.0,
        gt=0,
        description="How often the worker measures its consumer lag per assigned partition "
        "(reviewpulse_consumer_lag_messages / _seconds, and /health/ready's stall check).",
    )
    worker_data_dir: Path = Field(
        PROJECT_ROOT / ".data" / "worker",
        description="Faust's data directory (one subdirectory per app id). The worker keeps "
        "only its in-flight marker and dead-letter window there (ClickHouse holds the state) "
        "and locks it: one worker process per directory.",
    )

    @property
    def topics(self) -> list[str]:
        """Every topic the system reads or writes."""
        return [self.input_topic, self.output_topic, self.dlq_topic, self.alerts_topic]


class BatchConfig(ConfigSection):
    """Micro-batching, input limits, the dead-letter limit and sink retries."""

    batch_size: int = Field(
        4096,
        ge=1,
        description="Largest micro-batch the agent takes; the model sees it as one call, "
        "split into length-sorted forwards within model-token-budget. Batches close after "
        "batch-within-s, so this only matters under a backlog, where larger inserts cost "
        "ClickHouse far less per review (each insert writes a part per table and view).",
    )
    batch_within_s: float = Field(0.5, gt=0, description="Longest wait to fill a micro-batch.")
    max_inflight_batches: int = Field(
        3,
        ge=1,
        description="Most micro-batches taken and not yet acked: the next batch is taken and "
        "validated while earlier ones are classified, produced and inserted (3: one of each, "
        "so the model never waits for the loop to validate its next batch); when this many "
        "are in flight, the agent takes nothing more (backpressure). 1: one batch at a time.",
    )
    max_text_chars: int = Field(
        5000, ge=1, description="Reviews longer than this (after cleaning) are dead-lettered."
    )
    max_event_bytes: int = Field(
        262144, ge=1024, description="Input messages larger than this are dead-lettered unread."
    )
    keywords_limit: int = Field(10, ge=1, description="Most keywords kept per review.")
    keywords_executor: Literal["process", "thread"] = Field(
        "process",
        description="Where jieba segments and the complaint lexicon is searched: 'process' "
        "(a child process of the worker, started while it joins the group, replaced if it "
        "dies: off the worker's GIL, about 9% more reviews/s for about 120 MB more memory) or "
        "'thread' (a thread of the worker: less memory, no child process).",
    )
    model_executor: Literal["process", "thread"] = Field(
        "process",
        description="Where the stream's batches are classified: 'process' (a child process "
        "that loads the served model's directory again, started while the worker joins the "
        "group, replaced if it dies: off the worker's GIL, about 25% more reviews/s for "
        "about 230 MB more memory) or 'thread' (the worker's model thread: less memory, no "
        "child process). POST /predict always uses the worker's own copy.",
    )
    max_future_skew_s: float = Field(
        300.0,
        ge=0,
        description="Reviews dated more than this many seconds after the worker's clock are "
        "dead-lettered (bad_timestamp): they would sit in every 'last hour' until then.",
    )
    dlq_limit_ratio: float = Field(
        0.9,
        gt=0,
        le=1,
        description="Stop the worker when this share of the last dlq-limit-window events "
        "was dead-lettered: a sign of a bad deploy, not bad data.",
    )
    dlq_limit_window: int = Field(
        500,
        ge=1,
        description="Events in the DLQ-limit window; it is saved beside Faust's data, so a "
        "tripped limit stays tripped across restarts until that file is removed.",
    )
    poison_crash_limit: int = Field(
        3,
        ge=1,
        description="A message that was in hand this many times when the worker died "
        "(counted in ClickHouse's message_crashes) is dead-lettered as poison, unread.",
    )
    sink_retry_attempts: int = Field(
        16,
        ge=1,
        description="Attempts for a ClickHouse insert or produce before the worker stops "
        "(with the default delays, about a minute of patience).",
    )
    sink_retry_backoff_s: float = Field(0.5, gt=0, description="First retry delay (doubles).")
    sink_retry_max_backoff_s: float = Field(
        5.0,
        gt=0,
        description="Longest delay between attempts: once ClickHouse or the broker is back, "
        "batches flow again within this long.",
    )
    sink_timeout_s: float = Field(
        60.0, gt=0, description="Longest wait for one produce, insert or model attempt."
    )


class ModelConfig(ConfigSection):
    """Which model serves (or is trained on), and how its forward pass runs."""

    model_registry: Path = Field(
        PROJECT_ROOT / "model" / "registry", description="Model registry directory."
    )
    model_name: str = Field("sentiment", description="Model name inside the registry.")
    model_version: str = Field(
        "current", description="Version to serve, or 'current' for the registry pointer."
    )
    model_max_length: int = Field(128, ge=8, description="Token limit for the model.")
    model_threads: int = Field(
        2, ge=1, description="CPU threads for the model forward pass (and for training)."
    )
    model_runtime: Literal["auto", "onnx", "torch"] = Field(
        "auto",
        description="Forward pass: 'onnx' (the model's int8 ONNX export, ONNX Runtime), "
        "'torch' (PyTorch weights), or 'auto' (ONNX when the model directory has it).",
    )
    model_token_budget: int = Field(
        256,
        ge=64,
        description="Most tokens (rows x padded length) per forward call; a micro-batch is "
        "split into length-sorted groups within it, so short reviews skip long ones' padding.",
    )


class ClickHouseConfig(ConfigSection):
    """Where the rows and aggregates live: a server, or an embedded chdb directory."""

    clickhouse_backend: Literal["native", "embedded"] = Field(
        "embedded",
        description="'native': a ClickHouse server over the native protocol; "
        "'embedded': an in-process chdb directory.",
    )
    clickhouse_host: str = Field("127.0.0.1", description="ClickHouse server host.")
    clickhouse_port: int = Field(9000, description="ClickHouse native-protocol port.")
    clickhouse_user: str = Field("default", description="ClickHouse user.")
    clickhouse_password: str = Field("", description="ClickHouse password.")
    clickhouse_ddl_user: str = Field(
        "",
        description="ClickHouse user for migrations only (DDL), so the worker's own user "
        "needs no DDL rights; empty: clickhouse-user.",
    )
    clickhouse_ddl_password: str = Field(
        "", description="Password of clickhouse-ddl-user (used only when that is set)."
    )
    clickhouse_database: str = Field("reviewpulse", description="ClickHouse database.")
    clickhouse_cluster: str = Field(
        "",
        description="Cluster name (remote_servers) for cluster mode: migrations create "
        "Replicated tables on every node and Distributed tables over them, ON CLUSTER, and "
        "inserts wait for the shards. Empty: one server. Server backend only.",
    )
    clickhouse_timeout_s: float = Field(30.0, gt=0, description="Send/receive timeout.")
    chdb_path: Path = Field(
        PROJECT_ROOT / ".data" / "chdb", description="Directory of the embedded chdb database."
    )

    def for_migrations(self) -> Self:
        """This config with the DDL user's credentials when one is set on a server (embedded
        chdb has no users: unchanged)."""
        if not self.clickhouse_ddl_user or self.clickhouse_backend != "native":
            return self
        return self.model_copy(
            update={
                "clickhouse_user": self.clickhouse_ddl_user,
                "clickhouse_password": self.clickhouse_ddl_password,
            }
        )


class WebConfig(ConfigSection):
    """The worker's HTTP server: /metrics, /health, /predict and the reports."""

    web_host: str = Field(
        "127.0.0.1",
        description="Worker web server bind address; on any but a loopback address every page "
        "except /metrics and /health* requires web-token.",
    )
    web_port: int = Field(6066, description="Worker web server port (/metrics, /health, ...).")
    web_token: str = Field(
        "",
        description="Bearer token (Authorization: Bearer ...) for /predict, /reports/* and every "
        "other page but /metrics and /health*; when empty those pages answer only on a "
        "loopback web-host.",
    )
    predict_max_texts: int = Field(64, ge=1, description="Most texts one POST /predict takes.")
    predict_max_body_bytes: int = Field(
        262144, ge=1024, description="Largest request body the web server reads (413 above)."
    )
    predict_queue: int = Field(
        8,
        ge=1,
        description="POST /predict requests running or waiting at once; more are refused "
        "with 429. They run on their own thread, only while the stream holds no batch.",
    )
    predict_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Longest a POST /predict waits for the model (the stream goes first); "
        "503 after.",
    )
    health_live_timeout_s: float = Field(
        600.0,
        gt=0,
        description="/health/live fails when the worker has held a batch this long without "
        "finishing it (the processing loop is stuck); longer than the sink retries take.",
    )
    health_stall_s: float = Field(
        120.0,
        gt=0,
        description="/health/ready fails when assigned partitions have lag but no batch "
        "finished for this long (batches do not move).",
    )


class AlertConfig(ConfigSection):
    """The alert engine: how often it runs and what counts as an incident.

    Defaults are chosen with the simulation harness (``python -m bench.alerts``); README,
    "Reputation and alerts", has its figures."""

    alert_interval_s: float = Field(30.0, gt=0, description="How often alert rules run.")
    alert_windows_minutes: str = Field(
        "2,5,10,60",
        pattern=r"^\s*\d+(\s*,\s*\d+)*\s*$",
        description="Event-time windows (minutes, ascending, comma-separated) every product, "
        "category and complaint rate is judged on at once.",
    )
    alert_evidence: str = Field(
        "10,10,9,8",
        pattern=r"^\s*\d+(\.\d+)?(\s*,\s*\d+(\.\d+)?)*\s*$",
        description="Evidence each window needs to fire, in the order of "
        "alert-windows-minutes: -ln of the chance that a product at the upper end of its "
        "usual rate (plus alert-margin) shows that many negative reviews (10 = 1 in 22,000); "
        "short windows are looked at more often and need more.",
    )
    alert_min_volume: int = Field(8, ge=1, description="Reviews a window needs before it can fire.")
    alert_margin: float = Field(
        0.05,
        ge=0,
        lt=1,
        description="Rise of a rate (absolute, 0.05 = 5 points) above the upper end of its "
        "usual level that is tolerated as drift; only evidence of more raises an alert.",
    )
    alert_prior_weight: float = Field(
        30.0,
        gt=0,
        description="Pseudo-reviews of the category's rate added to a product's own history "
        "(and of the shop's rate to a category's): thin history is judged by its category.",
    )
    alert_critical_effect: float = Field(
        0.3,
        gt=0,
        le=1,
        description="Severity: critical when the rate rose by at least this much (absolute) "
        "even at the lower end of its 90% confidence interval, warning otherwise.",
    )
    alert_baseline_hours: int = Field(
        24, ge=1, description="History before each window that gives a subject's usual rate."
    )
    alert_cooldown_minutes: int = Field(
        60,
        ge=1,
        description="One alert per product, category or pipeline per incident: the incident "
        "ends after this much evaluated event time without the condition.",
    )
    alert_sample_reviews: int = Field(
        5, ge=0, le=50, description="Sample review ids carried by each alert."
    )
    alert_lag_threshold_s: float = Field(
        600.0,
        gt=0,
        description="Pipeline-lag alert when the oldest unprocessed input message has waited "
        "this long (critical at 3x).",
    )
    alert_lexicon_days: int = Field(
        7, ge=1, description="History the per-category complaint lexicon is learned from."
    )
    alert_lexicon_min_reviews: int = Field(
        20,
        ge=1,
        description="Negative reviews of a category a keyword needs to join its learned "
        "complaint lexicon.",
    )
    alert_lexicon_min_lift: float = Field(
        4.0,
        gt=1,
        description="How many times more often a keyword must appear in a category's negative "
        "reviews than in its others to join the learned complaint lexicon.",
    )
    alert_lexicon_refresh_minutes: int = Field(
        60, ge=1, description="How often the learned complaint lexicon is relearned."
    )
    report_max_hours: int = Field(
        168,
        ge=1,
        description="Longest window a /reports/* page may ask for (the complaints report also "
        "reads the window before it).",
    )
    report_timeout_s: float = Field(
        10.0,
        gt=0,
        description="ClickHouse's max_execution_time for each /reports/* query; a slower "
        "report answers 504.",
    )

    @model_validator(mode="after")
    def _windows_match_evidence(self) -> Self:
        windows = [int(w) for w in self.alert_windows_minutes.split(",")]
        evidence = self.alert_evidence.split(",")
        if len(windows) != len(evidence):
            raise ValueError("alert_evidence needs one value per alert_windows_minutes window")
        if windows != sorted(set(windows)) or windows[0] < 1:
            raise ValueError("alert_windows_minutes must be distinct, ascending and >= 1")
        return self


class MonitorConfig(ConfigSection):
    """Model health: rating feedback and drift against the model card's reference profile."""

    monitor_window_minutes: int = Field(
        60, ge=1, description="Window the model-health rules (model_drift, feedback_drop) read."
    )
    monitor_baseline_hours: int = Field(
        24,
        ge=1,
        description="Baseline: the category's rating agreement and predicted label shares over "
        "this long before the window, which the window's are compared with.",
    )
    monitor_min_reviews: int = Field(
        200, ge=1, description="Reviews a category needs in the window to be checked for drift."
    )
    monitor_label_psi: float = Field(
        0.2,
        gt=0,
        description="model_drift: PSI of the predicted label shares against the category's "
        "own traffic in the baseline window (below 0.1 stable, above 0.25 a major shift); "
        "not against the card, whose validation split is class-balanced.",
    )
    monitor_confidence_psi: float = Field(
        0.25, gt=0, description="model_drift: PSI of the confidence histogram."
    )
    monitor_length_psi: float = Field(
        0.5,
        gt=0,
        description="model_drift: PSI of the cleaned-text length histogram (lengths differ "
        "much between categories: the corpus's own are 0.1-1.8 from the whole).",
    )
    monitor_neutral_rise: float = Field(
        0.1,
        gt=0,
        le=1,
        description="model_drift: rise of the neutral-band share over the reference's.",
    )
    monitor_unknown_rise: float = Field(
        0.01,
        gt=0,
        le=1,
        description="model_drift: rise of the share of tokens unknown to the tokenizer over "
        "the reference's.",
    )
    monitor_min_rated: int = Field(
        100,
        ge=1,
        description="Reviews rated clearly (1-2 or 4-5 stars) a category needs in the window "
        "(and its baseline, to be compared with it) for feedback_drop.",
    )
    monitor_feedback_drop: float = Field(
        0.1,
        gt=0,
        le=1,
        description="feedback_drop: fall in agreement with clear ratings against the "
        "category's baseline or the model card's validation agreement.",
    )
    monitor_agreement_minutes: int = Field(
        60, ge=1, description="Window of the rolling rating-agreement gauge per model version."
    )


class LogConfig(ConfigSection):
    """Logging of long-running commands."""

    log_level: str = Field("info", description="Log level (debug, info, warning, error).")


class ServingConfig(ConfigSection):
    """Hot reload of the served model and shadow scoring of a candidate, inside the worker."""

    model_reload_interval_s: float = Field(
        10.0,
        ge=0,
        description="How often the worker reads the registry's CURRENT and SHADOW pointers. "
        "A moved CURRENT is loaded beside the served model (on its own thread), checked, and "
        "swapped in between batches; only with model-version 'current', a pinned version "
        "stays. 0 turns hot reload and shadow scoring off.",
    )
    model_canary_tolerance: float = Field(
        0.25,
        ge=0,
        le=1,
        description="A model is refused at load unless its predictions on the built-in canary "
        "reviews are finite and normalised, and it tells their positive from negative ones "
        "at most this far below its card's validation accuracy.",
    )
    shadow_queue_batches: int = Field(
        8,
        ge=1,
        description="Batches that may wait for the shadow candidate; further ones are dropped "
        "and counted, never waited for.",
    )
    shadow_timeout_s: float = Field(
        30.0,
        gt=0,
        description="A shadow batch running longer marks the shadow stalled in /health and "
        "the metrics; queued batches older than this are dropped.",
    )
    shadow_threads: int = Field(
        1, ge=1, description="CPU threads for the shadow candidate's forward pass."
    )


# --- the resolver ------------------------------------------------------------------------------


def add_config_arguments(parser: argparse.ArgumentParser, *sections: type[ConfigSection]) -> None:
    """One ``--kebab-case`` flag per field of ``sections``, each section its own help group."""
    for section in sections:
        group = parser.add_argument_group(
            f"{section.__name__} (also REVIEWPULSE_<NAME> env vars)", section.__doc__
        )
        for name, field in section.model_fields.items():
            group.add_argument(
                "--" + name.replace("_", "-"),
                dest=_FLAG_DEST + name,
                default=None,
                metavar=name.upper(),
                # argparse %-formats help strings: a literal % must be doubled
                help=f"{field.description} [default: {field.default}]".replace("%", "%%"),
            )


def resolve(
    section: type[Section], args: argparse.Namespace | None = None, **overrides: Any
) -> Section:
    """``section`` from env vars, overridden by the flags given in ``args``, then
    ``overrides``."""
    given = {
        name: value
        for name in section.model_fields
        if (value := getattr(args, _FLAG_DEST + name, None)) is not None
    }
    return section(**{**given, **overrides})


def route(
    values: Mapping[str, Any], sections: Iterable[type[ConfigSection]]
) -> dict[type[ConfigSection], dict[str, Any]]:
    """Split flat ``name=value`` pairs by the section that owns each name."""
    owner = {name: section for section in sections for name in section.model_fields}
    unknown = sorted(set(values) - set(owner))
    if unknown:
        raise TypeError(f"unknown settings: {', '.join(unknown)}")
    split: dict[type[ConfigSection], dict[str, Any]] = {}
    for name, value in values.items():
        split.setdefault(owner[name], {})[name] = value
    return split


def config_flags(*configs: ConfigSection) -> list[str]:
    """The flags that make a command resolve exactly these sections' values: the inverse of
    :func:`add_config_arguments`, for driving commands from code (benchmarks, tests)."""
    return [
        f"--{name.replace('_', '-')}={value}"
        for config in configs
        for name, value in config.model_dump().items()
    ]


def config_env(*configs: ConfigSection) -> dict[str, str]:
    """This process's environment with every field of ``configs`` as a ``REVIEWPULSE_*``
    variable (and no other), so a child process resolves exactly these values."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    for config in configs:
        for name, value in config.model_dump().items():
            env[f"{ENV_PREFIX}{name.upper()}"] = str(value)
    return env


@dataclass(frozen=True)
class WorkerConfig:
    """Every section the stream worker reads, resolved once at start-up."""

    kafka: KafkaConfig
    batch: BatchConfig
    model: ModelConfig
    clickhouse: ClickHouseConfig
    web: WebConfig
    alerts: AlertConfig
    log: LogConfig
    serving: ServingConfig
    monitor: MonitorConfig

    @classmethod
    def sections(cls) -> dict[str, type[ConfigSection]]:
        """Attribute name -> section class, in declaration order."""
        hints = get_type_hints(cls)
        return {field.name: hints[field.name] for field in fields(cls)}

    @classmethod
    def resolve(cls, args: argparse.Namespace | None = None, **overrides: Any) -> Self:
        """All sections from env vars, then flags in ``args``, then flat ``overrides``."""
        sections = cls.sections()
        split = route(overrides, sections.values())
        return cls(
            **{
                attr: resolve(section, args, **split.get(section, {}))
                for attr, section in sections.items()
            }
        )

    def replace(self, **overrides: Any) -> Self:
        """A copy with flat ``name=value`` overrides routed to their sections."""
        sections = self.sections()
        split = route(overrides, sections.values())
        changed = {
            attr: section(**{**getattr(self, attr).model_dump(), **split[section]})
            for attr, section in sections.items()
            if section in split
        }
        return replace(self, **changed)

    def env(self) -> dict[str, str]:
        """The environment a child process needs to resolve this same configuration."""
        return config_env(*(getattr(self, attr) for attr in self.sections()))


def markdown_table(section: type[ConfigSection]) -> str:
    """The README's table of one section: variable and flag, default, description."""
    lines = ["| env var / flag | default | meaning |", "|---|---|---|"]
    for name, field in section.model_fields.items():
        default = field.default
        if isinstance(default, Path) and default.is_relative_to(PROJECT_ROOT):
            default = default.relative_to(PROJECT_ROOT)
        flag = "--" + name.replace("_", "-")
        lines.append(
            f"| `{ENV_PREFIX}{name.upper()}` / `{flag}` | `{default}` | {field.description} |"
        )
    return "\n".join(lines)
