"""The runner's contract, on tiny throw-away notebooks (no model code): validation before any run,
isolation of failures, exit codes, atomic output folders, provenance and summaries."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from paperlib import notebooks as nbs
from paperlib import reproduce

BODY = """
import os
import time
from pathlib import Path
from paperlib.claims import Registry
from paperlib.profiles import check_profile
check_profile(profile)
reg = Registry("toy", profile)
if mode == "raise":
    raise RuntimeError("boom from the toy notebook")
if mode == "sleep":
    Path(out_dir, "started").write_text(str(os.getpid()))
    time.sleep(120)
reg.check("seed", "the -p seed reached the notebook", seed, expected_seed, "==", source="closed form: identity",
          kind="paper")
reg.check("sum", "our own arithmetic", 1 + 1, 2, "==", source="closed form: arithmetic", kind="check")
if mode == "fail":
    reg.check("one_is_two", "a claim that must fail", 1, 2, "==", source="closed form: arithmetic", kind="paper")
if mode == "nan":
    reg.check("nan", "a claim whose value is not a number", float("nan"), 1.0, "<=",
              source="closed form: arithmetic", kind="paper")
if mode in ("gap", "gap_passes"):
    reg.check("declared_gap", "a declared reproduction gap", 1 if mode == "gap" else 2, 2, "==",
              source="closed form: arithmetic", kind="paper", gap="our toy does not reach the paper's 2")
reg.save(Path(out_dir) / "claims.json")
"""


def _toy_notebook(path: Path, mode: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["paperlib"] = {"title": f"Toy ({mode})", "citation": "Nobody, Toy notebook (2026)",
                               "arxiv": "0000.00000", "profiles": ["smoke", "default", "full"],
                               "items": [{"id": "thm1", "title": "Theorem 1: seeds arrive", "status": "reproduced",
                                          "claims": ["seed"], "figures": [], "note": "toy"},
                                         {"id": "fig9", "title": "Figure 9", "status": "out of scope",
                                          "claims": [], "figures": [], "note": "needs a download"}]}
    params = nbformat.v4.new_code_cell(
        f'profile = "default"  # smoke | default | full\nout_dir = "output"\nseed: int = 0  # [0, inf) master seed\n'
        f'expected_seed: int = 0\nmode = "{mode}"\nlabel: str | None = None\n'
        f'widths: list[int] | None = None  # [1, inf) hidden widths\n'
        f'dtype: str | None = None  # {{float32, float64}} dtype of the sweeps\n')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# Toy {mode}"), params, nbformat.v4.new_code_cell(BODY)]
    nbformat.write(nb, path)


@pytest.fixture
def toys(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for mode in ("pass", "raise", "sleep", "fail", "gap", "gap_passes", "nan"):
        _toy_notebook(folder / f"toy_{mode}.ipynb", mode)
    return folder


def _cli(*args, notebooks: Path, **kw):
    return subprocess.run([sys.executable, "-m", "paperlib", *args, "--notebooks", str(notebooks)],
                          capture_output=True, text=True, timeout=300, **kw)


@pytest.mark.parametrize("args, message", [
    (["--profile", "huge"], "unknown profile 'huge'"),
    (["--only", "no_such_notebook"], "unknown notebook(s) no_such_notebook"),
    (["--only", "toy_pass", "-p", "seed", "abc"], "parameter 'seed' expects int"),
    (["--only", "toy_pass", "-p", "seed", "1.5"], "parameter 'seed' expects int"),
    (["--only", "toy_pass", "-p", "nonsense", "1"], "unknown parameter 'nonsense'"),
    (["--only", "toy_pass", "-p", "profile", "smoke"], "set 'profile' with --profile"),
    (["--jobs", "0"], "--jobs must be at least 1"),
    (["--only", "toy_pass", "-p", "seed", "-1"], "parameter 'seed' must be in [0, inf), got -1"),
    (["--only", "toy_pass", "-p", "widths", "[]"], "parameter 'widths' must not be empty"),
    (["--only", "toy_pass", "-p", "widths", "[8, 0]"], "parameter 'widths' must be in [1, inf)"),
    (["--only", "toy_pass", "-p", "widths", "[8, 'x']"], "parameter 'widths' expects a list of int"),
    (["--only", "toy_pass", "-p", "dtype", "float16"], "parameter 'dtype' must be one of {float32, float64}"),
])
def test_bad_command_line_is_rejected_before_any_run(toys, tmp_path, args, message):
    out = tmp_path / "out"
    proc = _cli("reproduce", "--out", str(out), *args, notebooks=toys)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert not out.exists(), "nothing may run (or be written) when the command line is bad"


def test_failures_are_isolated_and_reported(toys, tmp_path):
    out = tmp_path / "out"
    results = reproduce.reproduce("smoke", ["toy_raise", "toy_pass", "toy_fail"], out,
                                  params=[("seed", "3"), ("expected_seed", "3")], notebooks_dir=toys)
    status = {r.name: r.status for r in results}
    assert status == {"toy_raise": "error", "toy_pass": "ok", "toy_fail": "not as declared"}
    assert "boom from the toy notebook" in next(r.message for r in results if r.name == "toy_raise")
    assert not (out / "toy_raise").exists() and (out / ".failed" / "toy_raise").is_dir()
    for name in ("toy_pass", "toy_fail"):
        assert {"claims.json", "run.json", f"{name}.ipynb"} <= {p.name for p in (out / name).iterdir()}
    run = json.loads((out / "toy_pass" / "run.json").read_text())
    assert run["profile"] == "smoke" and run["parameters"]["seed"] == 3
    assert run["wall_time_s"] > 0 and run["budget_s"] == 180 and "jax" in run["packages"]
    assert run["device"]["backend"] in ("cpu", "gpu", "cuda", "tpu")
    assert run["paper_items"][0]["claims"] == ["seed"]
    summary = (out / "README.md").read_text()
    assert "| [Toy (pass)](toy_pass/) | 1/1 | 0 | 1/1 | 1 reproduced, 1 out of scope |" in summary
    assert "| [Toy (fail)](toy_fail/) | 1/2 (**not as declared: one_is_two**) |" in summary
    assert "| Theorem 1: seeds arrive | reproduced | seed (pass) |" in summary
    assert not list(out.glob(".tmp-*"))


def test_exit_code_is_nonzero_when_a_notebook_fails(toys, tmp_path):
    out = tmp_path / "out"
    ok = _cli("reproduce", "--profile", "smoke", "--out", str(out), "--only", "toy_pass", notebooks=toys)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "[ok] toy_pass: 1/1 paper claims" in ok.stdout
    bad = _cli("reproduce", "--profile", "smoke", "--out", str(out), "--only", "toy_pass", "toy_raise",
               "--jobs", "2", notebooks=toys)
    assert bad.returncode == 1
    assert "[error] toy_raise" in bad.stdout and "[ok] toy_pass" in bad.stdout


def test_declared_gaps_decide_the_verdict(toys, tmp_path):
    """A declared gap that fails is as declared (green); a gap that passes is not (red), as is an
    undeclared failure."""
    out = tmp_path / "out"
    results = {r.name: r for r in reproduce.reproduce("smoke", ["toy_gap", "toy_gap_passes", "toy_fail"], out,
                                                      notebooks_dir=toys)}
    assert results["toy_gap"].status == "ok" and (results["toy_gap"].passed, results["toy_gap"].total) == (1, 2)
    assert results["toy_gap_passes"].status == "not as declared"
    assert "declared_gap" in results["toy_gap_passes"].message
    assert results["toy_fail"].status == "not as declared"
    gap = next(c for c in json.loads((out / "toy_gap" / "claims.json").read_text())["claims"]
               if c["id"] == "declared_gap")
    assert (gap["kind"], gap["expected"], gap["passed"], gap["as_expected"]) == ("paper", "fail", False, True)
    summary = (out / "README.md").read_text()
    assert "| [Toy (gap)](toy_gap/) | 1/2 | 1 | 1/1 |" in summary
    gap_only = _cli("reproduce", "--profile", "smoke", "--out", str(tmp_path / "o2"), "--only", "toy_gap",
                    notebooks=toys)
    assert gap_only.returncode == 0, gap_only.stdout + gap_only.stderr
    passes = _cli("reproduce", "--profile", "smoke", "--out", str(tmp_path / "o3"), "--only", "toy_gap_passes",
                  notebooks=toys)
    assert passes.returncode == 1


def test_papers_table_lists_gaps_with_reasons(toys, tmp_path):
    out = tmp_path / "out"
    reproduce.reproduce("smoke", ["toy_gap"], out, notebooks_dir=toys)
    table = reproduce.papers_table(reproduce.summary_rows(out), "figures/")
    assert "| [toy_gap](figures/toy_gap/) | 1 reproduced, 1 out of scope | 1/2 | 1/1 |" in table
    assert "`declared_gap`: our toy does not reach the paper's 2" in table


@pytest.mark.parametrize("items, message", [
    ("nope", "must be a list"),
    ([{"id": "a"}], "exactly the keys"),
    ([dict(id="a", title="A", status="done", claims=[], figures=[], note="")], "has status 'done'"),
    ([dict(id="a", title="A", status="partial", claims=[], figures=[], note="")], "names no claim"),
    ([dict(id="a", title="A", status="out of scope", claims=[], figures=[], note="")] * 2, "listed twice"),
])
def test_bad_paper_items_are_refused(items, message):
    with pytest.raises(ValueError, match=message):
        nbs.check_items(items, "nb")


def test_crashed_run_keeps_previous_results(toys, tmp_path):
    out = tmp_path / "out"
    previous = out / "toy_raise"
    previous.mkdir(parents=True)
    (previous / "fig1.png").write_bytes(b"previous figure")
    reproduce.reproduce("smoke", ["toy_raise"], out, notebooks_dir=toys)
    assert (previous / "fig1.png").read_bytes() == b"previous figure"


def test_ctrl_c_in_a_terminal_is_an_interruption_not_a_failure(toys, tmp_path):
    out = tmp_path / "out"
    previous = out / "toy_sleep"
    previous.mkdir(parents=True)
    (previous / "claims.json").write_text("previous")
    proc, kernel = _start_sleeping_run(toys, out)
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the whole foreground process group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "stopped by SIGINT" in err
    assert _gone(kernel)
    assert (previous / "claims.json").read_text() == "previous"
    assert not list(out.glob(".tmp-*")), "an interrupted run must clean its temporary folder"
    assert not (out / ".failed").exists(), "an interruption is not a notebook failure"


def _start_sleeping_run(toys, out):
    """A runner on toy_sleep in a session of its own; returns it and the kernel's pid once it computes."""
    proc = subprocess.Popen([sys.executable, "-m", "paperlib", "reproduce", "--profile", "smoke",
                             "--out", str(out), "--only", "toy_sleep", "--notebooks", str(toys)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 120
    while not list(out.glob(".tmp-toy_sleep-*/started")) and time.time() < deadline:
        time.sleep(0.2)
    assert time.time() < deadline, "the toy notebook never started"
    time.sleep(0.2)
    return proc, int(next(out.glob(".tmp-toy_sleep-*/started")).read_text())


def _gone(pid: int, within_s: float = 15.0) -> bool:
    deadline = time.time() + within_s
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # a zombie is gone for our purpose
            if Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z"):
                return True
        except OSError:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("sig, code, word", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT"),
                                             (signal.SIGHUP, 129, "SIGHUP")])
def test_signal_to_the_runner_stops_kernel_and_keeps_results(toys, tmp_path, sig, code, word):
    """What `timeout`, a CI cancel or a batch scheduler sends goes to the runner's pid alone."""
    out = tmp_path / "out"
    (out / "toy_sleep").mkdir(parents=True)
    (out / "toy_sleep" / "claims.json").write_text("previous")
    proc, kernel = _start_sleeping_run(toys, out)
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert f"stopped by {word}" in err and "no notebook had finished" in err and "Traceback" not in err
    assert _gone(kernel), "the kernel outlived the runner"
    assert (out / "toy_sleep" / "claims.json").read_text() == "previous"
    assert not list(out.glob(".tmp-*")) and not (out / ".failed").exists()


def test_sigkill_to_the_runner_takes_papermill_and_kernel_along(toys, tmp_path):
    out = tmp_path / "out"
    (out / "toy_sleep").mkdir(parents=True)
    (out / "toy_sleep" / "claims.json").write_text("previous")
    proc, kernel = _start_sleeping_run(toys, out)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert _gone(kernel), "the kernel outlived a SIGKILLed runner"
    assert (out / "toy_sleep" / "claims.json").read_text() == "previous"
    # the next run sweeps the dead run's temporary folder
    reproduce.reproduce("smoke", ["toy_pass"], out, notebooks_dir=toys)
    assert not list(out.glob(".tmp-*"))


def test_a_second_run_on_the_same_folder_is_refused(toys, tmp_path):
    out = tmp_path / "out"
    first, _ = _start_sleeping_run(toys, out)
    try:
        second = _cli("reproduce", "--profile", "smoke", "--out", str(out), "--only", "toy_pass", notebooks=toys)
        assert second.returncode == 2 and "another paperlib run" in second.stderr
        assert len(list(out.glob(".tmp-toy_sleep-*"))) == 1, "the live run's temporary folder must survive"
        elsewhere = _cli("reproduce", "--profile", "smoke", "--out", str(tmp_path / "other"), "--only",
                         "toy_pass", notebooks=toys)
        assert elsewhere.returncode == 0, elsewhere.stderr
    finally:
        os.kill(first.pid, signal.SIGTERM)
        first.communicate(timeout=60)


def test_out_is_checked_before_any_run(toys, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cases = [(["--out", str(a_file)], "is a file"),
             (["--out", str(a_file / "sub")], "is a file"),
             (["--out", str(toys / "results")], "inside the notebooks folder"),
             (["-p", "seed", "3"], "needs --out"),
             (["--profile", "smoke"], "needs --out")]
    for args, message in cases:
        proc = _cli("reproduce", "--only", "toy_pass", *args, notebooks=toys)
        assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.splitlines()) == 1, args
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        proc = _cli("reproduce", "--profile", "smoke", "--only", "toy_pass", "--out", str(locked / "o"),
                    notebooks=toys)
        assert proc.returncode == 2 and "not writable" in proc.stderr


def test_non_finite_claims_never_replace_results(toys, tmp_path):
    out = tmp_path / "out"
    (out / "toy_nan").mkdir(parents=True)
    (out / "toy_nan" / "claims.json").write_text("previous")
    [result] = reproduce.reproduce("smoke", ["toy_nan"], out, notebooks_dir=toys)
    assert result.status == "error" and "non-finite claim values: nan" in result.message
    assert (out / "toy_nan" / "claims.json").read_text() == "previous"
    assert (out / ".failed" / "toy_nan" / "claims.json").exists()


def test_failure_log_summary_modes_and_dedup(toys, tmp_path):
    out = tmp_path / "out"
    results = reproduce.reproduce("smoke", ["toy_raise", "toy_pass", "toy_pass"], out, notebooks_dir=toys)
    assert [r.name for r in results] == ["toy_raise", "toy_pass"]
    assert "boom from the toy notebook" in (out / ".failed" / "toy_raise" / "papermill.log").read_text()
    assert "`toy_raise` (see `.failed/toy_raise/`)" in (out / "README.md").read_text()
    old = os.umask(0o022)
    os.umask(old)
    if old == 0o022:
        for path in (out / "toy_pass", out / "toy_pass" / "run.json", out / "toy_pass" / "claims.json"):
            assert path.stat().st_mode & 0o777 == (0o755 if path.is_dir() else 0o644), path


def test_list_name_shows_each_knob_with_type_range_and_meaning(toys):
    proc = _cli("list", "toy_pass", notebooks=toys)
    assert proc.returncode == 0, proc.stderr
    assert "widths: list[int] | None, [1, inf) (default None) - hidden widths" in proc.stdout
    assert "dtype: str | None, {float32, float64} (default None) - dtype of the sweeps" in proc.stdout


def test_list_shows_citation_and_parameters(toys):
    proc = _cli("list", notebooks=toys)
    assert proc.returncode == 0
    assert "toy_pass" in proc.stdout and "Nobody, Toy notebook (2026)" in proc.stdout
    assert "seed=0" in proc.stdout


def test_parameter_types_come_from_annotations_and_defaults():
    knobs = nbs.parse_parameters('profile = "x"  # which\nseed: int = 0\nsteps: int | None = None\n'
                                 'gammas: list[float] | None = None\nrate = 0.5\nanything = None\n')
    assert knobs["profile"].help == "which"
    assert nbs.parse_value(knobs["steps"], "None") is None
    assert nbs.parse_value(knobs["steps"], "7") == 7
    assert nbs.parse_value(knobs["gammas"], "[0.1, 1]") == [0.1, 1]
    assert nbs.parse_value(knobs["rate"], "2") == 2  # an int is a fine float
    assert nbs.parse_value(knobs["anything"], "word") == "word"
    for knob, text in [("seed", "True"), ("steps", "2.5"), ("gammas", "3"), ("rate", "fast")]:
        with pytest.raises(ValueError, match=f"parameter '{knob}' expects"):
            nbs.parse_value(knobs[knob], text)


def test_parallel_jobs_are_recorded_and_full_runs_one_at_a_time(toys, tmp_path):
    assert reproduce.default_jobs("full") == 1 and 1 <= reproduce.default_jobs("default") <= 4
    out = tmp_path / "out"
    results = reproduce.reproduce("smoke", ["toy_pass", "toy_gap"], out, jobs=2, notebooks_dir=toys)
    assert [r.name for r in results] == ["toy_pass", "toy_gap"] and all(r.ok for r in results)
    assert {json.loads((out / n / "run.json").read_text())["parallel_jobs"] for n in ("toy_pass", "toy_gap")} == {2}
    reproduce.reproduce("smoke", ["toy_pass"], out, jobs=3, notebooks_dir=toys)
    assert json.loads((out / "toy_pass" / "run.json").read_text())["parallel_jobs"] == 1


SCALE = {"rows": [{"quantity": "widths", "paper": "64 ... 8192", "knob": "widths"},
                  {"quantity": "data", "paper": "MNIST (60,000)", "profiles": "digits 8x8 (1,797), proxy"},
                  {"quantity": "seeds", "paper": 10, "profiles": {"full": 10, "default": 3, "smoke": 1}}],
         "note": "full stays at the digits proxy: MNIST cannot be downloaded here"}


def test_scale_tables_read_knob_rows_from_the_profile_table(tmp_path):
    path = tmp_path / "toy2024_scale.ipynb"
    _toy_notebook(path, "pass")
    nb = json.loads(path.read_text())
    nb["metadata"]["paperlib"]["scale"] = SCALE
    nb["cells"].insert(2, nbformat.v4.new_code_cell(
        'PROFILES = {"smoke": dict(widths=[64]), "default": dict(widths=[64, 256]), '
        '"full": dict(widths=[64, 256, 1024])}\ncfg = profiles.resolve(profile, PROFILES, widths=widths)'))
    path.write_text(json.dumps(nb))
    rows = nbs.scale_table(nbs.load(path))
    assert rows[0] == {"quantity": "widths", "paper": "64 ... 8192", "full": "64, 256, 1024",
                       "default": "64, 256", "smoke": "64"}
    assert rows[1]["smoke"] == rows[1]["full"] == "digits 8x8 (1,797), proxy" and rows[2]["default"] == "3"
    assert nbs._shown([[3, 8], [8, 9]]) == "(3, 8), (8, 9)" and nbs._shown([0.5, 2]) == "0.5, 2"
    text = reproduce.scale_section({"title": "Toy", "scale": {"rows": rows, "note": SCALE["note"]}})
    assert "| widths | 64 ... 8192 | 64, 256, 1024 | 64, 256 | 64 |" in text and SCALE["note"] in text
    for bad in ({"rows": [{"quantity": "x", "paper": "y"}], "note": ""},
                {"rows": [{"quantity": "x", "paper": "y", "knob": "a", "profiles": "b"}], "note": ""},
                {"rows": [{"quantity": "x", "paper": "y", "profiles": {"full": 1}}], "note": ""}, {"rows": []}):
        with pytest.raises(ValueError, match="scale"):
            nbs.check_scale(bad, "toy")
    nb["metadata"]["paperlib"]["scale"] = {"rows": [{"quantity": "n", "paper": "1", "knob": "depth"}], "note": ""}
    path.write_text(json.dumps(nb))
    with pytest.raises(ValueError, match="names knob 'depth'"):
        nbs.scale_table(nbs.load(path))
