"""``paperlib new NAME``: the files a new paper starts from (see CONTRIBUTING.md).

It writes ``notebooks/NAME.ipynb`` (metadata with a paper-item table, the parameters cell, the profile
table, ``session.start``, one protocol call, one claim, one figure, the claim table),
``paperlib/experiments/<author>.py`` (the protocol the notebook calls) and
``tests/test_experiments_<author>.py`` (its test against a closed form). The result runs under the smoke
profile and passes the house checks as it stands; a contributor then replaces the example protocol,
claim and figure with the paper's.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

NAME_PATTERN = re.compile(r"^([a-z]+)(\d{4})_[a-z0-9_]+$")

PROTOCOL = '''"""Protocols for {title}.

{citation}
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class MeanEstimate(NamedTuple):
    mean: jax.Array  # () sample mean
    se: jax.Array  # () its standard error


@jax.jit
def gaussian_mean(key: jax.Array, samples: jax.Array) -> MeanEstimate:
    """Example protocol (replace it): the mean of standard normal draws with its standard error.

    Args:
      key: PRNG key.
      samples: (n,) preallocated array whose length sets n (static shapes, one compilation per n).

    Returns:
      ``MeanEstimate`` of the n draws; the closed-form mean is 0 and the s.e. is about n**-0.5.
    """
    draws = jax.random.normal(key, samples.shape, samples.dtype)
    return MeanEstimate(draws.mean(), draws.std(ddof=1) / jnp.sqrt(draws.size))
'''

TEST = '''"""Tests of paperlib.experiments.{author} against independent truths."""

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from paperlib.experiments import {author}  # noqa: E402


def test_gaussian_mean_matches_the_closed_form_within_its_standard_error():
    n = 4096
    est = {author}.gaussian_mean(jax.random.key(0), np.zeros(n))
    assert abs(float(est.se) - n ** -0.5) < 0.05 * n ** -0.5  # s.e. of N(0, 1) draws
    assert abs(float(est.mean)) < 4 * float(est.se)  # closed-form mean 0
'''

INTRO = """# {title}

**{citation}** arXiv:{arxiv}.

One paragraph: the paper's setting, its headline claims and what this notebook checks (replace this).

| paper item | what this notebook checks | section |
|---|---|---|
| Example | a Monte-Carlo mean against its closed form (replace) | 1 |
"""

PARAMETERS = """profile = "default"  # smoke | default | full
out_dir = "output"  # folder for figures and claims.json (the runner sets it)
seed: int = 0  # [0, inf) master seed
n_samples: int | None = None  # [2, inf) Monte-Carlo draws of the example; None: the profile's
"""

SETUP = """import jax
jax.config.update("jax_enable_x64", True)  # theorem checks in float64
import matplotlib.pyplot as plt
import numpy as np

from paperlib import figures, profiles, session
from paperlib.experiments import {author}

PAPER = "{name}"
PROFILES = {{
    "smoke": dict(n_samples=1_000),
    "default": dict(n_samples=100_000),
    "full": dict(n_samples=10_000_000),
}}
cfg = profiles.resolve_from(profile, PROFILES, globals())  # the parameters cell overrides
out, reg, prov = session.start(PAPER, profile, out_dir)
key = jax.random.key(seed)
"""

SECTION = """## 1. Example (replace)

A protocol from `paperlib.experiments.{author}`, one claim with its source and kind, one figure."""

EXAMPLE = """est = {author}.gaussian_mean(key, np.zeros(cfg.n_samples))
reg.statistical("example.mean", "Monte-Carlo mean of N(0, 1) draws", mean=float(est.mean),
                se=float(est.se), n=cfg.n_samples, target=0.0, rule="equal",
                source="closed form: E N(0, 1) = 0", kind="check")

fig, ax = plt.subplots(figsize=(4, 3))
ax.errorbar([0], [float(est.mean)], yerr=[3 * float(est.se)], fmt="o", label="mean ± 3 s.e.")
ax.axhline(0.0, color="k", lw=0.8, label="closed form")
ax.set(xticks=[], ylabel="mean", title=f"{{cfg.n_samples}} draws")
ax.legend()
figures.publish(fig, "example_mean", out, prov, proxy="synthetic draws (replace, or drop proxy=)")
"""

CLAIMS = "session.finish(reg, out)  # claims.json and the claim table\n"


def author_of(name: str) -> str:
    """The first author's part of a notebook name ``<author><year>_<topic>``."""
    match = NAME_PATTERN.match(name)
    if not match:
        raise ValueError(f"notebook name {name!r} must look like 'smith2025_short_topic' "
                         "(lower-case author, year, underscore, lower-case topic)")
    return match.group(1)


def notebook(name: str, title: str, citation: str, arxiv: str) -> nbformat.NotebookNode:
    """The template notebook of paper ``name``."""
    author = author_of(name)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["paperlib"] = {
        "title": title, "citation": citation, "arxiv": arxiv, "profiles": ["smoke", "default", "full"],
        "items": [{"id": "example", "title": "Example item (replace with the paper's theorems, figures "
                   "and tables)", "status": "not reproduced", "claims": [], "figures": [],
                   "note": "template"}]}
    params = nbformat.v4.new_code_cell(PARAMETERS)
    params.metadata["tags"] = ["parameters"]
    fill = dict(name=name, author=author, title=title, citation=citation, arxiv=arxiv)
    nb.cells = [nbformat.v4.new_markdown_cell(INTRO.format(**fill)), params,
                nbformat.v4.new_code_cell(SETUP.format(**fill)),
                nbformat.v4.new_markdown_cell(SECTION.format(**fill)),
                nbformat.v4.new_code_cell(EXAMPLE.format(**fill)),
                nbformat.v4.new_markdown_cell("## Claims"),
                nbformat.v4.new_code_cell(CLAIMS)]
    return nb


def create(name: str, title: str, citation: str, arxiv: str, root: Path) -> list[Path]:
    """Write the notebook, protocol module and test of paper ``name`` under ``root`` (the repository);
    refuse to overwrite anything. Returns the paths written."""
    author = author_of(name)
    paths = {root / "notebooks" / f"{name}.ipynb": None,
             root / "paperlib" / "experiments" / f"{author}.py": PROTOCOL,
             root / "tests" / f"test_experiments_{author}.py": TEST}
    taken = [str(p) for p in paths if p.exists()]
    if taken:
        raise FileExistsError(f"already there, not overwritten: {', '.join(taken)}")
    fill = dict(author=author, title=title, citation=citation)
    for path, text in paths.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if text is None:
            nbformat.write(notebook(name, title, citation, arxiv), path)
        else:
            path.write_text(text.format(**fill))
    return list(paths)
