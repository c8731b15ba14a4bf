"""Every notebook in notebooks/ under the smoke profile, through the runner, into a temporary folder:
it must run, record claims, pass every one of them and stay within the smoke time budget."""

import json

import pytest

from paperlib import notebooks as nbs
from paperlib import reproduce
from paperlib.profiles import BUDGET_SECONDS

NOTEBOOKS = sorted(nbs.discover())


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no notebook"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_clean(name):
    nb = json.loads(nbs.discover()[name].path.read_text())
    assert not any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), "clear the outputs"
    assert nb["metadata"]["paperlib"]["citation"] and nb["metadata"]["paperlib"]["arxiv"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_smoke(name, tmp_path):
    [result] = reproduce.reproduce("smoke", [name], tmp_path)
    assert result.status != "error", result.message
    claims = json.loads((tmp_path / name / "claims.json").read_text())["claims"]
    failed = [f"{c['id']}: {c['statement']} (value {c['value']}, target {c['target']})"
              for c in claims if not c["passed"]]
    assert claims and not failed, "failed claims:\n" + "\n".join(failed)
    assert result.wall_s <= BUDGET_SECONDS["smoke"], f"smoke run took {result.wall_s:.0f} s"
