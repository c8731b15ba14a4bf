"""One matplotlib style for every notebook, and atomic PNG + PDF saving with provenance.

``publish(fig, name, out_dir, provenance, proxy=...)`` is a notebook figure's tail: proxy label, save,
show. ``save(fig, name, out_dir, provenance)`` writes ``name.png`` and ``name.pdf``; each is written to a
temporary file and renamed into place, and carries the provenance (paper, profile, commit, ...) in
its metadata (PNG text chunks, PDF Subject/Keywords). ``$PAPERLIB_FIGURE_FORMATS`` (comma-separated,
default ``png,pdf``) narrows the formats: the test suite's smoke runs write PNG only.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt

from paperlib._atomic import atomic_write_bytes

STYLE = {
    "figure.dpi": 110,
    "figure.constrained_layout.use": True,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.4,
    "image.cmap": "viridis",
    "axes.prop_cycle": matplotlib.cycler(color=plt.get_cmap("tab10").colors),
    "pdf.fonttype": 42,
}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
FORMATS_ENV = "PAPERLIB_FIGURE_FORMATS"
FORMATS = ("png", "pdf")


def formats() -> tuple[str, ...]:
    """The formats :func:`save` writes: ``$PAPERLIB_FIGURE_FORMATS`` (e.g. ``png``), else PNG and PDF.

    Returns:
      The chosen format names (file extensions), in order.
    """
    chosen = tuple(f.strip() for f in os.environ.get(FORMATS_ENV, ",".join(FORMATS)).split(",") if f.strip())
    if not chosen or set(chosen) - set(FORMATS):
        raise ValueError(f"{FORMATS_ENV}={os.environ[FORMATS_ENV]!r}: choose from {', '.join(FORMATS)}")
    return chosen


def use_style() -> None:
    """Apply the house style to every figure made after this call."""
    plt.rcParams.update(STYLE)


def proxy_note(fig: plt.Figure, text: str) -> None:
    """Stamp a visible 'proxy' label under everything else in a figure whose data stand in for the
    paper's. Call it once the axes are complete (it measures where their labels end).

    Args:
      fig: the finished figure.
      text: what stands in for what, e.g. ``"8x8 digits stand in for MNIST"``.
    """
    fig.canvas.draw()
    bottom = fig.get_tightbbox().y0 / fig.get_figheight()  # inches -> figure fraction
    fig.text(0.5, bottom - 0.01, f"Proxy: {text}", ha="center", va="top", fontsize=7.5,
             style="italic", color="0.3", wrap=True)


def save(fig: plt.Figure, name: str, out_dir: str | Path, provenance: dict | None = None) -> list[Path]:
    """Write ``out_dir/name.png`` and ``out_dir/name.pdf`` (the :func:`formats`) atomically, provenance
    in their metadata.

    Args:
      fig: the figure.
      name: a plain file stem (letters, digits, ``_ . -``).
      out_dir: the existing output folder.
      provenance: ``{key: value}`` stamped into both files (paper, profile, git commit, ...).

    Returns:
      The paths written, PNG first.
    """
    chosen = formats()
    if not _NAME.match(name):
        raise ValueError(f"figure name {name!r} must be a plain file stem (letters, digits, _ . -)")
    provenance = {k: str(v) for k, v in (provenance or {}).items()}
    described = json.dumps(provenance, sort_keys=True)
    metadata = {
        "png": {"Title": name, "Software": "paperlib", "Description": described},
        "pdf": {"Title": name, "Creator": "paperlib", "Subject": described,
                "Keywords": ", ".join(f"{k}={v}" for k, v in sorted(provenance.items()))},
    }
    paths = []
    for fmt in chosen:
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, metadata=metadata[fmt])
        paths.append(atomic_write_bytes(Path(out_dir) / f"{name}.{fmt}", buf.getvalue()))
    return paths


def publish(fig: plt.Figure, name: str, out_dir: str | Path, provenance: dict | None = None, *,
            proxy: str | None = None) -> list[Path]:
    """The tail of every notebook figure: stamp the ``proxy`` label (if the data stand in for the
    paper's), save PNG + PDF atomically with provenance, and show the figure.

    Args:
      fig, name, out_dir, provenance: as in :func:`save`.
      proxy: what stands in for the paper's data or model, if anything (see :func:`proxy_note`).

    Returns:
      The paths written, PNG first.
    """
    if proxy:
        proxy_note(fig, proxy)
    paths = save(fig, name, out_dir, provenance)
    plt.show()
    return paths
