"""The operator CLI: ``python supervisor.py CONFIG --run-once | --daemon | --kill | ...``.

Exit codes (documented in the README):

==  =========================================================================
0   success (cycle succeeded, command done, daemon stopped by SIGTERM/SIGINT)
1   the ``--run-once`` cycle failed (see its summary and ``state/alerts/``)
2   usage or config error (one line on stderr, no traceback)
3   halted: the system is halted, or the kill switch is active
4   another autopilot process holds the state directory
5   the audit log's hash chain is broken (``--audit-verify``)
6   the state directory cannot be written (read-only, full, ...)
7   ``--approve``: the model artifact does not match its recorded sha256
==  =========================================================================
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import msgspec

from aistock_actors import __version__
from aistock_actors.cli.exit_codes import EXIT_AUDIT_BROKEN as EXIT_AUDIT_BROKEN
from aistock_actors.cli.exit_codes import EXIT_CYCLE_FAILED as EXIT_CYCLE_FAILED
from aistock_actors.cli.exit_codes import EXIT_HALTED as EXIT_HALTED
from aistock_actors.cli.exit_codes import EXIT_INTEGRITY as EXIT_INTEGRITY
from aistock_actors.cli.exit_codes import EXIT_LOCKED as EXIT_LOCKED
from aistock_actors.cli.exit_codes import EXIT_OK as EXIT_OK
from aistock_actors.cli.exit_codes import EXIT_STATE as EXIT_STATE
from aistock_actors.cli.exit_codes import EXIT_USAGE as EXIT_USAGE
from aistock_actors.cli.runs import (
    run_daemon as run_daemon,
)
from aistock_actors.cli.runs import (
    run_once as run_once,
)
from aistock_actors.config import LoadedConfig, load_config
from aistock_actors.config.sections import Mode
from aistock_actors.errors import (
    AutopilotError,
    ConfigError,
    HaltedError,
    LockHeldError,
    ModelIntegrityError,
)
from aistock_actors.runtime.logs import setup_logging
from aistock_actors.services import operator_actions as operator

log = logging.getLogger("aistock_actors.cli.app")


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser (the README's CLI reference mirrors it)."""
    parser = argparse.ArgumentParser(
        prog="aistock",
        description="Actor-based autonomous paper-trading autopilot (headless mode).",
    )
    parser.add_argument("config", type=Path, help="path to the JSON config file")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--run-once", action="store_true", help="run one full cycle and exit")
    action.add_argument("--daemon", action="store_true", help="run cycles until SIGTERM/SIGINT")
    action.add_argument("--kill", action="store_true", help="activate the file kill switch")
    action.add_argument(
        "--unkill",
        action="store_true",
        help="deactivate the kill switch and clear a kill-switch halt",
    )
    action.add_argument(
        "--resume",
        action="store_true",
        help="clear a halt (e.g. max_failures_reached) and reset the failure count",
    )
    action.add_argument(
        "--status",
        action="store_true",
        help="show the system's state (a rich view on a terminal, plain text otherwise)",
    )
    action.add_argument(
        "--report",
        action="store_true",
        help="write a self-contained HTML report (equity, promotions, risk, regimes, costs)",
    )
    action.add_argument(
        "--audit-verify", action="store_true", help="verify the audit log's hash chain"
    )
    action.add_argument(
        "--replay",
        action="store_true",
        help="replay the CSV folder's history bar by bar through real cycles (a simulated "
        "market clock), then print a summary; run again to continue after a stop or halt",
    )
    action.add_argument(
        "--approve",
        metavar="ID",
        help="activate the pending promotion with manifest entry ID "
        "(or apply the pending risk-limit change risk-<n>)",
    )
    action.add_argument(
        "--reject",
        metavar="ID",
        help="discard the pending promotion with manifest entry ID (or risk change risk-<n>)",
    )
    action.add_argument(
        "--ack",
        metavar="ID",
        help="acknowledge alert ID (shown by --status) or every open alert with 'all'",
    )
    action.add_argument(  # #17: the audited repair for bars that should never have been stored
        "--drop-bars",
        metavar="SYMBOL",
        help="remove SYMBOL's stored bars after --after DATE (audited; not while a daemon runs)",
    )
    action.add_argument(  # #17: the one-time upgrade step for artifacts written before signing
        "--sign-unsigned-models",
        action="store_true",
        help="sign stored models that have no signature yet and still match their sha256 "
        "(audited; run once after the upgrade)",
    )
    parser.add_argument(
        "--after", metavar="DATE", default=None, help="with --drop-bars: ISO date or datetime"
    )
    parser.add_argument(
        "--interval-minutes",
        type=float,
        default=None,
        help="with --daemon: minutes between cycle starts (default: config)",
    )
    # --- #15 data download ---
    action.add_argument(
        "--download",
        action="store_true",
        help="fill the bar store from data.source (ccxt, alpaca); re-runs fetch only what is new",
    )
    parser.add_argument(
        "--from",
        dest="from_date",
        default=None,
        metavar="DATE",
        help="first market date of a period (ISO date or date-time, UTC): with --download the "
        "first bar to fetch; with --replay the first bar to replay (default: the first date "
        "with enough history to train)",
    )
    parser.add_argument(
        "--to",
        dest="to_date",
        default=None,
        metavar="DATE",
        help="last market date of a period (ISO date or date-time, UTC; a bare date is the "
        "whole day): with --download the last bar to fetch; with --replay the last bar to "
        "replay (default: the last bar)",
    )
    parser.add_argument(
        "--csv",
        type=Path,
        default=None,
        metavar="DIR",
        help="with --download: also write <SYMBOL>.csv files into DIR",
    )
    # --- end #15 ---
    parser.add_argument("--json", action="store_true", help="with --status: print JSON")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="with --report: where to write the HTML (default: report.html)",
    )
    parser.add_argument(
        "--log-level",
        default=None,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        help="default INFO (ERROR with --replay: a cycle per bar would flood the terminal)",
    )
    parser.add_argument(
        "--log-format",
        default=None,
        choices=["text", "json"],
        help="log format (default: json with --daemon, text otherwise)",
    )
    parser.add_argument("--version", action="version", version=f"aistock-actors {__version__}")
    return parser


def main(argv: Sequence[str] | None = None, mode: Mode | None = None) -> int:
    """Entry point of ``supervisor.py`` and the ``aistock`` console script; ``mode`` overrides
    the config's (the manual's ``scripts/run_autopilot.py`` and ``supervised_autopilot.py``)."""
    args = build_parser().parse_args(argv)
    if args.interval_minutes is not None and args.interval_minutes <= 0:
        print("aistock: --interval-minutes must be > 0", file=sys.stderr)
        return EXIT_USAGE
    if (args.after is None) != (args.drop_bars is None):
        print("aistock: --drop-bars SYMBOL and --after DATE go together", file=sys.stderr)
        return EXIT_USAGE
    if args.out is not None and not args.report:
        print("aistock: --out goes with --report", file=sys.stderr)
        return EXIT_USAGE
    if args.csv is not None and not args.download:
        print("aistock: --csv goes with --download", file=sys.stderr)
        return EXIT_USAGE
    if (args.from_date or args.to_date) and not (args.replay or args.download):
        print("aistock: --from and --to go with --replay or --download", file=sys.stderr)
        return EXIT_USAGE
    level = args.log_level or ("ERROR" if args.replay else "INFO")
    setup_logging(level, args.log_format or ("json" if args.daemon else "text"))
    try:
        loaded = load_config(args.config)
        if mode is not None and mode != loaded.config.mode:
            loaded = msgspec.structs.replace(
                loaded, config=msgspec.structs.replace(loaded.config, mode=mode))
        return _dispatch(args, loaded)
    except ConfigError as exc:
        print(f"aistock: config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LockHeldError as exc:
        print(f"aistock: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except OSError as exc:
        print(f"aistock: state directory problem: {exc}", file=sys.stderr)
        return EXIT_STATE
    except AutopilotError as exc:
        print(f"aistock: {exc}", file=sys.stderr)
        return EXIT_STATE


def _dispatch(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    if args.run_once or args.daemon or args.replay:  # a user strategy that cannot load: exit 2
        from aistock_actors.services.strategy_candidates import check_configured

        check_configured(loaded)
    if args.run_once:
        return run_once(loaded)
    if args.replay:
        from aistock_actors.cli import replay_command  # the replay loads the whole runtime

        return replay_command.run_replay(loaded, args.from_date, args.to_date)
    if args.daemon:
        minutes = args.interval_minutes or loaded.config.daemon.interval_minutes
        on_bar_close = args.interval_minutes is None and (
            loaded.config.daemon.schedule == "on_bar_close"
        )
        return run_daemon(loaded, minutes * 60.0, on_bar_close=on_bar_close)
    if args.kill:
        print(operator.kill(loaded))
        return EXIT_OK
    if args.unkill:
        message, still_halted = operator.unkill(loaded)
        print(message)
        return EXIT_HALTED if still_halted else EXIT_OK
    if args.resume:
        message, ok = operator.resume(loaded)
        print(message)
        return EXIT_OK if ok else EXIT_HALTED
    if args.status:
        status = operator.status(loaded)
        if args.json:
            sys.stdout.write(msgspec.json.format(msgspec.json.encode(status)).decode() + "\n")
        else:
            from aistock_actors.cli import status_view  # rich loads only for a terminal

            status_view.print_status(status)
        return EXIT_OK
    if args.ack is not None:
        try:
            print(operator.ack(loaded, args.ack))
        except KeyError as exc:
            print(f"aistock: {exc.args[0]}", file=sys.stderr)
            return EXIT_USAGE
        return EXIT_OK
    if args.report:
        return write_report(loaded, args.out or Path("report.html"))
    if args.audit_verify:
        message, ok = operator.audit_verify(loaded)
        print(message)
        return EXIT_OK if ok else EXIT_AUDIT_BROKEN
    if args.sign_unsigned_models:
        from aistock_actors.cli.model_commands import sign_unsigned_models

        print(sign_unsigned_models(loaded))
        return EXIT_OK
    if args.drop_bars is not None:
        from aistock_actors.cli.bar_commands import drop_bars

        print(drop_bars(loaded, args.drop_bars, args.after))
        return EXIT_OK
    if args.download:
        from aistock_actors.cli.download import download

        return download(loaded, from_date=args.from_date, to_date=args.to_date, csv_dir=args.csv)
    if args.approve is not None or args.reject is not None:
        return _decide_promotion(loaded, args.approve or args.reject, args.approve is not None)
    return EXIT_USAGE


def write_report(loaded: LoadedConfig, out: Path) -> int:
    """``--report [--out FILE]``: write the HTML report; one line saying where."""
    from aistock_actors.cli import report  # matplotlib and pandas: only --report pays for them

    try:
        written = report.write_report(loaded, out)
    except OSError as exc:
        print(f"aistock: cannot write the report to {out}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(
        f"report written: {written.path} ({written.size_bytes // 1024} KiB, "
        f"{written.sections_with_data}/{written.sections} sections with data)"
    )
    return EXIT_OK


def _decide_promotion(loaded: LoadedConfig, entry_id: str, approve: bool) -> int:
    """``--approve ID`` / ``--reject ID``: one line of outcome, an exit code."""
    from aistock_actors.services import promotion_decisions as promotion_ops
    from aistock_actors.services import risk_decisions as trading_ops

    if trading_ops.is_risk_id(entry_id):  # risk-<n>: a pending risk-limit expansion
        message, ok = trading_ops.decide_risk(loaded, entry_id, approve=approve)
        print(message if ok else f"aistock: {message}", file=sys.stdout if ok else sys.stderr)
        return EXIT_OK if ok else EXIT_USAGE
    try:
        print(promotion_ops.decide(loaded, entry_id, approve=approve))
    except ValueError as exc:
        print(f"aistock: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except HaltedError as exc:
        print(f"aistock: {exc}", file=sys.stderr)
        return EXIT_HALTED
    except ModelIntegrityError as exc:
        print(f"aistock: refused: {exc}", file=sys.stderr)
        return EXIT_INTEGRITY
    return EXIT_OK


