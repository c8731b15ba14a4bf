"""The runner: every notebook through papermill, one profile, with claims, provenance and a summary.

    paperlib reproduce [--profile smoke|default|full] [--only NAME ...] [--out DIR] [-p KEY VALUE ...]
                       [--jobs N]
    paperlib list

Each notebook runs into a hidden temporary folder inside DIR; only when it finishes is that folder
renamed to ``DIR/<notebook>/`` (executed notebook, figures, ``claims.json``, ``run.json``), so a crash
or an interrupt leaves the previous results in place. A notebook that raises is reported and kept in
``DIR/.failed/<notebook>/``; the others still run. Exit code 0 only if every notebook ran and every
claim's verdict is as declared (passed, or a declared reproduction gap that failed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from paperlib import notebooks as nbs
from paperlib import provenance
from paperlib._atomic import atomic_write_text, replace_dir
from paperlib.claims import count as count_claims
from paperlib.claims import load as load_claims
from paperlib.profiles import BUDGET_SECONDS, PROFILES, check_profile

FIGURES_DIR = provenance.REPO_ROOT / "figures"
README = provenance.REPO_ROOT / "README.md"
RESULTS_BEGIN, RESULTS_END = "<!-- results:begin -->", "<!-- results:end -->"
PAPERS_BEGIN, PAPERS_END = "<!-- papers:begin -->", "<!-- papers:end -->"


class UsageError(Exception):
    """A bad command line: reported before any notebook runs."""


@dataclass
class Result:
    name: str
    status: str  # "ok", "not as declared", "error"
    passed: int = 0  # paper claims passed
    total: int = 0  # paper claims
    wall_s: float = 0.0
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# ----------------------------------------------------------------------------- command line

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paperlib", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("reproduce", help="run notebooks and write figures, claims and provenance")
    run.add_argument("--profile", default="default", help=f"one of {', '.join(PROFILES)} (default: default)")
    run.add_argument("--only", nargs="+", metavar="NAME", help="run only these notebooks")
    run.add_argument("--out", type=Path, default=FIGURES_DIR, help="output folder (default: figures/)")
    run.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                     help="set a notebook parameter, e.g. -p seed 3 (repeatable)")
    run.add_argument("--jobs", type=int, default=1, help="notebooks run in parallel (default 1)")
    run.add_argument("--notebooks", type=Path, default=nbs.NOTEBOOKS_DIR, help=argparse.SUPPRESS)
    sub.add_parser("list", help="list the notebooks with their citation and profiles").add_argument(
        "--notebooks", type=Path, default=nbs.NOTEBOOKS_DIR, help=argparse.SUPPRESS)
    return parser


def plan(profile: str, only: list[str] | None, params: list[tuple[str, str]], jobs: int,
         notebooks_dir: Path) -> tuple[list[nbs.Notebook], dict[str, dict]]:
    """Validate the whole command line; return the notebooks to run and each one's parameters."""
    try:
        check_profile(profile)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {jobs}")
    available = nbs.discover(notebooks_dir)
    if not available:
        raise UsageError(f"no notebooks found in {notebooks_dir}")
    unknown = [n for n in (only or []) if n not in available]
    if unknown:
        raise UsageError(f"unknown notebook(s) {', '.join(unknown)}; available: {', '.join(available)}")
    selected = [available[n] for n in (only or available)]
    chosen: dict[str, dict] = {nb.name: {} for nb in selected}
    for key, text in params:
        if key in nbs.RESERVED:
            raise UsageError(f"set {key!r} with --{'profile' if key == 'profile' else 'out'}, not -p")
        having = [nb for nb in selected if key in nb.knobs]
        if not having:
            raise UsageError(f"unknown parameter {key!r}: no selected notebook has it")
        for nb in having:
            try:
                chosen[nb.name][key] = nbs.parse_value(nb.knobs[key], text)
            except ValueError as e:
                raise UsageError(f"{nb.name}: {e}") from None
    return selected, chosen


# ----------------------------------------------------------------------------- one notebook

def _papermill(nb: nbs.Notebook, executed: Path, params: dict, cwd: Path, log: Path) -> int:
    command = [sys.executable, "-m", "papermill", str(nb.path), str(executed), "-k", "python3",
               "--cwd", str(cwd), "-y", json.dumps(params)]
    interactive = sys.stderr.isatty() and not os.environ.get("CI")
    command.append("--progress-bar" if interactive else "--no-progress-bar")
    with open(log, "w") as out:
        return subprocess.run(command, stdout=out, stderr=subprocess.STDOUT if not interactive else None,
                              env={**os.environ, "PYTHONUNBUFFERED": "1",
                                   "XLA_PYTHON_CLIENT_PREALLOCATE": "false", "TQDM_DISABLE": "1"}).returncode


def _last_error(log: Path) -> str:
    lines = [l for l in log.read_text(errors="replace").splitlines() if l.strip()] if log.exists() else []
    errors = [l for l in lines if "Error" in l or "Exception" in l]
    return (errors or lines or ["no output"])[-1].strip()[:300]


def run_one(nb: nbs.Notebook, profile: str, params: dict, out_root: Path) -> Result:
    """Run one notebook into a temporary folder and, if it ran, move it to ``out_root/<name>``."""
    out_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".tmp-{nb.name}-", dir=out_root))
    log = work / "papermill.log"
    all_params = {"profile": profile, "out_dir": str(work), **params}
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    try:
        code = _papermill(nb, work / f"{nb.name}.ipynb", all_params, nb.path.parent, log)
        wall = time.perf_counter() - t0
        claims_file = work / "claims.json"
        if code != 0 or not claims_file.exists():
            why = _last_error(log) if code != 0 else "the notebook wrote no claims.json"
            failed = out_root / ".failed" / nb.name
            shutil.rmtree(failed, ignore_errors=True)
            failed.parent.mkdir(parents=True, exist_ok=True)
            os.replace(work, failed)
            return Result(nb.name, "error", wall_s=wall, message=f"{why} (see {failed})")
        claims = load_claims(claims_file)["claims"]
        n = count_claims(claims)
        log.unlink()
        _write_run_json(work / "run.json", nb, profile, all_params, started, wall)
        replace_dir(work, out_root / nb.name)
        status = "ok" if claims and not n["unexpected"] else "not as declared"
        message = ("the notebook recorded no claims" if not claims else
                   f"not as declared: {', '.join(n['unexpected'])}" if n["unexpected"] else "")
        return Result(nb.name, status, n["paper_passed"], n["paper_total"], wall, message)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _write_run_json(path: Path, nb: nbs.Notebook, profile: str, params: dict,
                    started: datetime, wall: float) -> None:
    budget = BUDGET_SECONDS[profile]
    record = {
        "notebook": nb.name,
        "title": nb.title,
        "citation": nb.citation,
        "arxiv": nb.arxiv,
        "paper_items": list(nb.items),
        "profile": profile,
        "parameters": {k: v for k, v in params.items() if k != "out_dir"},
        "git_commit": provenance.git_commit(),
        "started_utc": started.isoformat(timespec="seconds"),
        "wall_time_s": round(wall, 2),
        "budget_s": budget,
        "within_budget": wall <= budget,
        "packages": provenance.package_versions(),
        "device": provenance.device_info(),
        "command": " ".join(["paperlib", *sys.argv[1:]]) if sys.argv else "",
    }
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")


# ----------------------------------------------------------------------------- summary

def summary_rows(out_root: Path) -> list[dict]:
    """One row per finished notebook folder in ``out_root``, read back from its own files."""
    rows = []
    for run_json in sorted(out_root.glob("*/run.json")):
        folder = run_json.parent
        run = json.loads(run_json.read_text())
        claims = load_claims(folder / "claims.json")["claims"]
        rows.append({
            "name": folder.name, "title": run.get("title", folder.name),
            "claims": claims, **count_claims(claims), "items": run.get("paper_items", []),
            "profile": run["profile"], "device": run["device"]["device"],
            "wall": run["wall_time_s"], "budget": run["budget_s"],
            "figures": sorted(p.name for p in folder.glob("*.png")),
        })
    return rows


def _item_counts(items: list[dict]) -> str:
    counts = {s: sum(i["status"] == s for i in items) for s in nbs.ITEM_STATUSES}
    return ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none declared"


def _claims_cell(r: dict) -> str:
    text = f"{r['paper_passed']}/{r['paper_total']}"
    if r["unexpected"]:
        text += f" (**not as declared: {', '.join(r['unexpected'])}**)"
    return text


def results_table(rows: list[dict], link_prefix: str) -> str:
    lines = ["| paper | paper claims passed | declared gaps | checks passed | paper items | profile "
             "| device | wall time | figures |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        over = "" if r["wall"] <= r["budget"] else f" (over the {r['budget']} s budget)"
        figs = ", ".join(f"[{Path(f).stem}]({link_prefix}{r['name']}/{f})" for f in r["figures"])
        lines.append(f"| [{r['title']}]({link_prefix}{r['name']}/) | {_claims_cell(r)} | {r['gaps']} | "
                     f"{r['checks_passed']}/{r['checks_total']} | {_item_counts(r['items'])} | "
                     f"{r['profile']} | {r['device']} | {r['wall']:.0f} s{over} | {figs} |")
    return "\n".join(lines)


def papers_table(rows: list[dict], link_prefix: str) -> str:
    """The README's "Papers" table: per notebook, item statuses and each declared gap with its reason."""
    lines = ["| notebook | paper items | paper claims passed | checks | declared gaps |", "|---|---|---|---|---|"]
    for r in rows:
        gaps = "; ".join(f"`{c['id']}`: {c['gap']}" for c in r["claims"] if c.get("expected") == "fail")
        lines.append(f"| [{r['name']}]({link_prefix}{r['name']}/) | {_item_counts(r['items'])} | "
                     f"{_claims_cell(r)} | {r['checks_passed']}/{r['checks_total']} | {gaps or 'none'} |")
    return "\n".join(lines)


def items_section(r: dict) -> str:
    """One notebook's paper-item table, for figures/README.md."""
    lines = [f"### {r['title']}\n", f"{_claims_cell(r)} paper claims passed, {r['gaps']} declared gaps, "
             f"{r['checks_passed']}/{r['checks_total']} checks ({r['profile']} profile).\n"]
    if not r["items"]:
        return "\n".join(lines + ["No paper-item table declared.\n"])
    verdicts = {c["id"]: c for c in r["claims"]}
    lines += ["| item | status | claims | figures | note |", "|---|---|---|---|---|"]
    for item in r["items"]:
        cs = ", ".join(f"{cid} ({_word(verdicts.get(cid))})" for cid in item["claims"])
        figs = ", ".join(f"[{f}]({r['name']}/{f}.png)" for f in item["figures"])
        lines.append(f"| {item['title']} | {item['status']} | {cs or '-'} | {figs or '-'} | {item['note']} |")
    return "\n".join(lines) + "\n"


def _word(c: dict | None) -> str:
    if c is None:
        return "not recorded"
    if c.get("expected") == "fail":
        return "gap" if not c["passed"] else "gap now passes"
    return "pass" if c["passed"] else "FAIL"


def _replace_between(text: str, begin: str, end: str, body: str) -> str:
    if begin not in text or end not in text:
        return text
    head, rest = text.split(begin, 1)
    return f"{head}{begin}\n{body}\n{end}{rest.split(end, 1)[1]}"


def write_summaries(out_root: Path) -> None:
    """``out_root/README.md`` from every result folder; the top README's tables too for figures/."""
    rows = summary_rows(out_root)
    atomic_write_text(out_root / "README.md",
                      "# Reproduced figures and claims\n\nWritten by `paperlib reproduce`; one row per "
                      "notebook, read from its `claims.json` and `run.json`. Paper claims reproduce an "
                      "item of the paper; checks guard our own machinery; a declared gap is a paper claim "
                      "our reproduction does not meet, computed every run.\n\n"
                      + results_table(rows, "") + "\n\n## Paper items\n\n"
                      + "\n".join(items_section(r) for r in rows))
    if out_root.resolve() == FIGURES_DIR.resolve() and README.exists():
        text = _replace_between(README.read_text(), RESULTS_BEGIN, RESULTS_END,
                                results_table(rows, "figures/"))
        text = _replace_between(text, PAPERS_BEGIN, PAPERS_END, papers_table(rows, "figures/"))
        atomic_write_text(README, text)


def _print_table(results: list[Result], profile: str) -> None:
    print(f"\nSummary ({profile} profile)")
    print(f"{'notebook':40s} {'paper':>8s} {'wall':>8s}  status")
    for r in results:
        over = " (over budget)" if r.wall_s > BUDGET_SECONDS[profile] else ""
        print(f"{r.name:40s} {r.passed:>3d}/{r.total:<4d} {r.wall_s:>7.1f}s  {r.status}{over}"
              + (f": {r.message}" if r.message else ""))


# ----------------------------------------------------------------------------- entry points

def reproduce(profile: str = "default", only: list[str] | None = None, out: Path = FIGURES_DIR,
              params: list[tuple[str, str]] = (), jobs: int = 1,
              notebooks_dir: Path = nbs.NOTEBOOKS_DIR) -> list[Result]:
    """Run the selected notebooks; validation errors raise :class:`UsageError` before any run."""
    selected, chosen = plan(profile, only, list(params), jobs, notebooks_dir)
    out = Path(out)
    for stale in out.glob(".tmp-*"):  # left by a run that was killed outright
        shutil.rmtree(stale, ignore_errors=True)

    def run(nb: nbs.Notebook) -> Result:
        print(f"[start] {nb.name} ({profile})", flush=True)
        result = run_one(nb, profile, chosen[nb.name], out)
        print(f"[{result.status}] {nb.name}: {result.passed}/{result.total} paper claims, "
              f"{result.wall_s:.1f} s" + (f" - {result.message}" if result.message else ""), flush=True)
        return result

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(run, selected))
    write_summaries(out)
    _print_table(results, profile)
    return results


def _list(notebooks_dir: Path) -> None:
    for nb in nbs.discover(notebooks_dir).values():
        print(f"{nb.name}\n  {nb.citation or nb.title}\n  arXiv {nb.arxiv or '-'}; profiles: "
              f"{', '.join(nb.profiles) or ', '.join(PROFILES)}\n  parameters: "
              + ", ".join(f"{k}={v.default!r}" for k, v in nb.knobs.items()))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            _list(args.notebooks)
            return 0
        results = reproduce(args.profile, args.only, args.out, args.param, args.jobs, args.notebooks)
    except UsageError as e:
        print(f"paperlib: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\npaperlib: interrupted; earlier results were left as they were", file=sys.stderr)
        return 130
    return 0 if results and all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
