"""What every notebook does once its profile is resolved, in one call."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from paperlib import claims, figures, provenance


class Session(NamedTuple):
    """What :func:`start` hands a notebook: ``out, reg, prov = session.start(...)``."""

    out: Path  # the output folder (created)
    reg: claims.Registry  # the notebook's claims; ``reg.save(out / "claims.json")`` at the end
    prov: dict  # provenance stamped into every saved figure (paper, profile, git commit)


def start(paper: str, profile: str, out_dir: str | Path) -> Session:
    """Create ``out_dir``, a claim registry for ``paper`` at ``profile``, the figure provenance, and switch
    matplotlib to the house style.

    Args:
      paper: the notebook's id (its file stem), e.g. ``"jacot2018_ntk"``.
      profile: the resolved profile.
      out_dir: the output folder (created if missing).

    Returns:
      ``Session(out, reg, prov)``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures.use_style()
    return Session(out, claims.Registry(paper, profile),
                   {"paper": paper, "profile": profile, "git_commit": provenance.git_commit()})


def finish(reg: claims.Registry, out: Path) -> None:
    """The last cell of every notebook: save ``out/claims.json`` and show the claim table.

    Args:
      reg: the notebook's claim registry.
      out: the output folder of :func:`start`.
    """
    from IPython.display import Markdown, display

    reg.save(Path(out) / "claims.json")
    display(Markdown(reg.table()))
