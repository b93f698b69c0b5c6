"""The generator: deterministic for a seed whatever the worker count, and honest about what it planted."""

from __future__ import annotations

import bz2
import gzip
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from reviewlake.generate import (
    ASPECTS, CLOSERS, FORMATS, NEAR_EDITS, RATING_WEIGHTS, SHORT, TOPIC, CorpusSpec, generate, reviews,
)


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    """Chunks of 1,000 rows instead of 50,000: a few thousand rows make several chunks (and streams)."""
    monkeypatch.setattr("reviewlake.generate.CHUNK_ROWS", 1000)
    return 1000


def test_same_seed_same_bytes_whatever_the_workers(tmp_path: Path, small_chunks: int) -> None:
    one = generate("fasttext", tmp_path / "one", 3 * small_chunks, seed=3, workers=1)
    two = generate("fasttext", tmp_path / "two", 3 * small_chunks, seed=3, workers=2)
    assert Path(one.files[0]).read_bytes() == Path(two.files[0]).read_bytes()
    assert one.malformed == two.malformed
    other = generate("fasttext", tmp_path / "other", 1000, seed=4)
    assert Path(other.files[0]).read_bytes()[:500] != Path(one.files[0]).read_bytes()[:500]


def test_multistream_file_has_every_line(tmp_path: Path, small_chunks: int) -> None:
    m = generate("fasttext", tmp_path, 3 * small_chunks, seed=1, workers=2)
    data = Path(m.files[0]).read_bytes()
    assert data.count(b"BZh9") >= 3  # one bzip2 stream per chunk
    lines = bz2.decompress(data).splitlines()
    assert len(lines) == 3 * small_chunks
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


@pytest.fixture(scope="module")
def amazon_2023(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """20,000 well-formed Amazon 2023 rows, the per-category dump format."""
    m = generate("amazon-2023", tmp_path_factory.mktemp("amazon-2023"), 20_000, seed=9, malformed_share=0.0)
    return [json.loads(line) for line in Path(m.files[0]).read_text().splitlines()]


def quantile(values: list[int], q: float) -> int:
    return sorted(values)[int(q * (len(values) - 1))]


def phrases(*groups: list[str]) -> list[str]:
    """The phrases, lower-case, without end punctuation, up to a placeholder: "great {product}!" -> "great"."""
    return [p.split(" {")[0].lower().rstrip(".!") for group in groups for p in group]


def test_texts_carry_sentiment_and_aspects(amazon_2023: list[dict[str, Any]]) -> None:
    positive_aspects = phrases(*[pos for pos, _ in ASPECTS.values()])
    negative_aspects = phrases(*[neg for _, neg in ASPECTS.values()])
    positive = positive_aspects + phrases(SHORT[4], SHORT[5])
    negative = negative_aspects + phrases(SHORT[1], SHORT[2])

    def share(rating: float, markers: list[str], min_chars: int = 0) -> float:
        texts = [r["text"].lower() for r in amazon_2023 if r["rating"] == rating and len(r["text"]) >= min_chars]
        return sum(any(p in t for p in markers) for t in texts) / len(texts)

    # Every text carries its sentiment, the shortest ones too ("Great!").
    assert share(5.0, positive) == 1.0 and share(5.0, negative) < 0.02
    assert share(1.0, negative) == 1.0 and share(1.0, positive) < 0.02
    # Only short texts (up to 120 characters planned, one added sentence more) may lead with a phrase
    # such as "Great!" and name no aspect; every longer one names one in words of its sentiment.
    assert share(5.0, positive_aspects, 200) == 1.0 and share(5.0, negative_aspects, 200) < 0.02
    assert share(1.0, negative_aspects, 200) == 1.0 and share(1.0, positive_aspects, 200) < 0.02
    products = [r["asin"] for r in amazon_2023]
    top = max(set(products), key=products.count)
    assert products.count(top) > 10 * len(products) / len(set(products))  # skewed popularity


def test_per_category_ratings_are_skewed_as_in_the_dumps(amazon_2023: list[dict[str, Any]]) -> None:
    counts = Counter(r["rating"] for r in amazon_2023)
    n = len(amazon_2023)
    for stars, weight in zip((1.0, 2.0, 3.0, 4.0, 5.0), RATING_WEIGHTS):
        # four standard deviations of a share on n rows
        assert abs(counts[stars] / n - weight) < 4 * (weight * (1 - weight) / n) ** 0.5, (stars, counts)


def test_fasttext_is_balanced_polarity_without_3_star_reviews(tmp_path: Path) -> None:
    rows = 20_000
    m = generate("fasttext", tmp_path, rows, seed=12, malformed_share=0.0)
    lines = bz2.decompress(Path(m.files[0]).read_bytes()).decode().splitlines()
    labels = [line.split(" ", 1)[0] for line in lines]
    assert labels.count("__label__1") + labels.count("__label__2") == rows
    assert abs(labels.count("__label__2") / rows - 0.5) < 0.01
    ratings = [r.rating for r in reviews(CorpusSpec(12, rows // 25, 0.0, 0.03, 0.01), "fasttext", 0, rows)]
    assert ratings.count(1) + ratings.count(2) == ratings.count(4) + ratings.count(5) == rows // 2
    # Label noise: about 3 % of labels disagree with the stars (label 1 = 1-2 stars).
    flipped = sum((label == "__label__1") != (stars <= 2) for label, stars in zip(labels, ratings)) / rows
    assert 0.025 < flipped < 0.035
    neutral = phrases(SHORT[3], CLOSERS[3]) + [p.replace("The {topic}", "").lower() for p in TOPIC[3]]
    assert not [line for line in lines if any(p in line.lower() for p in neutral)]
    bodies = [len(line.split(": ", 1)[1]) for line in lines]
    assert max(bodies) <= 1000 and 250 < quantile(bodies, 0.5) < 450 and quantile(bodies, 0.1) < 200


def test_text_lengths_follow_each_real_format(amazon_2023: list[dict[str, Any]], tmp_path: Path) -> None:
    amazon = [len(r["text"]) for r in amazon_2023]
    # A share of reviews of a few words, a median of a few hundred characters, a tail of thousands.
    assert sum(n < 50 for n in amazon) / len(amazon) > 0.05 and quantile(amazon, 0.1) < 60
    assert 220 < quantile(amazon, 0.5) < 380 and quantile(amazon, 0.99) > 1500
    assert max(amazon) < 32768  # under ingest.max_text_chars: no review is quarantined as oversize
    m = generate("imdb", tmp_path, 2000, seed=9, malformed_share=0.0)
    imdb = [len(p.read_bytes()) for p in Path(m.files[0]).glob("*/*/*.txt")]
    assert 800 < quantile(imdb, 0.5) < 1300 and quantile(imdb, 0.5) > 2.5 * quantile(amazon, 0.5)
    assert quantile(imdb, 0.99) > 4000 and min(imdb) >= 20


def test_imdb_has_the_acl_layout_and_no_neutral_stars(tmp_path: Path) -> None:
    m = generate("imdb", tmp_path, 4000, seed=2, malformed_share=0.0)
    files = [p.relative_to(m.files[0]) for p in Path(m.files[0]).glob("*/*/*.txt")]
    folders = Counter(str(p.parent) for p in files)
    assert folders["train/unsup"] == 2000 and folders["test/pos"] + folders["test/neg"] == 1000
    assert folders["train/pos"] + folders["train/neg"] == 1000 and len(folders) == 5
    stars = Counter(int(p.stem.split("_")[1]) for p in files if p.parent.name != "unsup")
    assert set(stars) == {1, 2, 3, 4, 7, 8, 9, 10}
    assert all(p.stem.endswith("_0") for p in files if p.parent.name == "unsup")
    positive = sum(n for s, n in stars.items() if s >= 7) / 2000
    assert abs(positive - 0.5) < 0.05
    assert stars[1] > stars[2] and stars[10] > stars[9]  # the extremes are the most common, as in aclImdb


def test_near_reposts_stay_near_duplicates_of_their_original(tmp_path: Path) -> None:
    def shingles(text: str) -> set[tuple[str, ...]]:
        words = text.split()
        return {tuple(words[i:i + 3]) for i in range(len(words) - 2)}

    spec = CorpusSpec(6, 10_000 // 25, 0.01, 0.03, 0.05)
    planted = list(reviews(spec, "amazon-2023", 0, 10_000))
    near = [r for r in planted if r.repost == "near"]
    assert len(near) > 100
    for r in near:
        edit = next(e for e in NEAR_EDITS if r.text.endswith(e))
        original, copy = shingles(r.text[: -len(edit)]), shingles(r.text)
        assert len(original & copy) >= 0.8 * len(original | copy), r.text
    m = generate("amazon-2023", tmp_path, 10_000, seed=6, malformed_share=0.01, duplicate_share=0.05)
    assert m.reposts == {"exact": sum(r.repost == "exact" for r in planted), "near": len(near)}
