"""The claim registry: a paper's theorems and figures as checked numbers.

A claim is one reproduced statement with a measured value, a target, a relation and a verdict.
``Registry.check`` records it and never raises on a failed claim (it does raise on a malformed
call, before anything is recorded); ``Registry.save`` writes ``claims.json``::

    {"paper": str, "profile": str,
     "claims": [{"id", "statement", "value", "target", "relation", "tolerance", "source", "passed"}]}

Relations (``value`` R ``target``):

==========  ==================================================================
``==``      exact equality (integers, booleans, strings)
``approx``  ``|value - target| <= tolerance`` (absolute)
``rel``     ``|value - target| <= tolerance * |target|`` (relative)
``<=``      ``value <= target + tolerance`` (``tolerance`` defaults to 0), likewise ``<``
``>=``      ``value >= target - tolerance``, likewise ``>``
``in``      ``target = [low, high]`` and ``low <= value <= high``
==========  ==================================================================

Arrays are compared element by element and pass only if every element passes. A non-finite
value never passes. ``source`` says where the target comes from and must start with one of
:data:`SOURCE_KINDS` (e.g. ``"paper: Table 1"``, ``"closed form: Thm 4.1"``).
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paperlib._atomic import atomic_write_text

RELATIONS = ("==", "approx", "rel", "<=", "<", ">=", ">", "in")
SOURCE_KINDS = ("paper", "closed form", "independent computation", "anchor library")


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str
    value: Any
    target: Any
    relation: str
    tolerance: float | None
    source: str
    passed: bool


def _to_json(x: Any) -> Any:
    """Numbers, arrays and nested lists as plain JSON values (NaN/inf as strings)."""
    if isinstance(x, (str, bool, type(None))):
        return x
    if isinstance(x, (list, tuple)):
        return [_to_json(v) for v in x]
    arr = np.asarray(x)
    if arr.ndim > 0:
        return [_to_json(v) for v in arr.tolist()]
    item = arr.item()
    if isinstance(item, bool):
        return item
    if isinstance(item, numbers.Integral):
        return int(item)
    if isinstance(item, numbers.Real):
        return float(item) if math.isfinite(item) else str(item)
    return item


def _verdict(value: Any, target: Any, relation: str, tol: float) -> bool:
    if relation == "==":
        if isinstance(value, str) or isinstance(target, str):
            return value == target
        return bool(np.all(np.asarray(value) == np.asarray(target)))
    v = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(v)):
        return False
    if relation == "in":
        low, high = target
        return bool(np.all((v >= low) & (v <= high)))
    t = np.asarray(target, dtype=float)
    checks = {
        "approx": lambda: np.abs(v - t) <= tol,
        "rel": lambda: np.abs(v - t) <= tol * np.abs(t),
        "<=": lambda: v <= t + tol,
        "<": lambda: v < t + tol,
        ">=": lambda: v >= t - tol,
        ">": lambda: v > t - tol,
    }
    return bool(np.all(checks[relation]()))


def _validate(claim_id, statement, target, relation, tolerance, source) -> None:
    if not isinstance(claim_id, str) or not claim_id:
        raise ValueError("claim id must be a non-empty string")
    if not isinstance(statement, str) or not statement:
        raise ValueError(f"claim {claim_id!r}: statement must be a non-empty string")
    if relation not in RELATIONS:
        raise ValueError(f"claim {claim_id!r}: unknown relation {relation!r}; use one of {RELATIONS}")
    if relation in ("approx", "rel") and tolerance is None:
        raise ValueError(f"claim {claim_id!r}: relation {relation!r} needs a tolerance")
    if tolerance is not None and not (isinstance(tolerance, numbers.Real) and tolerance >= 0):
        raise ValueError(f"claim {claim_id!r}: tolerance must be a non-negative number, got {tolerance!r}")
    if relation == "in" and (np.ndim(target) != 1 or len(target) != 2 or target[0] > target[1]):
        raise ValueError(f"claim {claim_id!r}: relation 'in' needs target [low, high], got {target!r}")
    if not isinstance(source, str) or not source.lower().startswith(SOURCE_KINDS):
        raise ValueError(
            f"claim {claim_id!r}: source must start with one of {SOURCE_KINDS} "
            f"(where the target comes from), got {source!r}"
        )


class Registry:
    """Collects the claims of one notebook run."""

    def __init__(self, paper: str, profile: str):
        self.paper = paper
        self.profile = profile
        self.claims: list[Claim] = []

    def check(
        self,
        claim_id: str,
        statement: str,
        value: Any,
        target: Any,
        relation: str = "approx",
        tolerance: float | None = None,
        source: str = "",
    ) -> Claim:
        """Record a claim and its verdict; a failed claim is recorded, not raised."""
        _validate(claim_id, statement, target, relation, tolerance, source)
        if any(c.id == claim_id for c in self.claims):
            raise ValueError(f"claim {claim_id!r} recorded twice")
        passed = _verdict(value, target, relation, tolerance or 0.0)
        claim = Claim(claim_id, statement, _to_json(value), _to_json(target), relation,
                      tolerance, source, passed)
        self.claims.append(claim)
        return claim

    @property
    def passed(self) -> int:
        return sum(c.passed for c in self.claims)

    def to_dict(self) -> dict:
        return {"paper": self.paper, "profile": self.profile,
                "claims": [asdict(c) for c in self.claims]}

    def save(self, path: str | Path) -> Path:
        """Write claims.json atomically."""
        return atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2) + "\n")

    def table(self) -> str:
        """A Markdown table of every claim, for the notebook's last cell."""
        rows = ["| | id | statement | value | target | relation | source |", "|---|---|---|---|---|---|---|"]
        for c in self.claims:
            rel = c.relation + (f" (tol {c.tolerance:g})" if c.tolerance else "")
            rows.append(f"| {'PASS' if c.passed else 'FAIL'} | {c.id} | {c.statement} | "
                        f"{_short(c.value)} | {_short(c.target)} | {rel} | {c.source} |")
        rows.append(f"\n**{self.passed}/{len(self.claims)} claims passed** (profile `{self.profile}`)")
        return "\n".join(rows)


def _short(x: Any, digits: int = 4) -> str:
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    if isinstance(x, list):
        return "[" + ", ".join(_short(v, digits) for v in x) + "]"
    return str(x)


def load(path: str | Path) -> dict:
    """Read a claims.json written by :meth:`Registry.save`."""
    return json.loads(Path(path).read_text())
