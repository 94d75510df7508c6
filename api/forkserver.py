"""The fork server answering processes start from: one process imports what they use and loads the spaCy
pipeline once, so each answering process (at start, or replacing one that died) is a fork that only opens
the index and its ONNX Runtime session, about a second instead of five."""

from __future__ import annotations

import multiprocessing
import multiprocessing.context

PRELOAD = ["api.preload"]  # imported by the fork server before its first fork


def fork_context() -> multiprocessing.context.ForkServerContext:
    """multiprocessing's forkserver context with our preload (which takes effect when the server starts)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context  # type: ignore[return-value]


def start_fork_server() -> None:
    """Start the fork server now: it imports and loads for a few seconds while this process goes on."""
    from multiprocessing import forkserver

    fork_context()
    forkserver.ensure_running()
