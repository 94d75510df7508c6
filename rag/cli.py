"""The `rag` command: index articles, then ask about them with cited answers, search, chat or serve.

`rag serve`, `rag slack` and `rag eval` are defined by the api and eval packages (entry points in the
`rag.commands` group); the commands here import what they need only when they run, so they start fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, entry_points, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.config import Settings

if TYPE_CHECKING:
    from rich.text import Text

    from rag.assistant import Assistant
    from rag.types import Hit

log = logging.getLogger("rag")

PROBE_TIMEOUT_S = 0.3  # how long `rag ask` waits for a local server's /health before answering in-process
CHAT_COMMANDS = "/sources (what the last answer cites), /explain (how it was found), /quit"
CHAT_HISTORY_TURNS = 20  # turns sent with each chat question: follow-ups need only the recent ones

EXAMPLES = """\
examples:
  rag ingest                                 index corpus/ (only new or changed documents are embedded)
  rag ask "How much did the city spend on the new stadium?"
  rag chat                                   ask, follow up ("and on the port?"), /sources, /explain, /quit
  rag search "stadium budget" -k 5           passages with the matching words highlighted
  rag sources                                what is indexed: titles, publishers, dates, chunks
  rag serve                                  HTTP API and chat page on http://127.0.0.1:8000
  rag eval                                   accuracy on eval/seed.jsonl

`rag ask` and `rag chat` answer through a `rag serve` already running on this machine (RAG_HOST,
RAG_PORT) when it serves the same index, and in this process otherwise. Settings are RAG_* environment
variables (rag/config.py); flags override them.
"""


def package_version() -> str:
    try:
        return version("rag-cited")
    except PackageNotFoundError:  # a checkout that was not installed
        return "0.0.0"


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


def add_engine(parser: argparse.ArgumentParser, ray_help: str) -> None:
    """`--engine local|ray` and `--ray-address`, for the commands that can run on a Ray cluster."""
    parser.add_argument("--engine", choices=["local", "ray"], default="local",
                        help=f"local (default): this machine; ray: {ray_help}")
    parser.add_argument("--ray-address", metavar="ADDR",
                        help="the Ray cluster to join (auto on a cluster node, or ray://head:10001; default: $RAG_RAY_ADDRESS or "
                             "$RAY_ADDRESS, else a local cluster started for this command)")


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by whichever common flags were given."""
    fields = ("index_dir", "corpus_dir", "model", "backend", "top_k")
    return Settings().with_overrides(**{f: getattr(args, f, None) for f in fields})


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _require_index_or_create(args: argparse.Namespace, settings: Settings) -> None:
    """An --index folder without an index is a typo unless --create says otherwise."""
    from rag.errors import UsageError

    create = getattr(args, "create", False)  # `rag serve --ingest` has no --create
    if args.index_dir is not None and not create and not (settings.index_dir / "CURRENT").exists():
        raise UsageError(f"no index at {settings.index_dir}; add --create to make a new one there")


def _ingest(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    _require_index_or_create(args, settings)
    paths = [cli_path(p) for p in args.paths] or [settings.corpus_dir]
    return run_ingest(paths, settings, progress=not args.quiet, rebuild=args.rebuild, prune=args.prune,
                      dry_run=args.dry_run, engine=args.engine, ray_address=args.ray_address)


def run_ingest(paths: Sequence[Path], settings: Settings, *, progress: bool = True, rebuild: bool = False,
               prune: bool = False, dry_run: bool = False, engine: str = "local", ray_address: str | None = None
               ) -> int:
    """`rag ingest` (also run by `rag serve --ingest`): its summary printed, 1 when some file failed."""
    import time

    from rag.freshness import unchanged_summary

    start = time.perf_counter()
    if not (rebuild or dry_run):
        lines = unchanged_summary(paths, settings, prune=prune)
        if lines is not None:  # nothing changed since the last ingest: say what it would say, without reading
            print("\n".join([f"{lines[0]}, {time.perf_counter() - start:.1f} s", *lines[1:]]), flush=True)
            return 0
    from rag.ingest import ingest

    if engine == "ray":
        from rag.ingest_ray import RayEngine

        with RayEngine(settings, ray_address) as ray_engine:
            summary = ingest(paths, settings, progress=progress, rebuild=rebuild, prune=prune, dry_run=dry_run,
                             say=_say, engine=ray_engine)
    else:
        summary = ingest(paths, settings, progress=progress, rebuild=rebuild, prune=prune, dry_run=dry_run,
                         say=_say)
    print(summary.describe(), flush=True)
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
    print_hits(assistant, hits, args.query)
    return 0


def _ask(args: argparse.Namespace) -> int:
    from rag.errors import QuestionError

    settings = settings_from(args)
    if args.k is not None:
        _check_k(args.k, settings)
    answers = open_answers(settings, local=args.local)
    try:
        answer = answers.ask(args.question, top_k=args.k, explain=args.explain)
    except QuestionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(answer, ensure_ascii=False, indent=2))
    else:
        print_answer(answer)
        if args.explain:
            print_explanation(answer)
    return 0


# ---------------------------------------------------------------- where answers come from


def _accepts(func: Callable[..., Any], name: str) -> bool:
    import inspect

    return name in inspect.signature(func).parameters


class LocalAnswers:
    """Answers from the index loaded in this process."""

    def __init__(self, settings: Settings) -> None:
        from rag.assistant import Assistant

        self.assistant = Assistant.open(settings)
        self.where = f"the index in {settings.index_dir}, loaded in this process"

    def ask(self, question: str, history: Sequence[dict[str, str]] = (), top_k: int | None = None,
            explain: bool = False) -> dict[str, Any]:
        from rag.types import Turn

        turns = [Turn(t["role"], t["content"]) for t in history]
        extra = {"explain": True} if explain and _accepts(self.assistant.ask, "explain") else {}
        return self.assistant.ask(question, history=turns, top_k=top_k, **extra).to_dict()


class ServerGone(Exception):
    """The server stopped answering (connection refused, 5xx): answer in-process instead."""


class ServerAnswers:
    """Answers from a `rag serve` on this machine, through its `POST /ask`."""

    def __init__(self, url: str, api_key: str | None, timeout_s: float) -> None:
        self.url = url
        self.where = f"the server at {url}"
        self.headers = {"Content-Type": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.timeout_s = timeout_s

    def ask(self, question: str, history: Sequence[dict[str, str]] = (), top_k: int | None = None,
            explain: bool = False) -> dict[str, Any]:
        from rag.errors import QuestionError

        body: dict[str, Any] = {"question": question, "history": list(history)}
        if top_k is not None:
            body["top_k"] = top_k
        if explain:
            body["explain"] = True
        status, reply = self._post("/ask", body)
        if status == 422 and explain:  # a server that does not know `explain` yet
            return self.ask(question, history, top_k)
        if status == 200:
            return reply
        message = (reply.get("error") or {}).get("message") if isinstance(reply, dict) else None
        if status in (400, 413, 422):
            raise QuestionError(message or f"the server refused the question (HTTP {status})")
        if status in (401, 403):
            from rag.errors import RagError

            raise RagError(f"the server at {self.url} refused the API key (HTTP {status}): set RAG_API_KEY")
        raise ServerGone(f"HTTP {status}: {message}")

    def _post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        from urllib.error import HTTPError
        from urllib.request import Request, urlopen

        request = Request(self.url + path, data=json.dumps(body).encode(), headers=self.headers, method="POST")
        try:
            with urlopen(request, timeout=self.timeout_s) as resp:
                return resp.status, json.load(resp)
        except HTTPError as exc:
            try:
                return exc.code, json.load(exc)
            except ValueError:
                return exc.code, None
        except (OSError, ValueError) as exc:
            raise ServerGone(str(exc)) from exc


class Answers:
    """Answers through a running local server while it answers, else in this process (loaded once)."""

    def __init__(self, settings: Settings, server: ServerAnswers | None) -> None:
        self.settings = settings
        self.server = server
        self.local: LocalAnswers | None = None

    @property
    def where(self) -> str:
        return self.server.where if self.server else self._local().where

    def _local(self) -> LocalAnswers:
        if self.local is None:
            self.local = LocalAnswers(self.settings)
        return self.local

    def ask(self, question: str, history: Sequence[dict[str, str]] = (), top_k: int | None = None,
            explain: bool = False) -> dict[str, Any]:
        if self.server is not None:
            try:
                return self.server.ask(question, history, top_k, explain)
            except ServerGone as exc:
                log.warning("the server at %s stopped answering (%s); answering in this process", self.server.url, exc)
                self.server = None
        return self._local().ask(question, history, top_k, explain)


def _live_generation(index_dir: Path) -> tuple[str, str | None] | None:
    """The live generation of an index and when it was built (CURRENT -> gen-*/manifest.json, see
    rag/index.py), read without loading the index."""
    try:
        gen = (index_dir / "CURRENT").read_text(encoding="utf-8").strip()
        return gen, json.loads((index_dir / gen / "manifest.json").read_text(encoding="utf-8")).get("built_at")
    except (OSError, ValueError, AttributeError):
        return None


def local_server(settings: Settings) -> str | None:
    """The URL of a `rag serve` on this machine that serves the same index (the same generation), if its
    /health answers within PROBE_TIMEOUT_S."""
    from urllib.request import Request, urlopen

    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(settings.host, settings.host)
    url = f"http://{f'[{host}]' if ':' in host else host}:{settings.port}"
    try:
        with urlopen(Request(url + "/health"), timeout=PROBE_TIMEOUT_S) as resp:
            health = json.load(resp)
    except (OSError, ValueError):
        return None
    if not isinstance(health, dict) or health.get("status") != "ok" or "built_at" not in health:
        return None
    ours = _live_generation(settings.index_dir)
    if ours is not None:
        gen, built = ours
        same = health["generation"] == gen if health.get("generation") else health["built_at"] == built
        if not same:
            log.debug("the server at %s serves another index (%s, ours %s)", url,
                      health.get("generation") or health["built_at"], gen)
            return None
    return url


def open_answers(settings: Settings, local: bool = False) -> Answers:
    """Where this command's answers come from: a running local server unless `local`, else this process."""
    url = None if local else local_server(settings)
    log.debug("answering through %s", url or "this process")
    server = ServerAnswers(url, settings.api_key, settings.request_timeout_s + 5) if url else None
    return Answers(settings, server)


# ---------------------------------------------------------------- showing answers, hits and sources


def format_confidence(value: Any) -> str | None:
    """The answer's confidence as shown to people ("confidence 0.82 (high)"), None when there is none."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    level = "high" if value >= 0.8 else "medium" if value >= 0.5 else "low"
    return f"confidence {value:.2f} ({level})"


def print_answer(answer: dict[str, Any]) -> None:
    print(answer["answer"])
    confidence = format_confidence(answer.get("confidence"))
    if confidence:
        print(confidence)


def print_citations(answer: dict[str, Any] | None) -> None:
    """What an answer cites (or, for an abstention, the related passages), with where each quote is."""
    if answer is None:
        print("no answer yet: ask a question first")
        return
    for c in answer.get("citations") or []:
        where = ", ".join(x for x in (c.get("publisher"), c.get("published")) if x)
        print(f"[{c['n']}] {c['title']}" + (f" ({where})" if where else ""))
        print(f"    {c['doc_id']}, characters {c['start']}-{c['end']}: \"{c['quote']}\"")
    if not answer.get("citations"):
        related = answer.get("related") or []
        print("the answer cites no source" + ("; related passages:" if related else ""))
        for r in related:
            print(f"  - {r['title']} ({r['doc_id']}, characters {r['start']}-{r['end']}): \"{r['quote']}\"")


def print_explanation(answer: dict[str, Any]) -> None:
    """How an answer was reached: the composer's trace when it gives one, else figures, conflicts, timings."""
    trace = answer.get("trace")
    if trace:
        print(json.dumps(trace, ensure_ascii=False, indent=2, default=str))
    else:
        print("answerable: " + ("yes" if answer.get("answerable") else "no (nothing in the sources states it)"))
        if answer.get("short_answer"):
            print(f"short answer: {answer['short_answer']}")
        for f in answer.get("figures") or []:
            value = f"{f['value']:,.0f}" if float(f["value"]).is_integer() else f"{f['value']:,}"
            print(f"figure {f['text']!r} = {value} {f['unit']}, quoted in [{f['citation']}]")
        for c in answer.get("conflicts") or []:
            values = "; ".join(f"{v['text']} [{v['citation']}]" for v in c["values"])
            print(f"conflict on {c['quantity']}: {values}")
    confidence = format_confidence(answer.get("confidence"))
    if confidence:
        print(confidence)
    timings = answer.get("timings_ms") or {}
    if timings:
        print("timings: " + ", ".join(f"{k} {v:.1f} ms" for k, v in timings.items()))


def highlight(text: str, query: str) -> Text:
    """`text` with the words that match the query (same stem; CJK by bigram) in bold."""
    from rich.text import Text

    from rag.lexical import _CJK, WORD, tokenize

    wanted = set(tokenize(query))
    out = Text(text)
    for m in WORD.finditer(text):
        word = m.group()
        if _CJK.match(word):
            grams = [(i, word[i : i + 2]) for i in range(len(word) - 1)] or [(0, word)]
            for i, gram in grams:
                if gram in wanted:
                    out.stylize("bold yellow", m.start() + i, m.start() + i + len(gram))
        elif wanted.intersection(tokenize(word)):
            out.stylize("bold yellow", m.start(), m.end())
    return out


def snippet(text: str, query: str, width: int = 320) -> str:
    """About `width` characters of `text` around its first word that matches the query, on one line."""
    from rag.lexical import WORD, tokenize

    flat = " ".join(text.split())
    wanted = set(tokenize(query))
    first = next((m.start() for m in WORD.finditer(flat) if wanted.intersection(tokenize(m.group()))), 0)
    start = max(0, first - width // 4)
    if start:
        start = flat.find(" ", start) + 1 or start
    end = min(len(flat), start + width)
    if end < len(flat):
        end = flat.rfind(" ", start, end) if flat.rfind(" ", start, end) > start else end
    return ("…" if start else "") + flat[start:end] + ("…" if end < len(flat) else "")


def print_hits(assistant: Assistant, hits: Sequence[Hit], query: str) -> None:
    """Ranked passages: title, publisher and date, the matching words highlighted, which search found it."""
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False, soft_wrap=True)
    if not hits:
        console.print("no passage matches")
    for h in hits:
        meta = assistant.documents[h.chunk.doc_id].meta
        head = Text.assemble((f"{h.rank:>2}. ", "bold"), (meta.title, "bold"))
        where = " · ".join(x for x in (meta.publisher, meta.published) if x)
        if where:
            head.append(f"  {where}", style="dim")
        console.print(head)
        body = Text("    ").append(highlight(snippet(h.chunk.text, query), query))
        console.print(body)
        found = [name for name, rank in (("words", h.bm25_rank), ("meaning", h.dense_rank)) if rank is not None]
        console.print(Text(f"    found by {' and '.join(found)} · {h.chunk.chunk_id}", style="dim"))


def indexed_sources(index_dir: Path) -> list[dict[str, Any]]:
    """Every indexed document's id, title, publisher, date and chunk count, in id order."""
    from rag.index import load_data

    data = load_data(index_dir, with_bm25=False)
    counts: dict[str, int] = {}
    for c in data.chunks:
        counts[c.doc_id] = counts.get(c.doc_id, 0) + 1
    copies: dict[str, list[str]] = {}
    for dup, kept in (data.manifest.get("duplicates") or {}).items():
        copies.setdefault(kept, []).append(dup)
    return [{"doc_id": d.doc_id, "title": d.meta.title, "publisher": d.meta.publisher,
             "published": d.meta.published, "chunks": counts.get(d.doc_id, 0),
             "copies": sorted(copies.get(d.doc_id, []))}
            for d in sorted(data.documents.values(), key=lambda d: d.doc_id)]


def _sources(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    rows = indexed_sources(settings.index_dir)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False, soft_wrap=True)
    console.print(f"{len(rows)} documents, {sum(r['chunks'] for r in rows)} chunks in {settings.index_dir}")
    for i, r in enumerate(rows, start=1):
        console.print(Text.assemble((f"{i:>3}. ", "bold"), (r["title"], "bold")))
        facts = [r["publisher"] or "publisher unknown", r["published"] or "undated",
                 f"{r['chunks']} chunk{'s' if r['chunks'] != 1 else ''}", r["doc_id"]]
        if r["copies"]:
            facts.append(f"{len(r['copies'])} identical: {', '.join(r['copies'])}")
        console.print(Text("     " + " · ".join(facts), style="dim"))
    return 0


# ---------------------------------------------------------------- chat


def _chat(args: argparse.Namespace) -> int:
    """A conversation on stdin: each question may follow up on the ones before (history is sent along)."""
    from rag.errors import QuestionError

    answers = open_answers(settings_from(args), local=args.local)
    interactive = sys.stdin.isatty()
    if interactive:
        import readline  # noqa: F401  # line editing and history for input()
    print(f"Ask about the indexed articles; follow-up questions use the conversation so far. "
          f"Commands: {CHAT_COMMANDS}.", flush=True)
    print(f"Answers come from {answers.where}.")
    history: list[dict[str, str]] = []
    last: dict[str, Any] | None = None
    asked: tuple[str, list[dict[str, str]]] | None = None  # the last question and the history it had
    while True:
        try:
            line = input("> " if interactive else "").strip()
        except EOFError:
            break
        except KeyboardInterrupt:
            print()
            break
        if not line:
            continue
        if line in ("/quit", "/exit", "/q"):
            break
        if line == "/sources":
            print_citations(last)
        elif line == "/explain":
            if asked is None:
                print("no answer yet: ask a question first")
            else:
                print_explanation(answers.ask(asked[0], asked[1], args.k, explain=True))
        elif line.startswith("/"):
            print(f"unknown command {line}; commands: {CHAT_COMMANDS}")
        else:
            if not interactive:
                print(f"> {line}")
            try:
                last = answers.ask(line, history[-CHAT_HISTORY_TURNS:], args.k)
            except QuestionError as exc:
                print(f"error: {exc}")
                continue
            asked = (line, history[-CHAT_HISTORY_TURNS:])
            print_answer(last)
            history += [{"role": "user", "content": line}, {"role": "assistant", "content": last["answer"]}]
    return 0


# ---------------------------------------------------------------- the parser


def _subcommand(sub: argparse._SubParsersAction, name: str, help_: str, examples: str,
                func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_, description=help_[0].upper() + help_[1:] + ".",
                       epilog=f"examples:\n{examples}", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=func)
    return p


def add_answer_commands(sub: argparse._SubParsersAction) -> None:
    """`ask`, `chat`, `sources`: the commands people use once an index exists."""
    p = _subcommand(sub, "ask", "answer a question with verbatim citations (through a running server if any)",
                    '  rag ask "How much did the city spend on the new stadium?"\n'
                    '  rag ask "Who leads the project?" --json   the answer as JSON (the HTTP /ask contract)\n'
                    '  rag ask "..." --local                 answer in this process even if a server runs\n'
                    '  rag ask "..." --explain               the features and decisions behind the answer',
                    _ask)
    p.add_argument("question")
    p.add_argument("-k", type=int, default=None, help="passages to retrieve")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.add_argument("--local", action="store_true", help="answer in this process even when a server is running")
    p.add_argument("--explain", action="store_true", help="also print why the answer was chosen or refused")
    add_common(p)

    p = _subcommand(sub, "chat", "ask questions one after another, with follow-ups",
                    "  rag chat\n"
                    "  > How much did the city spend on the new stadium?\n"
                    "  > and on the port?       a follow-up, read against the question before\n"
                    f"  {CHAT_COMMANDS}\n"
                    "  echo 'How much did the city spend on the new stadium?' | rag chat     questions from stdin",
                    _chat)
    p.add_argument("-k", type=int, default=None, help="passages to retrieve per question")
    p.add_argument("--local", action="store_true", help="answer in this process even when a server is running")
    add_common(p)

    p = _subcommand(sub, "sources", "list what is indexed: titles, publishers, dates, chunk counts",
                    "  rag sources\n  rag sources --json\n  rag sources --index other-index/", _sources)
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    add_common(p)


def command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named on a command line (the first word that is not an option), if any."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `rag` parser. Given the command about to run, only that command's plugin is imported (a built-in
    imports none): `rag ask` need not load the evaluation or serving code to start."""
    parser = argparse.ArgumentParser(prog="rag", description=__doc__.split("\n\n")[0], epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"rag {package_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

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
    add_engine(p, "embedding and annotation on a Ray cluster's actors (the [ray] extra; docs/SCALING.md)")
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

    p = _subcommand(sub, "search", "find passages (hybrid: words and meaning); no answer composed",
                    '  rag search "stadium budget"\n  rag search "2nm chips" -k 3 --mode bm25\n'
                    '  rag search "..." --json               ranks, fused and per-retriever scores as JSON',
                    _search)
    p.add_argument("query")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--mode", choices=["hybrid", "bm25", "dense"], default="hybrid")
    p.add_argument("--json", action="store_true")
    add_common(p)

    add_answer_commands(sub)
    if command in sub.choices:  # a built-in command
        return parser
    plugins = list(entry_points(group="rag.commands"))
    for ep in [ep for ep in plugins if ep.name == command] or plugins:  # else all, for help or an unknown word
        register: Callable[[argparse._SubParsersAction], None] = ep.load()
        register(sub)
    return parser


class _CliFormatter(logging.Formatter):
    """Our own notes as plain lines; everything else says its level and where it came from."""

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno == logging.INFO and record.name.split(".")[0] in ("rag", "api", "eval"):
            return record.getMessage()
        return f"{record.levelname.lower()}: {record.name}: {super().format(record)}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(command_of(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    handler = logging.StreamHandler()
    handler.setFormatter(_CliFormatter("%(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, handlers=[handler])
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
