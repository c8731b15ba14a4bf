"""Every notebook in notebooks/ under the smoke profile, through the runner, into a temporary folder:
it must run, record claims, give every claim the verdict it declares (passed, or a declared reproduction
gap that failed), back its paper-item table with the claims and figures it names, and stay within the
smoke time budget."""

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
    assert nbs.discover()[name].items, "declare the paper-item table (metadata.paperlib.items)"
    assert nbs.discover()[name].scale, "declare the scale table (metadata.paperlib.scale)"
    assert nbs.scale_table(nbs.discover()[name]), "the scale table names a knob the profile table lacks"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_follows_the_house_layout(name):
    """The same names for the same things in every notebook (CONTRIBUTING.md)."""
    nb = json.loads(nbs.discover()[name].path.read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    for needed in (f'PAPER = "{name}"', "session.start(PAPER, profile, out_dir)", "PROFILES = {",
                   "session.finish(reg, out)"):
        assert needed in code, f"the notebook lacks {needed!r}"
    assert "figures.save(" not in code, "end figures with figures.publish (label, save, show)"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_profile_table_obeys_the_declared_knobs(name):
    """Every profile's value of every knob has the declared type, element type and range."""
    nb = nbs.discover()[name]
    table = nbs.profile_values(nb.path)
    assert set(table) == {"smoke", "default", "full"}, "the profile table could not be read"
    for profile, row in table.items():
        for knob, value in row.items():
            assert knob in nb.knobs, f"{profile}: {knob!r} is not a knob of the parameters cell"
            assert nb.knobs[knob].problem(value) is None, f"{profile}: {knob} {nb.knobs[knob].problem(value)}"
    from_profile = {k for k, knob in nb.knobs.items() if knob.default is None}
    for profile, row in table.items():  # a "None: the profile's" knob the table lacks would be ignored
        assert from_profile <= set(row), f"{profile} lacks the knobs {sorted(from_profile - set(row))}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_smoke(name, tmp_path):
    [result] = reproduce.reproduce("smoke", [name], tmp_path)
    assert result.status != "error", result.message
    claims = json.loads((tmp_path / name / "claims.json").read_text())["claims"]
    assert claims, "the notebook recorded no claims"
    wrong = [f"{c['id']} ({'declared gap passed' if c['expected'] == 'fail' else 'failed'}): "
             f"{c['statement']} (value {c['value']}, target {c['target']})"
             for c in claims if not c["as_expected"]]
    assert not wrong, "verdicts not as declared:\n" + "\n".join(wrong)
    items = nbs.discover()[name].items
    named = {cid for item in items for cid in item["claims"]}
    recorded = {c["id"] for c in claims}
    assert named <= recorded, f"paper items name claims the notebook did not record: {sorted(named - recorded)}"
    orphans = {c["id"] for c in claims if c["kind"] == "paper"} - named
    assert not orphans, f"paper claims that back no paper item: {sorted(orphans)}"
    figures = {f for item in items for f in item["figures"]}
    missing = {f for f in figures if not (tmp_path / name / f"{f}.png").exists()}
    assert not missing, f"paper items name figures the notebook did not save: {sorted(missing)}"
    assert result.wall_s <= BUDGET_SECONDS["smoke"], f"smoke run took {result.wall_s:.0f} s"
