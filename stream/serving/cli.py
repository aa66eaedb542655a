"""``reviewpulse shadow start|stop|status|promote``: try a candidate model on live traffic.

``start`` checks the version (it must load and pass the canary) and writes the registry's
``SHADOW`` pointer; every worker that follows the registry picks it up within
``model-reload-interval-s`` and also scores that share of each batch with the candidate, on its
own thread, into ``shadow_predictions``. ``status`` compares the two models on the same
reviews; ``promote`` moves ``CURRENT`` only if the comparison holds up, printing its decision
as JSON (exit 3 when it does not); ``stop`` removes the pointer.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from stream.config import (
    ClickHouseConfig,
    ModelConfig,
    ServingConfig,
    add_config_arguments,
    resolve,
)
from stream.serving.compare import EXIT_NOT_PROMOTED, PromotionRules

HELP = """\
Shadow scoring: workers also score a share of live reviews with a candidate model, beside
the served one, and store both predictions in ClickHouse (shadow_predictions), never on the
output topic. The comparison uses ratings as weak labels (4-5 positive, 3 neutral, 1-2
negative).

  start VERSION [--share S]  check VERSION loads and passes the canary, write SHADOW
  status [--json]            candidate vs served model on the same reviews
  promote                    move CURRENT to the candidate if the comparison holds up
                             (decision printed as JSON; exit 3 when not promoted)
  stop                       remove SHADOW; workers stop scoring the candidate
"""

PROMOTE_HELP = f"""\
Compare the shadow candidate with the served model (CURRENT) on the reviews both scored and
promote it when: at least --min-rated rated reviews were compared, and the candidate's rating
agreement is not below the served model's by more than --max-agreement-drop. Then check the
candidate loads and passes the canary, point CURRENT at it and end the shadow; workers that
follow CURRENT switch between batches. Prints the decision as JSON; exit {EXIT_NOT_PROMOTED} when
not promoted (CURRENT stays).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    shadow = subparsers.add_parser(
        "shadow",
        help="score a candidate model in shadow on live traffic; compare; promote",
        description=HELP,
        formatter_class=formatter,
    )
    actions = shadow.add_subparsers(dest="shadow_command", metavar="ACTION", required=True)

    start = actions.add_parser(
        "start", help="shadow-score VERSION in every worker", description=HELP
    )
    start.add_argument("version", help="registry version of the candidate")
    start.add_argument(
        "--share",
        type=float,
        default=0.25,
        help="share of live reviews the candidate scores, (0, 1] [0.25]",
    )
    add_config_arguments(start, ModelConfig, ServingConfig)
    start.set_defaults(func=cmd_start)

    stop = actions.add_parser("stop", help="end the shadow", description=HELP)
    add_config_arguments(stop, ModelConfig)
    stop.set_defaults(func=cmd_stop)

    status = actions.add_parser(
        "status", help="compare the candidate with the served model", description=HELP
    )
    _add_versions(status)
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_config_arguments(status, ModelConfig, ClickHouseConfig)
    status.set_defaults(func=cmd_status)

    promote = actions.add_parser(
        "promote",
        help="move CURRENT to the candidate if the comparison holds up",
        description=PROMOTE_HELP,
        formatter_class=formatter,
    )
    _add_versions(promote, served=False)
    defaults = PromotionRules()
    promote.add_argument(
        "--min-rated",
        type=_positive_int,
        default=defaults.min_rated,
        help=f"rated reviews both models must have scored [{defaults.min_rated}]",
    )
    promote.add_argument(
        "--max-agreement-drop",
        type=float,
        default=defaults.max_agreement_drop,
        help="largest fall in rating agreement accepted, candidate vs served "
        f"[{defaults.max_agreement_drop}]",
    )
    add_config_arguments(promote, ModelConfig, ServingConfig, ClickHouseConfig)
    promote.set_defaults(func=cmd_promote)


def _add_versions(parser: argparse.ArgumentParser, *, served: bool = True) -> None:
    parser.add_argument(
        "--candidate", default=None, help="candidate version [the one SHADOW names]"
    )
    if served:
        parser.add_argument("--served", default=None, help="served version [CURRENT]")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _fail(message: str) -> SystemExit:
    return SystemExit(f"reviewpulse shadow: {message}")


def cmd_start(args: argparse.Namespace) -> int:
    from model.registry import current_version, start_shadow
    from stream.serving.loader import ModelRefused, load_checked

    model, serving = resolve(ModelConfig, args), resolve(ServingConfig, args)
    if not 0 < args.share <= 1:
        raise _fail(f"--share must be within (0, 1], got {args.share}")
    registry, name = model.model_registry, model.model_name
    try:
        served = current_version(registry, name)
    except (OSError, ValueError):
        served = None
    if args.version == served:
        raise _fail(f"{args.version} is the served model (CURRENT): nothing to compare it with")
    try:
        load_checked(model, args.version, tolerance=serving.model_canary_tolerance, threads=1)
    except ModelRefused as exc:
        raise _fail(str(exc)) from exc
    spec = start_shadow(registry, name, args.version, args.share)
    print(json.dumps({"shadow": asdict(spec), "served": served}))
    print(
        f"workers following {registry / name} score {spec.share:.0%} of reviews with "
        f"{spec.version} from their next registry check (model-reload-interval-s)"
    )
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from model.registry import stop_shadow

    model = resolve(ModelConfig, args)
    spec = stop_shadow(model.model_registry, model.model_name)
    print(f"shadow of {spec.version} stopped" if spec else "no shadow was running")
    return 0


def _versions(model: ModelConfig, candidate: str | None, served: str | None) -> tuple[str, str]:
    from model.registry import check_version, current_version, read_shadow

    registry, name = model.model_registry, model.model_name
    if candidate is None:
        try:
            spec = read_shadow(registry, name)
        except ValueError as exc:
            raise _fail(str(exc)) from exc
        if spec is None:
            raise _fail("no shadow is running: start one, or name the version with --candidate")
        candidate = spec.version
    if served is None:
        try:
            served = current_version(registry, name)
        except (OSError, ValueError) as exc:
            raise _fail(str(exc)) from exc
    try:
        return check_version(candidate), check_version(served)
    except ValueError as exc:
        raise _fail(str(exc)) from exc


def _comparison(clickhouse: ClickHouseConfig, candidate: str, served: str) -> tuple[Any, list]:
    from stream.serving.compare import compare
    from stream.sink.connection import connect
    from stream.sink.shadow import read_shadow_cells, read_shadow_versions

    try:
        ch = connect(clickhouse)
        try:
            cells = read_shadow_cells(ch, candidate, served)
            versions = read_shadow_versions(ch, candidate)
        finally:
            ch.close()
    except Exception as exc:
        raise _fail(
            f"cannot read shadow_predictions from ClickHouse ({clickhouse.clickhouse_backend}, "
            f"database {clickhouse.clickhouse_database}): {exc}"
        ) from exc
    return compare(cells, candidate=candidate, served=served), versions


def cmd_status(args: argparse.Namespace) -> int:
    model, clickhouse = resolve(ModelConfig, args), resolve(ClickHouseConfig, args)
    candidate, served = _versions(model, args.candidate, args.served)
    comparison, versions = _comparison(clickhouse, candidate, served)
    if args.json:
        print(json.dumps({**comparison.to_dict(), "served_versions": dict(versions)}))
        return 0
    print(format_comparison(comparison))
    others = [(v, n) for v, n in versions if v != served]
    if others:
        listed = ", ".join(f"{v} ({n} reviews)" for v, n in others)
        print(f"also compared with other served versions: {listed} (--served VERSION)")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from model.registry import read_shadow, set_current, stop_shadow
    from stream.serving.compare import decide_promotion
    from stream.serving.loader import ModelRefused, load_checked

    model, clickhouse = resolve(ModelConfig, args), resolve(ClickHouseConfig, args)
    serving = resolve(ServingConfig, args)
    candidate, served = _versions(model, args.candidate, None)
    if candidate == served:
        raise _fail(f"{candidate} is already the served model (CURRENT)")
    comparison, _ = _comparison(clickhouse, candidate, served)
    rules = PromotionRules(min_rated=args.min_rated, max_agreement_drop=args.max_agreement_drop)
    decision = decide_promotion(comparison, rules)
    print(json.dumps(decision.to_dict()))
    if not decision.promote:
        return EXIT_NOT_PROMOTED
    try:
        load_checked(model, candidate, tolerance=serving.model_canary_tolerance, threads=1)
    except ModelRefused as exc:
        raise _fail(f"not promoted: {exc}") from exc
    set_current(model.model_registry, model.model_name, candidate)
    try:
        spec = read_shadow(model.model_registry, model.model_name)
    except ValueError:
        spec = None
    if spec is not None and spec.version == candidate:
        stop_shadow(model.model_registry, model.model_name)
    print(f"CURRENT is now {candidate} (was {served}); the shadow of {candidate} ended")
    return 0


def format_comparison(comparison: Any) -> str:
    """The comparison as a readable table."""
    c, s = comparison.candidate, comparison.served

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.2f}%"

    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f} ms"

    rows = [
        ("", "served", "candidate"),
        ("version", s.version, c.version),
        ("rating agreement", pct(s.rating_agreement), pct(c.rating_agreement)),
        *(
            (f"{label} share", pct(s.label_shares[label]), pct(c.label_shares[label]))
            for label in s.label_shares
        ),
        ("forward per review", ms(s.ms_per_review), ms(c.ms_per_review)),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    gain = comparison.gain
    z = comparison.mcnemar_z
    lines += [
        "",
        f"{comparison.reviews} reviews scored by both, {comparison.rated} with a rating; "
        f"the models agree on {pct(comparison.agreement)}",
        f"rated reviews only the candidate gets right: {comparison.candidate_only_right}; "
        f"only the served model: {comparison.served_only_right}"
        + ("" if gain is None else f"; gain {100 * gain:+.2f} points")
        + ("" if z is None else f" (McNemar z {z:+.2f})"),
        "forward times: the candidate runs on the shadow thread (--shadow-threads, lowest CPU "
        "priority), so they are a rough guide",
    ]
    return "\n".join(lines)
