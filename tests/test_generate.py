"""The generator: deterministic for a seed whatever the worker count, and honest about what it planted."""

from __future__ import annotations

import bz2
import gzip
import json
from pathlib import Path

import pytest

from reviewlake.generate import ASPECTS, FORMATS, generate


def test_same_seed_same_bytes_whatever_the_workers(tmp_path: Path) -> None:
    one = generate("fasttext", tmp_path / "one", 120_000, seed=3, workers=1)
    two = generate("fasttext", tmp_path / "two", 120_000, seed=3, workers=2)
    assert Path(one.files[0]).read_bytes() == Path(two.files[0]).read_bytes()
    assert one.malformed == two.malformed
    other = generate("fasttext", tmp_path / "other", 1000, seed=4)
    assert Path(other.files[0]).read_bytes()[:500] != Path(one.files[0]).read_bytes()[:500]


def test_multistream_file_has_every_line(tmp_path: Path) -> None:
    m = generate("fasttext", tmp_path, 120_000, seed=1, workers=2)
    lines = bz2.decompress(Path(m.files[0]).read_bytes()).splitlines()
    assert len(lines) == 120_000
    labelled = [line for line in lines if line.startswith(b"__label__1 ") or line.startswith(b"__label__2 ")]
    # Every line not of the normal form is one the manifest says was planted.
    assert len(lines) - len(labelled) <= m.malformed_rows


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_writes_its_rows(tmp_path: Path, fmt: str) -> None:
    m = generate(fmt, tmp_path, 400, seed=5, malformed_share=0.05)
    assert json.loads((tmp_path / "manifest.json").read_text())["rows"] == 400
    assert set(m.malformed) <= set(FORMATS[fmt].malformed_kinds)
    path = Path(m.files[0])
    if fmt == "imdb":
        assert len(list(path.glob("*/*/*.txt"))) == 400
        return
    data = path.read_bytes()
    data = bz2.decompress(data) if path.suffix == ".bz2" else gzip.decompress(data) if path.suffix == ".gz" else data
    assert len(data.splitlines()) == 400 + bool(FORMATS[fmt].header)


def test_texts_carry_sentiment_and_aspects(tmp_path: Path) -> None:
    m = generate("amazon-2023", tmp_path, 2000, seed=9, malformed_share=0.0)
    rows = [json.loads(line) for line in Path(m.files[0]).read_text().splitlines()]
    positive_phrases = [p for pos, _ in ASPECTS.values() for p in pos]
    negative_phrases = [p for _, neg in ASPECTS.values() for p in neg]

    def share(rating: float, phrases: list[str]) -> float:
        texts = [r["text"].lower() for r in rows if r["rating"] == rating]
        return sum(any(p in t for p in phrases) for t in texts) / len(texts)

    assert share(5.0, positive_phrases) > 0.95 and share(5.0, negative_phrases) < 0.05
    assert share(1.0, negative_phrases) > 0.95 and share(1.0, positive_phrases) < 0.05
    ratings = [r["rating"] for r in rows]
    assert ratings.count(5.0) > ratings.count(4.0) > ratings.count(2.0)
    products = [r["asin"] for r in rows]
    top = max(set(products), key=products.count)
    assert products.count(top) > 10 * len(rows) / len(set(products))  # skewed popularity
