"""Amazon Reviews 2023 (McAuley lab): JSON lines per category, e.g. ``All_Beauty.jsonl``.

Fields: rating, title, text, images, asin, parent_asin, user_id, timestamp (ms), helpful_vote,
verified_purchase.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from reviewlake.sources.base import ReadOptions, SourceReader, category_from_file, read_files, staged
from reviewlake.sources._json import not_a_string, parse_json_lines

FIELDS = [
    "rating", "title", "text", "images", "asin", "parent_asin", "user_id", "timestamp",
    "helpful_vote", "verified_purchase",
]


def read(spark: SparkSession, path: str, options: ReadOptions) -> DataFrame:
    parsed, parse_error = parse_json_lines(read_files(spark, path, options), FIELDS)
    return staged(
        parsed,
        key_parts=[F.col("j.user_id"), F.col("j.asin"), F.col("j.timestamp")],
        raw_record=F.col("value"),
        parse_error=parse_error,
        type_error=not_a_string(["text", "title"]),
        product_id=F.coalesce(F.col("j.parent_asin"), F.col("j.asin")),
        category=category_from_file(r"^(.+?)\.jsonl?", options.category),
        rating=F.col("j.rating"),
        title=F.col("j.title"),
        text=F.col("j.text"),
        review_time=F.col("j.timestamp"),
        verified=F.col("j.verified_purchase"),
        helpful_votes=F.col("j.helpful_vote"),
    )


READER = SourceReader(
    name="amazon-2023",
    read=read,
    time_format="unix_millis",
    doc="Amazon Reviews 2023 JSON lines (rating, title, text, asin, user_id, timestamp, ...)",
)
