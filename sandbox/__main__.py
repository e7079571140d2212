"""`python -m sandbox [--config app.yaml] [--port 8080] [--host 127.0.0.1]`: the bot against a
local Slack workspace emulator and an offline model, served as a web page. `python -m bot
sandbox` runs this same entry point."""

from __future__ import annotations

import argparse
import asyncio
import sys

from bot.config import ConfigError, load_config
from bot.process.logs import configure_from
from sandbox.run import run_sandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--config", default=None,
                        help="configuration file (default: ./app.yaml when present)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    configure_from(config)
    try:
        asyncio.run(run_sandbox(config, host=args.host, port=args.port))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
