"""The one typed settings object for every ReviewPulse command.

Values come from, in rising priority: field defaults, ``REVIEWPULSE_*`` environment
variables (e.g. ``REVIEWPULSE_KAFKA_BROKER``), and command-line flags
(``--kafka-broker``). Build it once at the edge (the CLI or a test fixture) and pass it
down; nothing reads the environment anywhere else.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "REVIEWPULSE_"

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Runtime configuration. Field descriptions double as ``--help`` text and README docs."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    # --- Kafka -------------------------------------------------------------------------
    kafka_broker: str = Field(
        "127.0.0.1:9092", description="Bootstrap servers, host:port[,host:port]."
    )
    input_topic: str = Field("review.created", description="Topic of incoming review events.")
    output_topic: str = Field("review.sentiment", description="Topic of sentiment events.")
    dlq_topic: str = Field("review.dead-letter", description="Topic of dead-lettered input.")
    alerts_topic: str = Field("review.alerts", description="Topic of quality alerts.")
    topic_partitions: int = Field(4, ge=1, description="Partitions for topics this app creates.")
    app_id: str = Field("reviewpulse", description="Faust app id; also the consumer group.")
    session_timeout_s: float = Field(
        10.0, gt=0, description="Consumer group session timeout (short: Tansu joins take ~half)."
    )
    heartbeat_interval_s: float = Field(1.0, gt=0, description="Consumer heartbeat interval.")
    commit_interval_s: float = Field(1.0, gt=0, description="How often acked offsets commit.")

    # --- Micro-batching and validation ------------------------------------------------
    batch_size: int = Field(
        256, ge=1, description="Largest micro-batch the agent takes (one model call each)."
    )
    batch_within_s: float = Field(0.5, gt=0, description="Longest wait to fill a micro-batch.")
    max_text_chars: int = Field(
        5000, ge=1, description="Reviews longer than this (after cleaning) are dead-lettered."
    )
    max_event_bytes: int = Field(
        262144, ge=1024, description="Input messages larger than this are dead-lettered unread."
    )
    keywords_limit: int = Field(10, ge=1, description="Most keywords kept per review.")
    dlq_limit_ratio: float = Field(
        0.9,
        gt=0,
        le=1,
        description="Stop the worker when this share of the last dlq-limit-window events "
        "was dead-lettered: a sign of a bad deploy, not bad data.",
    )
    dlq_limit_window: int = Field(500, ge=1, description="Events in the DLQ-limit window.")
    sink_retry_attempts: int = Field(
        8, ge=1, description="Attempts for a ClickHouse insert or produce before the worker stops."
    )
    sink_retry_backoff_s: float = Field(0.5, gt=0, description="First retry delay (doubles).")
    sink_timeout_s: float = Field(
        60.0, gt=0, description="Longest wait for one produce, insert or model attempt."
    )
    predict_max_texts: int = Field(64, ge=1, description="Most texts one POST /predict takes.")
    log_level: str = Field("info", description="Worker log level (debug, info, warning, error).")

    # --- Model -------------------------------------------------------------------------
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

    # --- ClickHouse ----------------------------------------------------------------------
    clickhouse_backend: Literal["native", "embedded"] = Field(
        "embedded",
        description="'native': a ClickHouse server over the native protocol; "
        "'embedded': an in-process chdb directory.",
    )
    clickhouse_host: str = Field("127.0.0.1", description="ClickHouse server host.")
    clickhouse_port: int = Field(9000, description="ClickHouse native-protocol port.")
    clickhouse_user: str = Field("default", description="ClickHouse user.")
    clickhouse_password: str = Field("", description="ClickHouse password.")
    clickhouse_database: str = Field("reviewpulse", description="ClickHouse database.")
    clickhouse_timeout_s: float = Field(30.0, gt=0, description="Send/receive timeout.")
    chdb_path: Path = Field(
        PROJECT_ROOT / ".data" / "chdb", description="Directory of the embedded chdb database."
    )
    worker_data_dir: Path = Field(
        PROJECT_ROOT / ".data" / "worker",
        description="Faust's data directory (one subdirectory per app id); the worker keeps "
        "no state there, ClickHouse holds it.",
    )

    # --- Web and metrics -------------------------------------------------------------------
    web_host: str = Field("127.0.0.1", description="Worker web server bind address.")
    web_port: int = Field(6066, description="Worker web server port (/metrics, /health, ...).")

    # --- Alerts ----------------------------------------------------------------------------
    alert_interval_s: float = Field(30.0, gt=0, description="How often alert rules run.")
    alert_min_volume: int = Field(
        20,
        ge=1,
        description="Reviews a product needs in the window before it can alert; also the "
        "pseudo-count that pulls a thin baseline towards the shop-wide ratio.",
    )
    alert_negative_ratio: float = Field(
        0.5, gt=0, le=1, description="Negative ratio in the window that counts as a spike."
    )
    alert_ratio_lift: float = Field(
        2.0, gt=1, description="Spike must also be this many times the product's baseline."
    )
    alert_window_minutes: int = Field(60, ge=1, description="Window the alert rules look at.")
    alert_baseline_hours: int = Field(24, ge=1, description="Baseline window before it.")
    alert_keyword_min: int = Field(
        10,
        ge=1,
        description="Negative reviews with complaint keywords a product needs in the window "
        "for a complaint surge.",
    )
    alert_keyword_lift: float = Field(
        2.0,
        gt=1,
        description="Complaint surge: share of such reviews must be this many times the "
        "product's baseline share.",
    )
    alert_category_min_volume: int = Field(
        50, ge=1, description="Reviews a category needs in the window and baseline to alert."
    )
    alert_category_drop: float = Field(
        0.3, gt=0, description="Fall in a category's net score (-1..1) that raises an alert."
    )
    alert_cooldown_minutes: int = Field(
        60,
        ge=1,
        description="One alert per product or category per incident: a new one needs this "
        "long without the condition; a longer incident extends the open alert.",
    )
    alert_sample_reviews: int = Field(
        5, ge=0, le=50, description="Sample review ids carried by each alert."
    )


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one ``--kebab-case`` flag per settings field, with the field's description."""
    group = parser.add_argument_group("settings (also REVIEWPULSE_<NAME> env vars)")
    for name, field in Settings.model_fields.items():
        group.add_argument(
            "--" + name.replace("_", "-"),
            dest=f"setting_{name}",
            default=None,
            metavar=name.upper(),
            help=f"{field.description} [default: {field.default}]",
        )


def settings_from_args(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Settings from env vars, overridden by the flags that were given, then ``overrides``."""
    given = {
        name: value
        for name in Settings.model_fields
        if (value := getattr(args, f"setting_{name}", None)) is not None
    }
    return Settings(**{**given, **overrides})


def settings_env(settings: Settings) -> dict[str, str]:
    """This process's environment with every setting as a ``REVIEWPULSE_*`` variable, so a
    child process builds exactly ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    for name, value in settings.model_dump().items():
        env[f"{ENV_PREFIX}{name.upper()}"] = str(value)
    return env
