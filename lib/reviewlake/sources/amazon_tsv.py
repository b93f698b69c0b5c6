"""Amazon customer reviews TSV files (``amazon_reviews_us_<Category>_v1_00.tsv.gz``).

15 tab-separated columns with a header line; fields are not quoted, so a line is split on tabs and a
line with another number of fields is quarantined rather than mis-aligned.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from reviewlake.sources.base import ReadOptions, SourceReader, read_files, staged

COLUMNS = [
    "marketplace", "customer_id", "review_id", "product_id", "product_parent", "product_title",
    "product_category", "star_rating", "helpful_votes", "total_votes", "vine", "verified_purchase",
    "review_headline", "review_body", "review_date",
]
HEADER = "\t".join(COLUMNS)


def read(spark: SparkSession, path: str, options: ReadOptions) -> DataFrame:
    lines = read_files(spark, path, options).where((F.col("source_line") > 1) | (F.col("value") != HEADER))
    lines = lines.withColumn("f", F.split("value", "\t", -1))
    field = {name: F.col("f")[i] for i, name in enumerate(COLUMNS)}
    n = F.size("f")
    parse_error = F.when(
        n != len(COLUMNS),
        F.format_string(f"expected {len(COLUMNS)} tab-separated fields, found %d", n),
    )
    ok = n == len(COLUMNS)

    def get(name: str) -> Column:
        return F.when(ok, field[name])

    return staged(
        lines,
        key_parts=[get("marketplace"), get("review_id")],
        raw_record=F.col("value"),
        parse_error=parse_error,
        product_id=get("product_id"),
        product_title=get("product_title"),
        category=F.lit(options.category) if options.category else get("product_category"),
        rating=get("star_rating"),
        title=get("review_headline"),
        text=get("review_body"),
        review_time=get("review_date"),
        verified=get("verified_purchase"),
        helpful_votes=get("helpful_votes"),
    )


READER = SourceReader(
    name="amazon-tsv",
    read=read,
    time_format="date",
    doc="Amazon customer reviews TSV (15 columns, header line); gz or plain",
)
