"""Command line: `python -m bot run | migrate | sandbox`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from bot.config import ConfigError, check_slack_secrets, load_config
from bot.process.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the bot (migrates the database first)")
    run.add_argument("--config", default="app.yaml")
    worker = commands.add_parser("worker", help="(started by `run`) one worker process")
    worker.add_argument("--config", default="app.yaml")
    worker.add_argument("--index", type=int, default=0)
    migrate = commands.add_parser("migrate", help="upgrade the database schema to head")
    migrate.add_argument("--config", default="app.yaml")
    sandbox = commands.add_parser("sandbox",
                                  help="run the bot against a local Slack in the browser")
    sandbox.add_argument("--config", default="app.yaml")
    sandbox.add_argument("--port", type=int, default=8080)
    sandbox.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)

    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    configure_logging(config.log_level)

    if args.command == "migrate":
        from storage.migrate import upgrade_to_head

        upgrade_to_head(config.database.url)
        print(f"database is at the latest schema ({_safe_url(config.database.url)})")
        return 0
    if args.command == "run":
        try:
            check_slack_secrets(config)
        except ConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        from bot.process.lifecycle import run_forever

        try:
            asyncio.run(run_forever(config, args.config))
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
    os.execv(sys.executable, [sys.executable, "-m", "sandbox", "--config", args.config,
                              "--port", str(args.port), "--host", args.host])


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    sys.exit(main())
