"""Imported once by the fork server (api/forkserver.py) before it forks answering processes: the modules
they run and the spaCy pipeline. Nothing here starts a thread or opens a file an answering process keeps
(ONNX Runtime sessions, the embedding cache and the index are opened in each process after the fork)."""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging

import api.runtime  # noqa: F401
import rag.assistant  # noqa: F401
from rag.annotate import load_pipeline
from rag.config import Settings

for _name in ("onnxruntime", "tokenizers"):  # the ONNX backend's; absent with the torch backend
    with contextlib.suppress(ImportError):
        importlib.import_module(_name)

try:
    load_pipeline(Settings().spacy_pipeline)
except Exception as exc:  # each answering process loads it again and reports the error itself
    logging.getLogger("rag.api").debug("fork server: spaCy pipeline not preloaded: %s", exc)

gc.freeze()  # what is loaded so far is never collected: forks do not copy its pages to scan them
