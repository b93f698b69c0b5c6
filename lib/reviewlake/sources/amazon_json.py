"""Amazon per-category review dumps (McAuley): JSON lines, gzip or plain, both releases.

Fields of the 2014 release: reviewerID, asin, reviewerName, helpful ([helpful, total]), reviewText,
overall (1.0-5.0), summary, unixReviewTime, reviewTime. The 2018 release has no ``helpful`` but
``vote`` (a string such as "1,234", absent when 0), ``verified`` (a boolean), ``style`` and ``image``.
The category comes from ``--category`` or the file name
(``reviews_Musical_Instruments_5.json.gz`` -> ``Musical Instruments``).
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from reviewlake.sources.base import ReadOptions, SourceReader, category_from_file, read_files, staged
from reviewlake.sources._json import not_a_string, parse_json_lines

FIELDS = [
    "reviewerID", "asin", "reviewerName", "helpful", "reviewText", "overall", "summary",
    "unixReviewTime", "reviewTime", "vote", "verified", "style", "image",
]


def read(spark: SparkSession, path: str, options: ReadOptions) -> DataFrame:
    parsed, parse_error = parse_json_lines(read_files(spark, path, options), FIELDS)
    return staged(
        parsed,
        key_parts=[F.col("j.reviewerID"), F.col("j.asin"), F.col("j.unixReviewTime")],
        raw_record=F.col("value"),
        parse_error=parse_error,
        type_error=not_a_string(["reviewText", "summary"]),
        product_id=F.col("j.asin"),
        category=category_from_file(r"^(?:reviews_)?(.+?)(?:_5)?\.json", options.category),
        rating=F.col("j.overall"),
        title=F.col("j.summary"),
        text=F.col("j.reviewText"),
        review_time=F.col("j.unixReviewTime"),
        verified=F.col("j.verified"),
        helpful_votes=F.coalesce(
            F.when(F.col("j.helpful").isNotNull(),
                   F.regexp_extract(F.col("j.helpful"), r"^\[\s*([^,\]\s]+)", 1)),
            F.regexp_replace(F.col("j.vote"), ",", ""),
        ),
    )


READER = SourceReader(
    name="amazon-json",
    read=read,
    time_format="unix_seconds",
    doc="Amazon per-category JSON lines (reviewerID, asin, overall, reviewText, ...); gz or plain",
)
