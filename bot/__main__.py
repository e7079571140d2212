"""Command line: `python -m bot run | migrate | sandbox | doctor | report`.

Every command takes `--config FILE`; without it ./app.yaml is read when present (else the
defaults and environment variables). A --config file that does not exist is an error (exit 2).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from bot.config import ConfigError, check_slack_secrets, load_config, resolve_config_path
from bot.process.logs import configure_from

log = logging.getLogger("bot")

CONFIG_HELP = "configuration file (default: ./app.yaml when present)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the bot (migrates the database first)")
    run.add_argument("--config", default=None, help=CONFIG_HELP)
    worker = commands.add_parser("worker", help="(started by `run`) one worker process")
    worker.add_argument("--config", default=None, help=CONFIG_HELP)
    worker.add_argument("--index", type=int, default=0)
    migrate = commands.add_parser("migrate", help="upgrade the database schema to head")
    migrate.add_argument("--config", default=None, help=CONFIG_HELP)
    sandbox = commands.add_parser("sandbox",
                                  help="run the bot against a local Slack in the browser")
    sandbox.add_argument("--config", default=None, help=CONFIG_HELP)
    sandbox.add_argument("--port", type=int, default=8080)
    sandbox.add_argument("--host", default="127.0.0.1")
    doctor = commands.add_parser(
        "doctor", help="check the configuration, Slack, the model and the database")
    doctor.add_argument("--config", default=None, help=CONFIG_HELP)
    report = commands.add_parser(
        "report", help="summarise conversations, handoffs, response times and model cost")
    report.add_argument("--config", default=None, help=CONFIG_HELP)
    report.add_argument("--since", default="7d",
                        help="how far back, as a duration (90m, 12h, 7d, 4w); default 7d")
    report.add_argument("--format", choices=("table", "json", "csv"), default="table")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config_file = resolve_config_path(args.config)
        config = load_config(config_file)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    configure_from(config)

    if args.command == "migrate":
        from storage.migrate import upgrade_to_head

        upgrade_to_head(config.database.url)
        print(f"database is at the latest schema ({safe_url(config.database.url)})")
        return 0
    if args.command == "doctor":
        from bot.process.doctor import run_doctor

        return asyncio.run(run_doctor(config, config_file=config_file))
    if args.command == "report":
        from bot.process.report import run_report

        return asyncio.run(run_report(config, since=args.since, format=args.format))
    if args.command == "run":
        try:
            check_slack_secrets(config)
        except ConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        from bot.process.lifecycle import run_forever

        log.info("starting: config %s, Slack %s mode (%s), model %s, database %s",
                 config_file if config_file else "none (defaults and environment)",
                 config.slack.mode, config.slack.api_url, config.llm.model,
                 safe_url(config.database.url))
        try:
            asyncio.run(run_forever(config, str(config_file) if config_file else None))
        except KeyboardInterrupt:
            pass
        except ConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        return 0
    if args.command == "worker":
        from bot.process.workers import run_worker_process

        try:
            asyncio.run(run_worker_process(config, args.index))
        except KeyboardInterrupt:
            pass
        return 0
    # The sandbox is not part of the product: it has its own entry point, run in this process.
    config_args = ["--config", str(config_file)] if config_file else []
    os.execv(sys.executable, [sys.executable, "-m", "sandbox", *config_args,
                              "--port", str(args.port), "--host", args.host])


def safe_url(url: str) -> str:
    """A database URL with its password hidden."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unreadable URL: show only its scheme
        return url.split(":", 1)[0] + ":..."


if __name__ == "__main__":
    sys.exit(main())
