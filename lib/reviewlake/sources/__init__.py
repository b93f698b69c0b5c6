"""One reader per input format, all producing the same *staged* frame.

A staged frame holds one row per input record, with every bronze field still a string (so a value of
the wrong type can be reported, not silently nulled), plus:

- ``key_parts``: the record's natural key, as an array of strings; empty for formats that have none
  (fastText). :func:`reviewlake.ingest.with_ids` turns it into ``review_id``, falling back to the
  record's content when a part is missing;
- ``raw_record``: the record as read, kept for the quarantine;
- ``parse_error``: why the record could not be parsed, or null;
- ``type_error``: a field whose value has the wrong JSON type (an object as the text), or null;
- ``source_file`` and ``source_line`` (1-based; null for one-record-per-file formats).

:func:`reviewlake.ingest.validate` then types, checks and splits it into bronze and quarantine rows.
"""

from __future__ import annotations

from reviewlake.sources.base import (STAGED_FIELDS, ReadOptions, SourceReader, category_from_file, read_files,
                                     source_path, staged)

__all__ = ["STAGED_FIELDS", "ReadOptions", "SourceReader", "category_from_file", "read_files", "registry",
           "source_path", "staged"]


def registry() -> dict[str, SourceReader]:
    """All formats by name, in the order ``--help`` lists them."""
    from reviewlake.sources import amazon_2023, amazon_json, amazon_tsv, fasttext, imdb, tabular

    readers = [
        fasttext.READER, amazon_json.READER, amazon_2023.READER, amazon_tsv.READER, imdb.READER,
        tabular.CSV_READER, tabular.PARQUET_READER,
    ]
    return {r.name: r for r in readers}
