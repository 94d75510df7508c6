"""`rag serve` and `rag slack`: the service subcommands, registered through the `rag.commands` entry points."""

from __future__ import annotations

import argparse
import logging
import sys

from rag.cli import add_common, add_engine, settings_from
from rag.config import Settings

log = logging.getLogger("rag.api")


def serve_settings(args: argparse.Namespace) -> Settings:
    return settings_from(args).with_overrides(host=args.host, port=args.port, workers=args.workers)


def _serve(args: argparse.Namespace) -> int:
    settings = serve_settings(args)
    if settings.workers > 1 and args.engine != "ray":  # its imports and the spaCy load overlap with ours
        from api.forkserver import start_fork_server

        start_fork_server()
    if args.ingest:  # `rag ingest` first, in this process: the fork server loads meanwhile
        from rag.cli import _require_index_or_create, run_ingest

        _require_index_or_create(args, settings)
        if run_ingest([settings.corpus_dir], settings) > 1:
            return 2
    import uvicorn
    import uvloop

    from api.app import create_app
    from api.server import raise_fd_limit, server_config

    raise_fd_limit()
    if settings.host not in ("127.0.0.1", "localhost", "::1") and not settings.api_key:
        log.warning("serving on %s without RAG_API_KEY: anyone who can reach this port can use the whole API",
                    settings.host)
    if args.engine == "ray":
        return _serve_on_ray(settings.with_overrides(replicas=args.replicas), args.ray_address)
    if settings.workers > 1:
        # Answers are computed in N supervised processes (per request, so load spreads evenly whatever the
        # connections); this process only speaks HTTP and loads no model or index.
        uvloop.run(_serve_from_processes(settings, args.log_level))
        return 0
    from rag.assistant import Assistant

    # Load before listening, so the first request is fast; serving never writes the index (`rag ingest` does).
    app = create_app(Assistant.open(settings), settings)
    uvicorn.Server(server_config(app, settings, log_level=args.log_level)).run()
    return 0


def _serve_on_ray(settings: Settings, address: str | None) -> int:
    """The app as a Ray Serve deployment of `settings.replicas` replicas, until Ctrl-C or SIGTERM."""
    import signal
    import threading

    from api.ray_serve import patient_proxy_env, serve_app, shutdown
    from rag.errors import UsageError
    from rag.ingest_ray import connect

    if settings.replicas < 1:
        raise UsageError(f"--replicas must be at least 1, got {settings.replicas}")
    patient_proxy_env()
    started = connect(address or settings.ray_address)
    stop = threading.Event()
    try:
        log.info("deploying %d replicas on Ray Serve (each loads the model and the index in %s) ...",
                 settings.replicas, settings.index_dir)
        serve_app(settings, settings.replicas)
        for sig in (signal.SIGINT, signal.SIGTERM):  # Ray's driver does not stop on a plain Ctrl-C
            signal.signal(sig, lambda *_: stop.set())
        log.info("serving on http://%s:%d with %d Ray Serve replicas; Ctrl-C stops", settings.host,
                 settings.port, settings.replicas)
        while not stop.wait(1.0):
            pass
        log.info("shutting down")
        return 0
    finally:
        shutdown()
        if started:
            import ray

            ray.shutdown()


async def _serve_from_processes(settings: Settings, log_level: str) -> None:
    """Start the answering processes, then listen: a process that cannot start is a one-line RagError."""
    import uvicorn

    from api.app import create_app
    from api.runtime import AnswerPool
    from api.server import server_config

    log.info("starting %d answering processes ...", settings.workers)
    pool = AnswerPool(settings, settings.workers)
    await pool.start()
    app = create_app(settings=settings, backend=pool)
    await uvicorn.Server(server_config(app, settings, log_level=log_level)).serve()


def register_serve(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="serve the HTTP API, the OpenAI-compatible chat API and the web page")
    p.add_argument("--host", help="address to listen on (default: $HOST or 127.0.0.1; 0.0.0.0 exposes the "
                                  "whole API to the network: set RAG_API_KEY)")
    p.add_argument("--port", type=int, help="port (default: $PORT or 8000)")
    p.add_argument("--workers", type=int,
                   help="answering processes, each loading its own model, supervised (a dead one is "
                        "replaced); 1 answers in threads of the server process (default: $RAG_WORKERS or 1)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--ingest", action="store_true",
                   help="first add and update the corpus folder in the index, as `rag ingest` does (make run)")
    add_engine(p, "a Ray Serve deployment of --replicas copies of the app (the [ray] extra; docs/SCALING.md)")
    p.add_argument("--replicas", type=int,
                   help="Ray Serve replicas with --engine ray, each with its own model and index "
                        "(default: $RAG_REPLICAS or 2)")
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
