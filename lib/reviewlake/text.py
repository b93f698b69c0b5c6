"""When a review has text: the one rule ingest, predict, score and serve share.

A text that is null, or holds only white space, separators and control or format characters (tabs,
newlines, NUL, zero-width spaces, byte-order marks), has no text: ingest quarantines it as
``missing_text``, and the prediction paths give it the status ``empty_text`` instead of a score.
:func:`has_text_column` is the rule as a Spark expression (Java regex classes), :func:`has_text` the
same rule in Python (Unicode categories), for texts a model scores outside Spark.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column

# A character that is none of: Java's \s (space, \t, \n, \x0B, \f, \r), a separator (Z*) or an
# "other" character (control Cc, format Cf, private use Co, surrogate Cs, unassigned Cn).
TEXT_CHARACTER = r"[^\s\p{Z}\p{C}]"
_JAVA_SPACE = frozenset(" \t\n\x0b\f\r")


def has_text(text: str | None) -> bool:
    """Whether ``text`` holds a character that is not white space, a separator or a control/format one."""
    if not text:
        return False
    return any(c not in _JAVA_SPACE and unicodedata.category(c)[0] not in "ZC" for c in text)


def has_text_column(column: "Column") -> "Column":
    """:func:`has_text` as a Spark boolean column (false for null)."""
    from pyspark.sql import functions as F

    return F.coalesce(column.rlike(TEXT_CHARACTER), F.lit(False))
