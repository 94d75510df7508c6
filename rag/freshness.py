"""A cheap answer to "would `rag ingest` change anything?", so that `make run` on an unchanged corpus does not
pay for the ingest's imports (about 1 s).

After each ingest, a stamp beside the index records a digest of everything the outcome depends on (every
file and folder under the ingested paths by lstat, the settings, the library's source files, the installed
distributions and the live generation) and the summary a no-op ingest would print. The next ingest with
the same digest prints that summary without reading a file. Anything that differs, a file changed in the
same second as its stat (which mtime may not tell apart), a failed file, or an ingest holding the lock, and
the full ingest runs. Standard library only: this runs before the ingest's imports.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
import sysconfig
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.config import Settings

STAMP = ".ingest-stamp.json"
STAMP_VERSION = 1
RACY_NS = 2_000_000_000  # a file changed this close to its stat may change again unseen (mtime granularity)
_CODE = Path(__file__).resolve().parent
# Settings only serving reads (`make run PORT=...` passes them to the ingest too); every other one is keyed.
SERVING_ONLY = ("host", "port", "workers", "api_key", "rate_limit_per_minute", "request_timeout_s", "max_body_bytes",
                "max_question_chars", "max_top_k", "public_url", "header_timeout_s", "body_timeout_s",
                "max_header_bytes", "max_connections", "trusted_proxies", "auth_failures_per_minute", "feedback_db",
                "slack_bot_token", "slack_signing_secret", "slack_app_token", "slack_api_url", "slack_command")


def _entry(path: Path, rel: str) -> list[Any]:
    st = path.lstat()
    link = os.readlink(path) if path.is_symlink() else None
    return [rel, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, link]


def corpus_state(paths: Sequence[Path]) -> tuple[list[Any], bool] | None:
    """Every file and folder under `paths` as lstat fields, and whether one changed within RACY_NS of now;
    None when a path is missing (the ingest then says so)."""
    now = time.time_ns()
    out: list[Any] = []
    for given in paths:
        given = Path(given).absolute()
        try:
            if given.is_dir() and not given.is_symlink():
                out.append(_entry(given, str(given)))
                for folder, dirs, files in os.walk(given, followlinks=False):
                    dirs.sort()
                    here = Path(folder)
                    for name in sorted(dirs + files):
                        out.append(_entry(here / name, os.path.relpath(here / name, given)))
            else:  # a file given by name, with its sidecar and any other file of the same stem
                out.append(_entry(given, str(given)))
                for sibling in sorted(given.parent.glob(f"{given.stem}.*")):
                    out.append(_entry(sibling, str(sibling)))
        except OSError:
            return None
    newest = max((max(e[3], e[4]) for e in out), default=0)
    return out, newest >= now - RACY_NS


def _code_state() -> list[Any]:
    """The library's own sources and the installed distributions (their names carry the versions)."""
    sources = [[str(p.relative_to(_CODE)), p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(_CODE.rglob("*.py"))]
    site = Path(sysconfig.get_paths()["purelib"])
    try:
        dists = sorted(n for n in os.listdir(site) if n.endswith(".dist-info"))
    except OSError:
        dists = []
    return [sys.version, sources, dists]


def _index_state(index_dir: Path) -> list[Any] | None:
    """The live generation's name and its manifest's lstat; None when there is none."""
    try:
        name = (index_dir / "CURRENT").read_text(encoding="utf-8").strip()
        st = (index_dir / name / "manifest.json").stat()
    except (OSError, UnicodeDecodeError):
        return None
    return [name, st.st_size, st.st_mtime_ns, st.st_ino]


def digest(paths: Sequence[Path], corpus: list[Any], settings: Settings, prune: bool) -> str | None:
    index = _index_state(settings.index_dir)
    if index is None:
        return None
    key = [STAMP_VERSION, [str(Path(p).absolute()) for p in paths], prune, corpus, index, _code_state(),
           settings.model_dump(mode="json", exclude=set(SERVING_ONLY))]
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def _ingest_running(index_dir: Path) -> bool:
    try:
        fd = os.open(index_dir / ".lock", os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def unchanged_summary(paths: Sequence[Path], settings: Settings, prune: bool = False) -> list[str] | None:
    """The lines a no-op `rag ingest` of `paths` would print (the first without its seconds), when the
    stamp shows nothing changed since the last ingest; None when the full ingest must look."""
    try:
        stamp = json.loads((settings.index_dir / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stamp, dict) or stamp.get("version") != STAMP_VERSION or _ingest_running(settings.index_dir):
        return None
    state = corpus_state(paths)
    if state is None:
        return None
    corpus, _ = state
    if digest(paths, corpus, settings, prune) != stamp.get("digest"):
        return None
    lines = stamp.get("summary")
    return lines if isinstance(lines, list) and all(isinstance(x, str) for x in lines) else None


def write_stamp(paths: Sequence[Path], before: tuple[list[Any], bool] | None, settings: Settings, prune: bool,
                summary_lines: list[str]) -> None:
    """Record what the next no-op ingest would print, keyed by the corpus as stat'ed before this ingest
    read it (`before`); nothing is recorded when a file changed too recently to be told apart later."""
    path = settings.index_dir / STAMP
    path.unlink(missing_ok=True)
    if before is None:
        return
    corpus, racy = before
    if racy:
        return
    key = digest(paths, corpus, settings, prune)
    if key is None:
        return
    tmp = path.with_name(f"{STAMP}.tmp{os.getpid()}")
    try:
        tmp.write_text(json.dumps({"version": STAMP_VERSION, "digest": key, "summary": summary_lines}),
                       encoding="utf-8")
        tmp.replace(path)
    except OSError:  # a full disk: the next ingest just looks at every file
        tmp.unlink(missing_ok=True)
