"""Amazon per-category review dumps (McAuley): JSON lines, gzip or plain.

Fields: reviewerID, asin, reviewerName, helpful ([helpful, total]), reviewText, overall (1.0-5.0),
summary, unixReviewTime, reviewTime. The category comes from ``--category`` or the file name
(``reviews_Musical_Instruments_5.json.gz`` -> ``Musical Instruments``).
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from reviewlake.sources import ReadOptions, SourceReader, category_from_file, read_files, staged
from reviewlake.sources._json import parse_json_lines

FIELDS = [
    "reviewerID", "asin", "reviewerName", "helpful", "reviewText", "overall", "summary",
    "unixReviewTime", "reviewTime",
]


def read(spark: SparkSession, path: str, options: ReadOptions) -> DataFrame:
    parsed, parse_error = parse_json_lines(read_files(spark, path, options), FIELDS)
    return staged(
        parsed,
        key_parts=[F.col("j.reviewerID"), F.col("j.asin"), F.col("j.unixReviewTime")],
        raw_record=F.col("value"),
        parse_error=parse_error,
        product_id=F.col("j.asin"),
        category=category_from_file(r"^(?:reviews_)?(.+?)(?:_5)?\.json", options.category),
        rating=F.col("j.overall"),
        title=F.col("j.summary"),
        text=F.col("j.reviewText"),
        review_time=F.col("j.unixReviewTime"),
        helpful_votes=F.regexp_extract(F.col("j.helpful"), r"^\[\s*([^,\]\s]+)", 1),
    )


READER = SourceReader(
    name="amazon-json",
    read=read,
    time_format="unix_seconds",
    doc="Amazon per-category JSON lines (reviewerID, asin, overall, reviewText, ...); gz or plain",
)
