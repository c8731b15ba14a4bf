import json

from paperlib import benchmarks


def _write(tmp_path):
    data = {
        "comparisons": {
            "paris": {"wall_s": 12.5, "rows": [{"id": "paris_N100", "ratio": 40.0}]},
            "fbm": {"wall_s": 3.0, "rows": []},
        }
    }
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    return path


def test_load_comparison_and_row(tmp_path):
    path = _write(tmp_path)
    assert benchmarks.load("paris", path)["wall_s"] == 12.5
    assert benchmarks.load("paris_N100", path) == {"id": "paris_N100", "ratio": 40.0}
    assert benchmarks.load("fbm", path)["rows"] == []


def test_load_missing(tmp_path):
    assert benchmarks.load("paris_N4000", _write(tmp_path)) is None
    assert benchmarks.load("paris", tmp_path / "absent.json") is None


def test_committed_results_have_rows_with_timings():
    """The committed results file (benchmarks/run) has a timed, ratio-bearing row per comparison."""
    for name in ("paris", "ntk", "fbm", "hessian"):
        comparison = benchmarks.load(name)
        assert comparison is not None and "error" not in comparison, name
        for row in comparison["rows"]:
            assert row["ours"]["median_s"] > 0 and row["theirs"]["median_s"] > 0
            assert (
                abs(row["ratio"] - row["theirs"]["median_s"] / row["ours"]["median_s"])
                < 1e-9 * row["ratio"]
            )
            assert benchmarks.load(row["id"]) == row
