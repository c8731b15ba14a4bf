"""Read the anchor benchmarks (``benchmarks/results.json``, written by ``benchmarks/run``)."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results.json"


def load(name: str, path: Path | str | None = None) -> dict | None:
    """The result called ``name``: a comparison (``"paris"``, ``"ntk"``, ``"fbm"``, ``"hessian"``:
    its versions, wall time, load and rows) or one table row by id (e.g. ``"paris_N1000"``).
    None when the results file is missing or has no such entry.

    Args:
      name: a comparison name or a row id.
      path: the results file; ``benchmarks/results.json`` of this checkout by default.

    Returns:
      The comparison or row as a dict, or None.
    """
    path = Path(path) if path is not None else RESULTS
    if not path.exists():
        return None
    comparisons = json.loads(path.read_text()).get("comparisons", {})
    if name in comparisons:
        return comparisons[name]
    for comparison in comparisons.values():
        for row in comparison.get("rows", []):
            if row.get("id") == name:
                return row
    return None
