"""The `rag` command: library subcommands here, service subcommands (serve, slack, eval) as plugins."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

from rag.config import Settings

log = logging.getLogger("rag")


def cli_path(value: str) -> Path:
    """A path typed on the command line, taken from the current directory (settings' own relative paths
    are taken from the project root instead)."""
    return Path(value).expanduser().absolute()


def add_common(parser: argparse.ArgumentParser) -> None:
    """Flags every subcommand shares; each overrides the matching Settings field when given."""
    parser.add_argument("--index", dest="index_dir", type=cli_path,
                        help="index folder (default: index/ in the project, or $RAG_INDEX_DIR)")
    parser.add_argument("--corpus", dest="corpus_dir", type=cli_path,
                        help="corpus folder (default: corpus/ in the project, or $RAG_CORPUS_DIR)")
    parser.add_argument("--model", help="embedding model: a name, a local path, or the bundled default")
    parser.add_argument("--backend", choices=["auto", "onnx", "torch"], help="embedding backend")


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by whichever common flags were given."""
    fields = ("index_dir", "corpus_dir", "model", "backend", "top_k")
    return Settings().with_overrides(**{f: getattr(args, f, None) for f in fields})


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _require_index_or_create(args: argparse.Namespace, settings: Settings) -> None:
    """An --index folder without an index is a typo unless --create says otherwise."""
    from rag.errors import UsageError

    if args.index_dir is not None and not args.create and not (settings.index_dir / "CURRENT").exists():
        raise UsageError(f"no index at {settings.index_dir}; add --create to make a new one there")


def _ingest(args: argparse.Namespace) -> int:
    from rag.ingest import ingest

    settings = settings_from(args)
    _require_index_or_create(args, settings)
    paths = [cli_path(p) for p in args.paths] or [settings.corpus_dir]
    summary = ingest(paths, settings, progress=not args.quiet, rebuild=args.rebuild, prune=args.prune,
                     dry_run=args.dry_run, say=_say)
    print(summary.describe())
    return 1 if summary.failed else 0  # the index is written either way; failed files are listed above


def _remove(args: argparse.Namespace) -> int:
    from rag.ingest import remove_documents

    summary = remove_documents(args.doc_ids, settings_from(args), dry_run=args.dry_run, say=_say)
    print(summary.describe())
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from rag.index import check_index, repair_index

    settings = settings_from(args)
    health = check_index(settings.index_dir)
    print(health.describe())
    if args.repair and not health.ok:
        for action in repair_index(settings.index_dir, on_wait=_say):
            print(f"repaired: {action}")
        health = check_index(settings.index_dir)
        print(health.describe())
    return 0 if health.ok else 1


def _check_k(k: int, settings: Settings) -> int:
    from rag.errors import UsageError

    if not 1 <= k <= settings.max_top_k:
        raise UsageError(f"-k must be between 1 and {settings.max_top_k} (RAG_MAX_TOP_K), got {k}")
    return k


def _search(args: argparse.Namespace) -> int:
    from rag.assistant import Assistant

    settings = settings_from(args)
    _check_k(args.k, settings)
    assistant = Assistant.open(settings)
    hits = assistant.search(args.query, k=args.k, mode=args.mode)
    if args.json:
        print(json.dumps([assistant.hit_dict(h) for h in hits], ensure_ascii=False, indent=2))
        return 0
    for h in hits:
        doc = assistant.documents[h.chunk.doc_id]
        print(f"{h.rank:>2}. {h.score:.4f} {doc.meta.title[:70]} [{h.chunk.chunk_id}] "
              f"dense={h.dense_rank} bm25={h.bm25_rank}")
        print("    " + " ".join(h.chunk.text.split())[:300])
    return 0


def _ask(args: argparse.Namespace) -> int:
    from rag.assistant import Assistant
    from rag.errors import QuestionError

    settings = settings_from(args)
    if args.k is not None:
        _check_k(args.k, settings)
    assistant = Assistant.open(settings)
    try:
        answer = assistant.ask(args.question, top_k=args.k)
    except QuestionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(answer.answer)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="add and update documents in the index (only new or changed text is embedded)",
                       description="Add the documents under PATHs to the index and update changed ones; "
                                   "documents from elsewhere stay. Exit status 1 when some files failed "
                                   "(the rest is indexed), 2 on errors.")
    p.add_argument("paths", nargs="*", help="files or folders (default: the corpus folder)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--prune", action="store_true",
                   help="also remove the index's documents from PATHs whose files are gone")
    p.add_argument("--create", action="store_true", help="make a new index at --index if it has none")
    p.add_argument("--dry-run", action="store_true", help="say what would change; write nothing")
    p.add_argument("--rebuild", action="store_true",
                   help="build anew from PATHs alone, replacing the index (for a corrupt or outdated one)")
    add_common(p)
    p.set_defaults(func=_ingest)

    p = sub.add_parser("remove", help="remove documents from the index by id")
    p.add_argument("doc_ids", nargs="+", metavar="DOC_ID")
    p.add_argument("--dry-run", action="store_true", help="say what would be removed; write nothing")
    add_common(p)
    p.set_defaults(func=_remove)

    p = sub.add_parser("doctor", help="check the index (checksums, counts, offsets); --repair rolls back")
    p.add_argument("--repair", action="store_true",
                   help="roll back to the newest good generation, remove corrupt and partial ones")
    add_common(p)
    p.set_defaults(func=_doctor)

    p = sub.add_parser("search", help="hybrid search over the index")
    p.add_argument("query")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--mode", choices=["hybrid", "bm25", "dense"], default="hybrid")
    p.add_argument("--json", action="store_true")
    add_common(p)
    p.set_defaults(func=_search)

    p = sub.add_parser("ask", help="answer a question with verbatim citations")
    p.add_argument("question")
    p.add_argument("-k", type=int, default=None, help="passages to retrieve")
    p.add_argument("--json", action="store_true")
    add_common(p)
    p.set_defaults(func=_ask)

    for ep in entry_points(group="rag.commands"):
        register: Callable[[argparse._SubParsersAction], None] = ep.load()
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    for name in ("rag", "api", "eval"):  # our own progress notes; libraries stay at warnings
        logging.getLogger(name).setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a clear one-line error for the user; -v shows the traceback
        from rag.errors import RagError

        if isinstance(exc, RagError) and not args.verbose:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
