"""The shared core: claim verdicts and claims.json, profiles, atomic figure saving with provenance."""

import json
import subprocess

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from paperlib import claims, figures, profiles, provenance, session


@pytest.mark.parametrize("value, target, relation, tol, passed", [
    (308, 308, "==", None, True),
    (307, 308, "==", None, False),
    ([2, 2, 16], [2, 2, 16], "==", None, True),
    (12.5004, 12.5, "approx", 1e-3, True),
    (12.502, 12.5, "approx", 1e-3, False),
    (1.04, 1.0, "rel", 0.05, True),
    (1.06, 1.0, "rel", 0.05, False),
    (5.0, 5.6, "<=", None, True),
    (5.6, 5.6, "<", None, False),
    (0.3, 0.0, ">", None, True),
    (-0.5, [-0.65, -0.35], "in", None, True),
    (-0.7, [-0.65, -0.35], "in", None, False),
    ([1.0, 9.0], 5.0, "<=", None, False),
    (float("nan"), 1.0, "<=", None, False),
    (float("inf"), 1.0, ">=", None, False),
])
def test_verdicts(value, target, relation, tol, passed):
    reg = claims.Registry("p", "smoke")
    assert reg.check("c", "s", value, target, relation, tol, source="closed form: test", kind="check").passed is passed


@pytest.mark.parametrize("kwargs, message", [
    (dict(relation="approx"), "needs a tolerance"),
    (dict(relation="~"), "unknown relation"),
    (dict(relation="in", target=[1, 0]), "needs target"),
    (dict(source="our own output"), "source must start with"),
    (dict(tolerance=-1.0, relation="approx"), "non-negative"),
    (dict(kind="theorem"), "kind must be one of"),
    (dict(kind="paper", value=True, target=True), "not a bare boolean"),
    (dict(kind="paper", value=[True, False], target=True), "not a bare boolean"),
    (dict(kind="check", gap="too small"), "only a paper claim can be a declared gap"),
    (dict(gap=""), "needs its reason"),
])
def test_malformed_claims_raise(kwargs, message):
    args = dict(claim_id="c", statement="s", value=1.0, target=1.0, relation="==", tolerance=None,
                source="paper: Table 1", kind="paper") | kwargs
    with pytest.raises(ValueError, match=message):
        claims.Registry("p", "smoke").check(**args)


def test_claims_json_format(tmp_path):
    reg = claims.Registry("tyurin2024", "smoke")
    reg.check("t1", "ok", np.int64(2), 2, "==", source="paper: Table 1", kind="paper")
    reg.check("t2", "bad", np.array([0.5, np.nan]), 1.0, "<=", source="closed form: bound", kind="paper")
    reg.check("t3", "dup", 1, 1, "==", source="paper", kind="check")
    with pytest.raises(ValueError, match="recorded twice"):
        reg.check("t3", "dup", 1, 1, "==", source="paper", kind="check")
    reg.check("t4", "gap", 3.0, 1.0, "<=", source="paper: Thm 2", kind="paper", gap="bound missed by 3x")
    data = json.loads(reg.save(tmp_path / "claims.json").read_text())
    assert data["paper"] == "tyurin2024" and data["profile"] == "smoke"
    assert [c["passed"] for c in data["claims"]] == [True, False, True, False]
    assert set(data["claims"][0]) == {"id", "statement", "value", "target", "relation", "tolerance",
                                      "source", "kind", "gap", "expected", "passed", "as_expected"}
    assert data["claims"][1]["value"] == [0.5, "nan"]
    assert [c["as_expected"] for c in data["claims"]] == [True, False, True, True]
    assert data["claims"][3]["expected"] == "fail" and data["claims"][3]["gap"] == "bound missed by 3x"
    assert claims.count(data["claims"]) == {"paper_passed": 1, "paper_total": 3, "checks_passed": 1,
                                            "checks_total": 1, "gaps": 1, "unexpected": ["t2"]}
    table = reg.table()
    assert "1/3 paper claims passed, 1 declared gap; 1/1 checks passed" in table
    assert "not as declared: t2" in table and "bound missed by 3x" in table and not reg.as_declared


def test_statistical_claims_use_the_standard_error(tmp_path):
    reg = claims.Registry("p", "smoke")
    samples = np.array([0.9, 1.1, 1.0, 1.2, 0.8])  # mean 1.0, s.e. 0.0707
    c = reg.statistical("eq", "mean over seeds", samples, target=1.1, source="paper: Fig 1", kind="paper")
    assert c.passed and c.value == pytest.approx(1.0)
    assert c.stats["n"] == 5 and c.stats["se"] == pytest.approx(np.sqrt(0.025 / 5))  # s^2 = 0.1 / 4
    assert c.stats["z"] == pytest.approx((1.0 - 1.1) / c.stats["se"], abs=1e-4)
    far = reg.statistical("far", "mean over seeds", samples, target=1.3, source="paper: Fig 1", kind="paper")
    assert not far.passed and far.stats["z"] < -3  # z = -4.2
    # one-sided rules, and a summary given as mean / se / n
    assert reg.statistical("below", "mean below", mean=0.5, se=0.1, n=10, target=1.0, rule="below",
                           source="closed form: bound", kind="paper").passed          # z = -5
    assert not reg.statistical("below2", "mean below", mean=0.8, se=0.1, n=10, target=1.0, rule="below",
                               source="closed form: bound", kind="paper").passed      # z = -2
    assert reg.statistical("atmost", "mean at most", mean=1.2, se=0.1, n=10, target=1.0, rule="at_most",
                           source="closed form: bound", kind="paper").passed          # z = 2
    assert not reg.statistical("atleast", "mean at least", mean=0.6, se=0.1, n=10, target=1.0,
                               rule="at_least", source="closed form: bound", kind="paper").passed
    # the target's own Monte-Carlo error enters the z-score
    both = reg.statistical("both", "two estimates agree", mean=1.0, se=0.3, n=10, target=2.0, target_se=0.4,
                           source="independent computation: MC", kind="check")
    assert both.stats["z"] == pytest.approx(-2.0) and both.passed
    # arrays pass only if every element passes; a non-finite mean never passes
    arr = reg.statistical("arr", "per-N means", np.array([[1.0, 5.0], [1.2, 5.2], [0.8, 4.8]]),
                          target=[1.0, 1.0], source="closed form: x", kind="paper")
    assert not arr.passed and len(arr.stats["z"]) == 2
    assert not reg.statistical("nan", "nan mean", mean=float("nan"), se=0.1, n=3, target=0.0,
                               source="closed form: x", kind="check").passed
    record = json.loads(reg.save(tmp_path / "c.json").read_text())["claims"][0]
    assert {"se", "n", "z", "z_crit", "rule"} <= set(record) and record["relation"] == "z"
    assert "z = " in reg.table()


@pytest.mark.parametrize("kwargs, message", [
    (dict(samples=[1.0]), "at least 2 samples"),
    (dict(mean=1.0, se=0.1), "give samples, or mean, se and n"),
    (dict(samples=[1.0, 2.0], mean=1.0), "not both"),
    (dict(mean=1.0, se=0.0, n=5), "must be positive"),
    (dict(mean=1.0, se=0.1, n=1), "n must be an integer >= 2"),
    (dict(samples=[1.0, 2.0], rule="close"), "unknown rule"),
    (dict(samples=[1.0, 2.0], z_crit=0), "z_crit must be a positive"),
])
def test_malformed_statistical_claims_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        claims.Registry("p", "smoke").statistical("c", "s", target=1.0, source="paper: x", kind="paper", **kwargs)


def test_profiles_resolve_and_reject():
    table = {"smoke": {"n": 10, "gammas": [1.0]}, "default": {"n": 100, "gammas": [1.0, 10.0]},
             "full": {"n": 1000, "gammas": [1.0]}}
    cfg = profiles.resolve("default", table, n=None, gammas=[0.5])
    assert cfg.n == 100 and cfg.gammas == [0.5]
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        profiles.resolve("fast", table)
    with pytest.raises(ValueError, match="unknown parameter 'm'"):
        profiles.resolve("smoke", table, m=3)
    with pytest.raises(TypeError, match="parameter 'n' must be like"):
        profiles.resolve("smoke", table, n="ten")
    with pytest.raises(TypeError, match="parameter 'gammas' must be like"):
        profiles.resolve("smoke", table, gammas=["a"])


def test_profiles_resolve_from_a_namespace():
    table = {"smoke": {"n": 10}, "default": {"n": 100}, "full": {"n": 1000}}
    assert profiles.resolve_from("default", table, {"n": None, "seed": 3}).n == 100
    assert profiles.resolve_from("full", table, {"n": 7, "profile": "full"}).n == 7
    with pytest.raises(TypeError, match="parameter 'n' must be like"):
        profiles.resolve_from("smoke", table, {"n": 1.5})
    with pytest.raises(ValueError, match="unknown profile"):
        profiles.resolve_from("huge", table, {})


def test_figure_save_is_atomic_and_carries_provenance(tmp_path, monkeypatch):
    monkeypatch.delenv(figures.FORMATS_ENV, raising=False)  # the suite's notebooks write PNG only
    figures.use_style()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    figures.proxy_note(fig, "digits stand in for CIFAR-10")
    png, pdf = figures.save(fig, "fig1", tmp_path, {"paper": "tyurin2024", "git_commit": "abc123"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig1.pdf", "fig1.png"]
    assert json.loads(Image.open(png).text["Description"])["git_commit"] == "abc123"
    assert pdf.read_bytes().startswith(b"%PDF") and b"git_commit=abc123" in pdf.read_bytes()
    with pytest.raises(ValueError, match="plain file stem"):
        figures.save(fig, "../escape", tmp_path)
    monkeypatch.setenv(figures.FORMATS_ENV, "png")
    assert [p.name for p in figures.save(fig, "fig3", tmp_path)] == ["fig3.png"]
    assert not (tmp_path / "fig3.pdf").exists()
    monkeypatch.setenv(figures.FORMATS_ENV, "png,svg")
    with pytest.raises(ValueError, match="choose from png, pdf"):
        figures.save(fig, "fig4", tmp_path)
    plt.close(fig)


def test_git_commit_ignores_results_but_not_sources(tmp_path):
    """A reproduce run rewrites figures/ notebook by notebook; that must not mark later runs '+dirty'."""
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "run.json").write_text("{}")
    (tmp_path / "model.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    clean = provenance.git_commit(tmp_path)
    assert len(clean) == 40
    (tmp_path / "figures" / "run.json").write_text('{"new": 1}')
    assert provenance.git_commit(tmp_path) == clean
    (tmp_path / "model.py").write_text("x = 2\n")
    assert provenance.git_commit(tmp_path) == clean + "+dirty"


def test_session_start_sets_up_a_notebook(tmp_path):
    out, reg, prov = session.start("toy2024", "smoke", tmp_path / "new" / "dir")
    assert out.is_dir() and out == tmp_path / "new" / "dir"
    assert (reg.paper, reg.profile) == ("toy2024", "smoke")
    assert prov["paper"] == "toy2024" and prov["profile"] == "smoke" and prov["git_commit"]
    assert plt.rcParams["figure.constrained_layout.use"]


def test_publish_labels_saves_and_shows(tmp_path, monkeypatch):
    monkeypatch.delenv(figures.FORMATS_ENV, raising=False)
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(True))
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    png, pdf = figures.publish(fig, "fig2", tmp_path, {"paper": "toy2024"}, proxy="digits stand in for MNIST")
    assert shown == [True] and png.exists() and pdf.exists()
    assert any(t.get_text() == "Proxy: digits stand in for MNIST" for t in fig.texts)
    plt.close(fig)


def test_session_finish_saves_the_claims_and_shows_the_table(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj.data))
    out, reg, _ = session.start("toy2024", "smoke", tmp_path)
    reg.check("one", "arithmetic", 1 + 1, 2, "==", source="closed form: arithmetic", kind="check")
    session.finish(reg, out)
    assert json.loads((tmp_path / "claims.json").read_text())["claims"][0]["id"] == "one"
    assert "one" in shown[0]
