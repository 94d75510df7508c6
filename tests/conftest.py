"""Session fixtures: one real embedding model and real indexes, shared by every test."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from rag.assistant import Assistant  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.embedding import Embedder, get_embedder  # noqa: E402
from rag.ingest import ingest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for the seed corpus with a temporary index and the repository's embedding cache."""
    return Settings(corpus_dir=ROOT / "corpus", index_dir=tmp_path_factory.mktemp("seed-index"),
                    cache_dir=ROOT / "index" / "cache", api_key=None, rate_limit_per_minute=0)


@pytest.fixture(scope="session")
def parse() -> Callable[[str], object]:
    """A question's parse as the composer makes it: the real spaCy pipeline, without the entity recogniser."""
    from rag.annotate import Annotator

    annotator = Annotator(Settings().spacy_pipeline)
    return lambda text: annotator.parse(text, entities=False)


@pytest.fixture(scope="session")
def embedder(settings: Settings) -> Embedder:
    return get_embedder(settings)


@pytest.fixture(scope="session")
def seed_assistant(settings: Settings, embedder: Embedder) -> Assistant:
    ingest([settings.corpus_dir], settings, embedder=embedder)
    return Assistant.open(settings, embedder=embedder)


@pytest.fixture(scope="session")
def make_assistant(settings: Settings, embedder: Embedder,
                   tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], Assistant]:
    """Factory: an Assistant over another corpus folder, indexed once per session into a temp folder."""
    made: dict[Path, Assistant] = {}

    def make(corpus_dir: Path) -> Assistant:
        corpus_dir = Path(corpus_dir).resolve()
        if corpus_dir not in made:
            index_dir = tmp_path_factory.mktemp(f"index-{corpus_dir.name}")
            corpus_settings = settings.with_overrides(corpus_dir=corpus_dir, index_dir=index_dir)
            ingest([corpus_dir], corpus_settings, embedder=embedder)
            made[corpus_dir] = Assistant.open(corpus_settings, embedder=embedder)
        return made[corpus_dir]

    return make
