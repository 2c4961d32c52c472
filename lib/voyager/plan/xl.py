"""openpyxl, imported once for the plan package (reader, writer, template).

openpyxl imports numpy (when installed) only to recognise numpy scalars written into
cells. Plan code never writes numpy values, and importing numpy costs a quarter of a
second of start-up for every ``voyager plan`` command. So, unless numpy is already
loaded, openpyxl is imported with numpy hidden; ``import numpy`` works normally
afterwards (only openpyxl's list of numeric cell types lacks the numpy scalars).

Every plan module imports openpyxl through this module (``from voyager.plan.xl import
openpyxl``) so that the first import, whichever module triggers it, is the light one.
"""
from __future__ import annotations

import sys


def _import_openpyxl_without_numpy() -> None:
    if "openpyxl" in sys.modules or "numpy" in sys.modules:
        return
    sys.modules["numpy"] = None  # type: ignore[assignment]  # "import numpy" -> ImportError
    try:
        import openpyxl  # noqa: F401
    finally:
        del sys.modules["numpy"]


_import_openpyxl_without_numpy()

import openpyxl  # noqa: E402

__all__ = ["openpyxl"]
