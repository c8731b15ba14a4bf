"""Run profiles: ``smoke`` (CI, minutes on 2 cores), ``default`` (laptop CPU), ``full`` (paper scale, one GPU).

A notebook keeps a table ``{profile: {knob: value}}``; :func:`resolve` picks one row, applies the
knobs a user set in the parameters cell (``None`` means "the profile's value") and rejects an unknown
profile, an unknown knob or a wrongly typed value before any compute.
"""

from __future__ import annotations

import numbers
from types import SimpleNamespace

PROFILES = ("smoke", "default", "full")
BUDGET_SECONDS = {"smoke": 180, "default": 300, "full": 1800}


def check_profile(profile: object) -> str:
    """Reject an unknown profile name before any compute.

    Args:
      profile: the requested profile.

    Returns:
      ``profile`` itself, if it is one of :data:`PROFILES`; otherwise ``ValueError``.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")
    return profile


def _same_kind(value: object, reference: object) -> bool:
    if isinstance(reference, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(reference, bool)
    if isinstance(reference, numbers.Integral):
        return isinstance(value, numbers.Integral)
    if isinstance(reference, numbers.Real):
        return isinstance(value, numbers.Real)
    if isinstance(reference, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            return False
        return not reference or all(_same_kind(v, reference[0]) for v in value)
    return isinstance(value, type(reference))


def resolve(profile: str, table: dict[str, dict], **overrides) -> SimpleNamespace:
    """Settings of ``profile`` from ``table`` with every non-``None`` override applied.

    Args:
      profile: one of :data:`PROFILES`.
      table: ``{profile: {knob: value}}`` with exactly the three profiles.
      **overrides: knob values from the parameters cell; ``None`` keeps the profile's value.

    Returns:
      A namespace with one attribute per knob. Raises ``ValueError`` for an unknown profile or knob and
      ``TypeError`` for a value of the wrong kind.
    """
    check_profile(profile)
    if set(table) != set(PROFILES):
        raise ValueError(f"profile table must define exactly {PROFILES}, got {sorted(table)}")
    settings = dict(table[profile])
    for knob, value in overrides.items():
        if knob not in settings:
            raise ValueError(f"unknown parameter {knob!r}; this notebook's knobs are {sorted(settings)}")
        if value is None:
            continue
        if not _same_kind(value, settings[knob]):
            raise TypeError(f"parameter {knob!r} must be like {settings[knob]!r} "
                            f"({type(settings[knob]).__name__}), got {value!r} ({type(value).__name__})")
        settings[knob] = value
    return SimpleNamespace(**settings)


def resolve_from(profile: str, table: dict[str, dict], namespace: dict) -> SimpleNamespace:
    """:func:`resolve` with the overrides read from ``namespace`` (a notebook passes ``globals()``).

    Each knob of the table is looked up by name among the parameters cell's variables, so a
    notebook names its knobs twice (parameters cell, profile table) instead of three times.

    Args:
        profile: ``smoke``, ``default`` or ``full``.
        table: ``{profile: {knob: value}}``.
        namespace: variables that may override knobs (``None`` keeps the profile's value).

    Returns:
        The settings as attributes.
    """
    check_profile(profile)
    knobs = set().union(*(row.keys() for row in table.values()))
    return resolve(profile, table, **{k: namespace[k] for k in sorted(knobs) if k in namespace})
