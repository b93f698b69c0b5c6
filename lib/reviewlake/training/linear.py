"""Where the linear family's pyfunc lived before ``reviewlake.families``: versions registered then name
``reviewlake.training.linear.LinearPyfunc`` in their pickles, and it still resolves."""

from __future__ import annotations

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    if name == "LinearPyfunc":
        return importlib.import_module("reviewlake.families.linear").LinearPyfunc
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
