"""`rag serve` and `rag slack`: the service subcommands, registered through the `rag.commands` entry points."""

from __future__ import annotations

import argparse
import sys

from rag.cli import add_common, settings_from
from rag.config import Settings

GRACEFUL_SHUTDOWN_S = 10


def serve_settings(args: argparse.Namespace) -> Settings:
    return settings_from(args).with_overrides(host=args.host, port=args.port, workers=args.workers)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from rag.assistant import Assistant

    settings = serve_settings(args)
    # Load before listening, so the first request is fast; serving never writes the index (`rag ingest` does).
    assistant = Assistant.open(settings)
    # One server process; with --workers N > 1, answers are computed in N processes (per request, so
    # load spreads evenly whatever the connections) and this process only speaks HTTP.
    app = create_app(assistant, settings, answer_processes=settings.workers if settings.workers > 1 else 0)
    uvicorn.run(app, host=settings.host, port=settings.port, loop="uvloop", http="httptools",
                log_level=args.log_level, access_log=False, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    return 0


def register_serve(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="serve the HTTP API, the OpenAI-compatible chat API and the web page")
    p.add_argument("--host", help="address to listen on (default: $HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: $PORT or 8000)")
    p.add_argument("--workers", type=int,
                   help="answering processes, each loading its own model; 1 answers in threads of the "
                        "server process (default: $RAG_WORKERS or 1)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    add_common(p)
    p.set_defaults(func=_serve)


def _slack(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if not args.socket:
        print("Slack over HTTP is served by `rag serve` at POST /slack/events when SLACK_BOT_TOKEN and "
              "SLACK_SIGNING_SECRET are set; use `rag slack --socket` for Socket Mode.", file=sys.stderr)
        return 2
    missing = [name for name, value in (("SLACK_BOT_TOKEN", settings.slack_bot_token),
                                        ("SLACK_APP_TOKEN", settings.slack_app_token)) if not value]
    if missing:
        print(f"error: Socket Mode needs {' and '.join(missing)} in the environment", file=sys.stderr)
        return 2
    from api.slack import run_socket_mode
    from rag.assistant import Assistant

    run_socket_mode(Assistant.open(settings), settings)
    return 0


def register_slack(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("slack", help="run the Slack bot (Socket Mode with --socket)")
    p.add_argument("--socket", action="store_true", help="connect over Socket Mode (needs SLACK_APP_TOKEN)")
    add_common(p)
    p.set_defaults(func=_slack)
