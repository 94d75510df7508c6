"""Run by tests/test_faults_index.py inside a private mount namespace where INDEX is a small tmpfs:
ingest, fill the disk, ingest more (must fail cleanly), free the space, ingest again. Prints one JSON
object with what it saw; the test asserts on it (the tmpfs vanishes with the namespace)."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

from rag.cli import main
from rag.index import current_generation, generations, load_data, partial_generations


def run(argv: list[str]) -> dict:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


def state(index: Path) -> dict:
    live = current_generation(index)
    return {"live": live.name if live else None, "generations": [g.name for g in generations(index)],
            "partial": [p.name for p in partial_generations(index)],
            "documents": sorted(load_data(index).documents)}


def fill(index: Path, leave_bytes: int) -> Path:
    """Write a filler file until the device is full, then give back `leave_bytes`."""
    filler = index / "filler.bin"
    with open(filler, "wb") as fh:
        with contextlib.suppress(OSError):
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
    with contextlib.suppress(OSError):
        with open(filler, "r+b") as fh:
            fh.truncate(max(0, filler.stat().st_size - leave_bytes))
    return filler


def main_(index: Path, first: Path, second: Path) -> None:
    report: dict = {}
    report["first"] = run(["ingest", str(first), "--index", str(index), "--create", "-q"])
    report["after_first"] = state(index)
    filler = fill(index, leave_bytes=16384)
    report["full"] = run(["ingest", str(second), "--index", str(index), "-q"])
    report["after_full"] = state(index)
    filler.unlink()
    report["freed"] = run(["ingest", str(second), "--index", str(index), "-q"])
    report["after_freed"] = state(index)
    print(json.dumps(report))


if __name__ == "__main__":
    main_(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
