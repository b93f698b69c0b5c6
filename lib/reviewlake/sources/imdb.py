"""IMDb large movie review set (aclImdb): ``<root>/train|test/pos|neg|unsup/<id>_<stars>.txt``.

One review per file; a 0-byte file is an empty review (quarantined as missing text), and files in
the folder that are not reviews (``urls_pos.txt``, ``imdb.vocab``, ``README``) are skipped and
listed. Stars are 1-10 (0 for unlabelled ``unsup`` files); bronze keeps ratings on the
1-5 scale, so stars map to ``ceil(stars / 2)``. The label is the folder: pos, neg, or none for unsup.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from reviewlake.sources.base import ReadOptions, SourceReader, read_files, staged

_PATH = r"/(train|test)/(pos|neg|unsup)/(\d+)_(\d+)\.txt$"


def read(spark: SparkSession, path: str, options: ReadOptions) -> DataFrame:
    files = read_files(spark, path, options, whole_file=True)
    part = {name: F.regexp_extract("source_file", _PATH, i + 1) for i, name in
            enumerate(["split", "polarity", "id", "stars"])}
    stars = part["stars"].try_cast("int")
    return staged(
        files,
        key_parts=[part["split"], part["polarity"], part["id"]],
        raw_record=F.col("value"),
        parse_error=F.when(
            ~F.col("source_file").rlike(_PATH),
            F.lit("file is not at <split>/<pos|neg|unsup>/<id>_<stars>.txt"),
        ),
        category=F.lit(options.category or "Movies"),
        rating=F.when(stars > 0, F.ceil(stars / 2)),
        label=F.when(part["polarity"] == "pos", F.lit("positive"))
        .when(part["polarity"] == "neg", F.lit("negative")),
        text=F.col("value"),
    )


READER = SourceReader(
    name="imdb",
    read=read,
    time_format=None,
    doc="aclImdb folder: train|test/pos|neg|unsup/<id>_<stars>.txt, one review per file",
    whole_file=True,
    member=_PATH,
    member_doc="not a review file of the aclImdb layout (<split>/<pos|neg|unsup>/<id>_<stars>.txt)",
)
