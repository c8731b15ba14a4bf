"""``paperlib new``: the scaffold of a paper runs under smoke and passes the house checks as it stands."""

import importlib
import importlib.util
import json
import subprocess
import sys

import pytest

from paperlib import notebooks as nbs
from paperlib import reproduce, scaffold

NAME = "smith2025_scaffold_probe"
ARGS = ["--title", "Smith et al. 2025: a probe", "--citation", "A. Smith. A probe. 2025.", "--arxiv",
        "2501.00001"]


def test_bad_names_and_existing_files_are_refused(tmp_path):
    for bad in ("Smith2025_x", "smith_x", "smith2025", "smith2025_X"):
        with pytest.raises(ValueError, match="must look like"):
            scaffold.author_of(bad)
    scaffold.create(NAME, "t", "c", "a", tmp_path)
    with pytest.raises(FileExistsError, match="not overwritten"):
        scaffold.create(NAME, "t", "c", "a", tmp_path)
    cli = subprocess.run([sys.executable, "-m", "paperlib", "new", "Bad-Name", *ARGS, "--root", str(tmp_path)],
                         capture_output=True, text=True)
    assert cli.returncode == 2 and "must look like" in cli.stderr


def test_the_scaffold_runs_under_smoke_and_passes_the_house_checks(tmp_path, monkeypatch):
    cli = subprocess.run([sys.executable, "-m", "paperlib", "new", NAME, *ARGS, "--root", str(tmp_path)],
                         capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    monkeypatch.setenv("PAPERLIB_EXPERIMENTS_PATH", str(tmp_path / "paperlib" / "experiments"))
    experiments = importlib.import_module("paperlib.experiments")
    monkeypatch.setattr(experiments, "__path__", [*experiments.__path__, str(tmp_path / "paperlib" / "experiments")])

    spec = importlib.util.spec_from_file_location("scaffold_test", tmp_path / "tests" / "test_experiments_smith.py")
    stub = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stub)
    stub.test_gaussian_mean_matches_the_closed_form_within_its_standard_error()  # the generated test

    notebook = nbs.discover(tmp_path / "notebooks")[NAME]
    assert notebook.items and set(notebook.knobs) >= {"profile", "out_dir", "seed", "n_samples"}
    table = nbs.profile_values(notebook.path)
    assert set(table) == {"smoke", "default", "full"}
    assert all(notebook.knobs[k].problem(v) is None for row in table.values() for k, v in row.items())
    [result] = reproduce.reproduce("smoke", [NAME], tmp_path / "out", notebooks_dir=tmp_path / "notebooks")
    assert result.ok, result.message
    claims = json.loads((tmp_path / "out" / NAME / "claims.json").read_text())["claims"]
    assert [c["id"] for c in claims] == ["example.mean"] and all(c["as_expected"] for c in claims)
    assert (tmp_path / "out" / NAME / "example_mean.png").exists()
