"""bge-small-en-v1.5 rebuilt in PyTorch from its ONNX export (the set-up's conversion, run again here)
gives the ONNX model's own CLS vectors, measured with ONNX Runtime on 100 review texts; a conversion
that maps a weight wrong does not."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reviewlake.encoders import bert_from_onnx, load_encoder, load_tokenizer
from reviewlake.generate import generate
from tests.conftest import REPO

BGE = Path(os.environ.get("REVIEWLAKE_CACHE", Path.home() / ".cache" / "reviewlake")) / "encoders" / "bge-small-en-v1.5"
ONNX, TOKENIZER = BGE / "onnx" / "bge-small-en-v1.5.onnx", BGE / "onnx" / "bge-small-en-v1.5-tokenizer.json"


@pytest.fixture(scope="module")
def texts(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The 40 hand-written product reviews and 60 generated ones (short and long)."""
    checks = pd.read_csv(REPO / "conf" / "checks" / "product_reviews.csv", dtype=str)["text"].tolist()
    corpus = generate("amazon-tsv", tmp_path_factory.mktemp("bge"), 60, seed=3, malformed_share=0.0)
    generated = pd.read_csv(corpus.files[0], sep="\t", usecols=["review_body"], dtype=str, quoting=3)
    return checks + generated["review_body"].fillna("").tolist()[:60]


def cls_vectors(folder: Path, texts: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    import torch

    tokenizer, model = load_tokenizer(str(folder)), load_encoder(str(folder)).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=512, return_tensors="np")
    feeds = {k: batch[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        states = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).last_hidden_state
    return states[:, 0].numpy(), feeds


def test_bge_in_pytorch_gives_the_onnx_models_cls_vectors(texts: list[str], tmp_path: Path) -> None:
    import onnxruntime as ort

    assert len(texts) == 100
    torch_cls, feeds = cls_vectors(bert_from_onnx(ONNX, TOKENIZER, tmp_path / "bge"), texts)
    assert feeds["input_ids"].shape[1] > 128  # long reviews too, not only snippets
    session = ort.InferenceSession(str(ONNX), providers=["CPUExecutionProvider"])
    onnx_cls = session.run(["last_hidden_state"], feeds)[0][:, 0]
    assert torch_cls.shape == onnx_cls.shape == (100, 384)
    assert np.abs(torch_cls - onnx_cls).max() < 1e-4
    # The folder the set-up built is that conversion too.
    assert np.abs(cls_vectors(BGE, texts)[0] - onnx_cls).max() < 1e-4
    # A conversion with one thing wrong (here the number of attention heads) is caught by the same check.
    wrong, _ = cls_vectors(bert_from_onnx(ONNX, TOKENIZER, tmp_path / "wrong", heads=6), texts)
    assert np.abs(wrong - onnx_cls).max() > 1e-2
