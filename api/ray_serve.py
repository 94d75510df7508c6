"""`rag serve --engine ray --replicas N`: the HTTP app of api/app.py as a Ray Serve deployment.

Each replica is one Ray actor that builds the same FastAPI app and loads the model and the index generation
named by `CURRENT` in `settings.index_dir`, a folder every node of the cluster sees (a shared file system
or an object-store mount); Serve's proxy spreads requests over the replicas, so answering scales out by
adding replicas. Responses carry `x-rag-replica` (which replica answered). Ray is imported here only.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from rag.config import Settings
from rag.errors import RagError

try:
    from ray import serve
except ImportError as exc:  # the optional [ray] extra
    raise RagError("`--engine ray` needs the [ray] extra: pip install -e '.[ray]' (ray[data,serve]==2.60.0)"
                   ) from exc

log = logging.getLogger("rag.api")

APP_NAME = "rag"
REPLICA_HEADER = b"x-rag-replica"
# Serve gives its HTTP proxy 5 s to say it is ready and kills it after three misses: too short on a busy
# machine. Read by Serve's controller, so set before the cluster starts (a running cluster keeps its own).
PATIENT_PROXY = {"RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "60", "RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S": "60"}


def patient_proxy_env() -> None:
    """Longer proxy readiness and health checks for a Ray cluster this process starts (unless set)."""
    for name, value in PATIENT_PROXY.items():
        os.environ.setdefault(name, value)


class ReplicaHeader:
    """ASGI middleware: names the replica that answered in every HTTP response."""

    def __init__(self, app: Any, replica: str) -> None:
        self.app = app
        self.replica = replica.encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_named(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (REPLICA_HEADER, self.replica)]}
            await send(message)

        await self.app(scope, receive, send_named)


@serve.ingress()
class RagReplica:
    """One replica: the service app, built in the replica (its lifespan opens the Assistant there)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __serve_build_asgi_app__(self) -> Any:
        from api.app import create_app

        try:
            replica = serve.get_replica_context().replica_id.unique_id
        except (RuntimeError, AttributeError):
            replica = str(os.getpid())
        app = create_app(settings=self.settings)
        app.add_middleware(ReplicaHeader, replica=replica)
        return app


def deployment(settings: Settings, replicas: int) -> Any:
    """The bound Serve application: `replicas` copies of the app, each reserving `ray_cpus_per_replica`."""
    return serve.deployment(RagReplica, name=APP_NAME, num_replicas=replicas,
                            ray_actor_options={"num_cpus": settings.ray_cpus_per_replica}).bind(settings)


def serve_app(settings: Settings, replicas: int) -> None:
    """Start Serve's HTTP proxy on settings.host:port and deploy the replicas; returns once every replica
    has loaded its index and answers (Ray must be running: `rag.ingest_ray.connect`)."""
    serve.start(http_options={"host": settings.host, "port": settings.port})
    serve.run(deployment(settings, replicas), name=APP_NAME, route_prefix="/")


def shutdown() -> None:
    """Remove the deployment and stop Serve (its proxy and controller)."""
    serve.shutdown()
