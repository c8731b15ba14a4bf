"""The claim registry: a paper's theorems and figures as checked numbers.

A claim is one reproduced statement with a measured value, a target, a relation and a verdict.
``Registry.check`` records it and never raises on a failed claim (it does raise on a malformed
call, before anything is recorded); ``Registry.save`` writes ``claims.json``::

    {"paper": str, "profile": str,
     "claims": [{"id", "statement", "value", "target", "relation", "tolerance", "source", "kind",
                 "expected", "gap", "passed", "as_expected"[, "se", "n", "z", "z_crit"]}]}

Kinds (:data:`KINDS`): a ``paper`` claim reproduces an item of the paper (a theorem, proposition,
figure, table entry or stated rate); a ``check`` guards our own machinery (identities of our code,
solver accuracy, two of our routines agreeing, agreement with an anchor library). Result tables
count paper claims; checks are listed apart. A ``paper`` claim must carry the number behind its
verdict: a bare boolean value against a boolean target is refused.

Declared gaps: ``gap="reason"`` registers a paper claim our reproduction does not meet. It is
still computed every run; ``expected`` is then ``"fail"``. A run is green when every verdict is as
declared (``as_expected``): an unexpected failure and a gap that now passes are both red. A
tolerance is fixed before the result is seen; a result that then fails becomes a gap.

Statistical claims (anything over seeds, Monte-Carlo paths, networks, data records) go through
:meth:`Registry.statistical`, which takes the samples (or mean, s.e. and n), records ``se``, ``n``
and the z-score ``z = (mean - target) / se`` and applies a fixed z rule (:data:`Z_RULES`).

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
from paperlib.stats import mean_and_se

RELATIONS = ("==", "approx", "rel", "<=", "<", ">=", ">", "in", "z")
SOURCE_KINDS = ("paper", "closed form", "independent computation", "anchor library")
KINDS = ("paper", "check")
Z_CRIT = 3.0  # the house threshold for statistical claims
# z rules: which z-scores pass, for z = (mean - target) / se and threshold c
Z_RULES = {
    "equal": "|z| <= c (consistent with the target)",
    "at_most": "z <= c (not significantly above the target)",
    "at_least": "z >= -c (not significantly below the target)",
    "above": "z > c (significantly above the target)",
    "below": "z < -c (significantly below the target)",
}


@dataclass(frozen=True)
class Claim:
    """One recorded claim: what was measured, against what, by which rule, and the verdict."""

    id: str
    statement: str
    value: Any
    target: Any
    relation: str
    tolerance: float | None
    source: str
    kind: str
    gap: str | None  # the reason, for a declared reproduction gap
    passed: bool
    stats: dict | None = None  # se, n, z, z_crit, rule: statistical claims only

    @property
    def expected(self) -> str:
        """``"fail"`` for a declared reproduction gap, else ``"pass"``."""
        return "fail" if self.gap else "pass"

    @property
    def as_expected(self) -> bool:
        """The verdict is the declared one (a pass, or a declared gap that failed)."""
        return self.passed != bool(self.gap)

    def to_dict(self) -> dict:
        """The claims.json record: the fields, ``expected``, ``as_expected`` and the z statistics."""
        record = {k: v for k, v in asdict(self).items() if k != "stats"}
        record.update(expected=self.expected, as_expected=self.as_expected, **(self.stats or {}))
        return record


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


def _z_verdict(z: np.ndarray, rule: str, z_crit: float) -> bool:
    if not np.all(np.isfinite(z)):
        return False
    checks = {"equal": lambda: np.abs(z) <= z_crit, "at_most": lambda: z <= z_crit,
              "at_least": lambda: z >= -z_crit, "above": lambda: z > z_crit, "below": lambda: z < -z_crit}
    return bool(np.all(checks[rule]()))


def _is_bool(x: Any) -> bool:
    return isinstance(x, (bool, np.bool_)) or (np.ndim(x) > 0 and np.asarray(x).dtype == bool)


def _validate_kind(claim_id, kind, gap, value, target) -> None:
    if kind not in KINDS:
        raise ValueError(f"claim {claim_id!r}: kind must be one of {KINDS}, got {kind!r}")
    if gap is not None:
        if kind != "paper":
            raise ValueError(f"claim {claim_id!r}: only a paper claim can be a declared gap")
        if not isinstance(gap, str) or not gap.strip():
            raise ValueError(f"claim {claim_id!r}: a gap needs its reason as a non-empty string")
    if kind == "paper" and _is_bool(value) and _is_bool(target):
        raise ValueError(f"claim {claim_id!r}: a paper claim records the number behind its verdict "
                         "(observed vs bound, margin, slope), not a bare boolean")


def _validate(claim_id, statement, target, relation, tolerance, source) -> None:
    if not isinstance(claim_id, str) or not claim_id:
        raise ValueError("claim id must be a non-empty string")
    if not isinstance(statement, str) or not statement:
        raise ValueError(f"claim {claim_id!r}: statement must be a non-empty string")
    if relation not in RELATIONS or relation == "z":
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
        *,
        source: str,
        kind: str,
        gap: str | None = None,
    ) -> Claim:
        """Record a claim and its verdict; a failed claim is recorded, not raised.

        Args:
          claim_id, statement: a unique id (``thm3.2``, ``fig4.slope``) and the claim in one line.
          value, target, relation, tolerance: the measurement, what it is compared with, and how.
          source: where the target comes from; starts with one of :data:`SOURCE_KINDS`.
          kind: ``"paper"`` or ``"check"`` (see the module docstring).
          gap: for a declared reproduction gap, the reason (with the number measured when declared).

        Returns:
          The recorded :class:`Claim`. Raises ``ValueError`` for a malformed claim (unknown relation or
          kind, missing tolerance, a source of no known kind, an id used twice).
        """
        _validate(claim_id, statement, target, relation, tolerance, source)
        _validate_kind(claim_id, kind, gap, value, target)
        passed = _verdict(value, target, relation, tolerance or 0.0)
        return self._record(Claim(claim_id, statement, _to_json(value), _to_json(target), relation,
                                  tolerance, source, kind, gap, passed))

    def statistical(
        self,
        claim_id: str,
        statement: str,
        samples: Any = None,
        *,
        target: Any,
        rule: str = "equal",
        source: str,
        kind: str,
        mean: Any = None,
        se: Any = None,
        n: int | None = None,
        target_se: Any = 0.0,
        z_crit: float = Z_CRIT,
        gap: str | None = None,
    ) -> Claim:
        """Record a claim about a noisy mean by its z-score against ``target``.

        Give either ``samples`` (one value per seed / path / record along axis 0; mean and s.e.
        s/sqrt(n) are computed here) or ``mean``, ``se`` and ``n`` (e.g. from a control-variate
        estimator). ``z = (mean - target) / sqrt(se^2 + target_se^2)``; the claim passes by ``rule``
        (:data:`Z_RULES`) at threshold ``z_crit``, both fixed before the run. Arrays pass only if every
        element passes (raise ``z_crit`` for many elements, e.g. by Bonferroni).

        Args:
          claim_id, statement, source, kind, gap: as in :meth:`check`.
          samples: (n, ...) one value per independent draw along axis 0, n >= 2.
          target: the value (or array) the mean is compared with.
          rule: a key of :data:`Z_RULES`.
          mean, se, n: the mean, its standard error and the number of draws, instead of ``samples``.
          target_se: standard error of a target that is itself estimated (0 for an exact target).
          z_crit: the threshold c of the rule.

        Returns:
          The recorded :class:`Claim`, with se, n, z, z_crit and rule in its stats.
        """
        if rule not in Z_RULES:
            raise ValueError(f"claim {claim_id!r}: unknown rule {rule!r}; use one of {tuple(Z_RULES)}")
        if not (isinstance(z_crit, numbers.Real) and z_crit > 0):
            raise ValueError(f"claim {claim_id!r}: z_crit must be a positive number, got {z_crit!r}")
        if samples is not None:
            if mean is not None or se is not None or n is not None:
                raise ValueError(f"claim {claim_id!r}: give samples or (mean, se, n), not both")
            arr = np.asarray(samples, dtype=float)
            if arr.ndim == 0 or arr.shape[0] < 2:
                raise ValueError(f"claim {claim_id!r}: need at least 2 samples along axis 0")
            n = arr.shape[0]
            mean, se = mean_and_se(arr)
        elif mean is None or se is None or n is None:
            raise ValueError(f"claim {claim_id!r}: give samples, or mean, se and n")
        if not (isinstance(n, numbers.Integral) and n >= 2):
            raise ValueError(f"claim {claim_id!r}: n must be an integer >= 2, got {n!r}")
        _validate(claim_id, statement, target, "approx", 0.0, source)
        _validate_kind(claim_id, kind, gap, mean, target)
        mean, se = np.asarray(mean, dtype=float), np.asarray(se, dtype=float)
        scale = np.sqrt(se ** 2 + np.asarray(target_se, dtype=float) ** 2)
        if np.any(scale <= 0):
            raise ValueError(f"claim {claim_id!r}: the standard error must be positive")
        with np.errstate(invalid="ignore"):
            z = (mean - np.asarray(target, dtype=float)) / scale
        passed = _z_verdict(z, rule, z_crit)
        stats = {"se": _to_json(se), "n": int(n), "z": _to_json(np.round(z, 4)), "z_crit": z_crit,
                 "rule": rule}
        if np.any(np.asarray(target_se) > 0):
            stats["target_se"] = _to_json(target_se)
        return self._record(Claim(claim_id, statement, _to_json(mean), _to_json(target), "z", None,
                                  source, kind, gap, passed, stats))

    def _record(self, claim: Claim) -> Claim:
        if any(c.id == claim.id for c in self.claims):
            raise ValueError(f"claim {claim.id!r} recorded twice")
        self.claims.append(claim)
        return claim

    @property
    def passed(self) -> int:
        """How many recorded claims passed."""
        return sum(c.passed for c in self.claims)

    @property
    def as_declared(self) -> bool:
        """True when every verdict is what was declared (passed, or a declared gap that failed)."""
        return all(c.as_expected for c in self.claims)

    def to_dict(self) -> dict:
        """The claims.json content: paper, profile and the claim records."""
        return {"paper": self.paper, "profile": self.profile,
                "claims": [c.to_dict() for c in self.claims]}

    def save(self, path: str | Path) -> Path:
        """Write claims.json atomically.

        Args:
          path: the file to write.

        Returns:
          ``path`` as a Path.
        """
        return atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2) + "\n")

    def table(self) -> str:
        """Markdown tables of the paper claims and of the checks, the summary line and the declared
        gaps, for the notebook's last cell; returns the Markdown text."""
        out = []
        for kind, heading in (("paper", "Paper claims"), ("check", "Checks")):
            chosen = [c for c in self.claims if c.kind == kind]
            if not chosen:
                continue
            out += [f"**{heading}**\n", "| | id | statement | value | target | rule | source |",
                    "|---|---|---|---|---|---|---|"]
            out += [_row(c) for c in chosen]
            out.append("")
        out.append(summary_line(self.to_dict()["claims"]) + f" (profile `{self.profile}`)")
        gaps = [c for c in self.claims if c.gap]
        out += ["\n**Declared reproduction gaps**\n"] * bool(gaps)
        out += [f"- `{c.id}` ({'failed as declared' if not c.passed else 'PASSED: no longer a gap'}, "
                f"value {_short(c.value)}): {c.gap}" for c in gaps]
        return "\n".join(out)


def _verdict_word(c: Claim) -> str:
    if c.gap:
        return "GAP" if not c.passed else "GAP PASSED (unexpected)"
    return "PASS" if c.passed else "FAIL"


def _row(c: Claim) -> str:
    if c.relation == "z":
        st = c.stats
        rule = f"z = {_short(st['z'], 3)}, {st['rule']} at {st['z_crit']:g} (s.e. {_short(st['se'], 3)}, n = {st['n']})"
    else:
        rule = c.relation + (f" (tol {c.tolerance:g})" if c.tolerance else "")
    return (f"| {_verdict_word(c)} | {c.id} | {c.statement} | {_short(c.value)} | {_short(c.target)} "
            f"| {rule} | {c.source} |")


def count(claims: list[dict]) -> dict:
    """Counts for result tables, from claims.json records: paper claims passed / total, checks
    passed / total, declared gaps, and verdicts that differ from what was declared.

    Args:
      claims: the records of a claims.json (``load(path)["claims"]``).

    Returns:
      ``{"paper_passed", "paper_total", "checks_passed", "checks_total", "gaps": int,
      "unexpected": [ids]}``.
    """
    paper = [c for c in claims if c.get("kind") == "paper"]
    checks = [c for c in claims if c.get("kind") == "check"]
    return {"paper_passed": sum(bool(c["passed"]) for c in paper), "paper_total": len(paper),
            "checks_passed": sum(bool(c["passed"]) for c in checks), "checks_total": len(checks),
            "gaps": sum(c.get("expected") == "fail" for c in claims),
            "unexpected": [c["id"] for c in claims if not _as_expected(c)]}


def _as_expected(c: dict) -> bool:
    """A claims.json record's verdict is as declared (records without kinds: passed)."""
    return bool(c["passed"]) != (c.get("expected") == "fail")


def summary_line(claims: list[dict]) -> str:
    """One bold Markdown line with the :func:`count` totals, naming any verdict not as declared.

    Args:
      claims: the records of a claims.json.

    Returns:
      The Markdown line.
    """
    n = count(claims)
    text = (f"**{n['paper_passed']}/{n['paper_total']} paper claims passed, "
            f"{n['gaps']} declared gap{'s' * (n['gaps'] != 1)}; "
            f"{n['checks_passed']}/{n['checks_total']} checks passed**")
    if n["unexpected"]:
        text += f"; **not as declared: {', '.join(n['unexpected'])}**"
    return text


def _short(x: Any, digits: int = 4, max_items: int = 8) -> str:
    """A value for a table cell; a list longer than ``max_items`` shows its ends and its length."""
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    if isinstance(x, list):
        if len(x) > max_items:
            ends = [_short(v, digits) for v in (*x[:3], *x[-2:])]
            return f"[{', '.join(ends[:3])}, ..., {', '.join(ends[3:])}] ({len(x)} values)"
        return "[" + ", ".join(_short(v, digits) for v in x) + "]"
    return str(x)


def load(path: str | Path) -> dict:
    """Read a claims.json written by :meth:`Registry.save`.

    Args:
      path: the claims.json file.

    Returns:
      ``{"paper", "profile", "claims": [records]}``.
    """
    return json.loads(Path(path).read_text())
