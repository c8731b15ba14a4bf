"""The runner: every notebook through papermill, one profile, with claims, provenance and a summary.

    paperlib reproduce [--profile smoke|default|full] [--only NAME ...] [--out DIR] [-p KEY VALUE ...]
                       [--jobs N]
    paperlib list [NAME ...]
    paperlib new NAME --title T --citation C --arxiv ID

Notebooks run side by side, one per CPU (at most 4), longest first; ``full`` runs one at a time.

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
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from paperlib import notebooks as nbs
from paperlib import provenance
from paperlib._atomic import atomic_write_text, make_temp_dir, replace_dir
from paperlib._runguard import Busy, Children, Interrupted, OutputLock, signals_raise
from paperlib.claims import count as count_claims
from paperlib.claims import load as load_claims
from paperlib.profiles import BUDGET_SECONDS, PROFILES, check_profile

FIGURES_DIR = provenance.REPO_ROOT / "figures"
README = provenance.REPO_ROOT / "README.md"
RESULTS_BEGIN, RESULTS_END = "<!-- results:begin -->", "<!-- results:end -->"
PAPERS_BEGIN, PAPERS_END = "<!-- papers:begin -->", "<!-- papers:end -->"
SCALE_BEGIN, SCALE_END = "<!-- scale:begin -->", "<!-- scale:end -->"


class UsageError(Exception):
    """A bad command line: reported before any notebook runs."""


class RunStopped(Exception):
    """A signal stopped the run; ``finished`` notebooks had been written before it came."""

    def __init__(self, signum: int, finished: list[str]):
        super().__init__(signal.Signals(signum).name)
        self.signum, self.finished = signum, finished


@dataclass
class Result:
    """The outcome of one notebook's run, as the runner reports it."""

    name: str
    status: str  # "ok", "not as declared", "error", "interrupted"
    passed: int = 0  # paper claims passed
    total: int = 0  # paper claims
    wall_s: float = 0.0
    message: str = ""

    @property
    def ok(self) -> bool:
        """The notebook ran and every verdict was as declared."""
        return self.status == "ok"


# ----------------------------------------------------------------------------- command line

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paperlib", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("reproduce", help="run notebooks and write figures, claims and provenance")
    run.add_argument("--profile", default="default", help=f"one of {', '.join(PROFILES)} (default: default)")
    run.add_argument("--only", nargs="+", metavar="NAME", help="run only these notebooks")
    run.add_argument("--out", type=Path, default=None,
                     help="output folder (default: figures/ for the default profile, figures/full/ for full; "
                          "required for smoke and for runs with -p)")
    run.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                     help="set a notebook parameter, e.g. -p seed 3 (repeatable)")
    run.add_argument("--jobs", type=int, default=None,
                     help="notebooks run side by side (default: one per CPU, at most 4, for smoke and "
                          "default; 1 for full, whose notebooks each fill the GPU)")
    run.add_argument("--notebooks", type=Path, default=nbs.NOTEBOOKS_DIR, help=argparse.SUPPRESS)
    listing = sub.add_parser("list", help="the notebooks with their citation and profiles; with NAME, every "
                                          "knob's type, range, meaning and value per profile")
    listing.add_argument("names", nargs="*", metavar="NAME")
    listing.add_argument("--notebooks", type=Path, default=nbs.NOTEBOOKS_DIR, help=argparse.SUPPRESS)
    new = sub.add_parser("new", help="start a paper: template notebook, protocol module and test "
                                     "(see CONTRIBUTING.md)")
    new.add_argument("name", metavar="NAME", help="notebook name, e.g. smith2025_short_topic")
    new.add_argument("--title", required=True, help='short title, e.g. "Smith et al. 2025: ..."')
    new.add_argument("--citation", required=True, help="full citation")
    new.add_argument("--arxiv", required=True, help="arXiv id, e.g. 2501.00001")
    new.add_argument("--root", type=Path, default=provenance.REPO_ROOT, help=argparse.SUPPRESS)
    return parser


def canonical_out(profile: str) -> Path | None:
    """Where a run with no ``--out`` and no ``-p`` goes: the committed results of its profile."""
    return {"default": FIGURES_DIR, "full": FIGURES_DIR / "full"}.get(profile)


def check_out(out: Path | None, profile: str, params: list, notebooks_dir: Path) -> Path:
    """The output folder, checked before anything runs: ``figures/`` (and ``figures/full/``) hold
    canonical runs only, so a smoke run or a run with ``-p`` needs an ``--out`` of its own."""
    canonical = canonical_out(profile)
    if out is None:
        if canonical is None or params:
            why = "-p overrides" if params else f"the {profile} profile"
            raise UsageError(f"a run with {why} needs --out DIR: figures/ holds canonical runs only")
        return canonical
    out = Path(out).resolve()
    committed = {FIGURES_DIR.resolve(), (FIGURES_DIR / "full").resolve()}
    if out in committed and (params or canonical is None or out != canonical.resolve()):
        raise UsageError(f"--out {out} holds canonical results; write a {profile} run"
                         f"{' with -p' if params else ''} elsewhere")
    if out == Path(notebooks_dir).resolve() or Path(notebooks_dir).resolve() in out.parents:
        raise UsageError(f"--out {out} is inside the notebooks folder; choose a folder outside it")
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir():
        raise UsageError(f"--out {out}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: {existing} is not writable")
    return out


def plan(profile: str, only: list[str] | None, params: list[tuple[str, str]], jobs: int,
         notebooks_dir: Path, out: Path | None = None) -> tuple[list[nbs.Notebook], dict[str, dict], Path]:
    """Validate the whole command line; return the notebooks to run, each one's parameters, and the
    output folder."""
    try:
        check_profile(profile)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {jobs}")
    only = list(dict.fromkeys(only)) if only else None  # --only A A runs A once
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
    return selected, chosen, check_out(out, profile, params, notebooks_dir)


# ----------------------------------------------------------------------------- one notebook

def _interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


def _papermill(nb: nbs.Notebook, executed: Path, params: dict, cwd: Path, log: Path,
               children: Children) -> int:
    """Run papermill as a child that dies with the runner; its whole output goes to ``log`` (and, on a
    terminal, to the terminal too, with papermill's cell progress bar)."""
    interactive = _interactive()
    command = [sys.executable, "-m", "papermill", str(nb.path), str(executed), "-k", "python3",
               "--cwd", str(cwd), "-y", json.dumps(params),
               "--progress-bar" if interactive else "--no-progress-bar"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    if not interactive:
        env["TQDM_DISABLE"] = "1"
    proc = children.start(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        with open(log, "wb") as out:
            for chunk in iter(lambda: proc.stdout.read1(4096), b""):
                out.write(chunk)
                if interactive:
                    sys.stderr.buffer.write(chunk)
                    sys.stderr.flush()
        return proc.wait()
    finally:
        proc.stdout.close()
        children.done(proc)


def _last_error(log: Path) -> str:
    lines = [l for l in log.read_text(errors="replace").splitlines() if l.strip()] if log.exists() else []
    errors = [l for l in lines if "Error" in l or "Exception" in l]
    return (errors or lines or ["no output"])[-1].strip()[:300]


def _non_finite(claims: list[dict]) -> list[str]:
    """Ids of claims whose value or target holds NaN or infinity (stored as strings in claims.json)."""
    def bad(x):
        if isinstance(x, list):
            return any(bad(v) for v in x)
        return isinstance(x, str) and x.lower().lstrip("+-") in ("nan", "inf", "infinity")
    return [c["id"] for c in claims if bad(c.get("value")) or bad(c.get("target"))]


def _keep_failed(work: Path, out_root: Path, name: str) -> Path:
    failed = out_root / ".failed" / name
    shutil.rmtree(failed, ignore_errors=True)
    failed.parent.mkdir(parents=True, exist_ok=True)
    os.replace(work, failed)
    return failed


def default_jobs(profile: str) -> int:
    """Notebooks run side by side when --jobs is not given: one per CPU (at most 4), but one at a time
    for ``full``, where each notebook is meant to have the GPU to itself."""
    return 1 if profile == "full" else max(1, min(4, os.cpu_count() or 1))


def run_one(nb: nbs.Notebook, profile: str, params: dict, out_root: Path,
            children: Children | None = None, jobs: int = 1) -> Result:
    """Run one notebook into a temporary folder and, if it ran and its claims are finite, move it to
    ``out_root/<name>``. A notebook that raised, wrote no claims or recorded non-finite claims goes to
    ``out_root/.failed/<name>`` instead and the earlier result stays; a stopped run keeps nothing."""
    children = children or Children()
    out_root.mkdir(parents=True, exist_ok=True)
    work = make_temp_dir(out_root, f".tmp-{nb.name}-")
    log = work / "papermill.log"
    all_params = {"profile": profile, "out_dir": str(work), **params}
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    try:
        code = _papermill(nb, work / f"{nb.name}.ipynb", all_params, nb.path.parent, log, children)
        wall = time.perf_counter() - t0
        if children.stopping.is_set():
            return Result(nb.name, "interrupted", wall_s=wall, message="stopped by a signal; nothing written")
        claims_file = work / "claims.json"
        claims = load_claims(claims_file)["claims"] if code == 0 and claims_file.exists() else None
        bad = _non_finite(claims) if claims else []
        if code != 0 or claims is None or bad:
            why = (_last_error(log) if code != 0 else "the notebook wrote no claims.json" if claims is None
                   else f"non-finite claim values: {', '.join(bad)}")
            failed = _keep_failed(work, out_root, nb.name)
            return Result(nb.name, "error", wall_s=wall, message=f"{why} (see {failed})")
        n = count_claims(claims)
        log.unlink()
        _write_run_json(work / "run.json", nb, profile, all_params, started, wall, jobs)
        if children.stopping.is_set():
            return Result(nb.name, "interrupted", wall_s=wall, message="stopped by a signal; nothing written")
        replace_dir(work, out_root / nb.name)
        shutil.rmtree(out_root / ".failed" / nb.name, ignore_errors=True)
        status = "ok" if claims and not n["unexpected"] else "not as declared"
        message = ("the notebook recorded no claims" if not claims else
                   f"not as declared: {', '.join(n['unexpected'])}" if n["unexpected"] else "")
        return Result(nb.name, status, n["paper_passed"], n["paper_total"], wall, message)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _write_run_json(path: Path, nb: nbs.Notebook, profile: str, params: dict,
                    started: datetime, wall: float, jobs: int) -> None:
    budget = BUDGET_SECONDS[profile]
    record = {
        "notebook": nb.name,
        "title": nb.title,
        "citation": nb.citation,
        "arxiv": nb.arxiv,
        "paper_items": list(nb.items),
        "scale": {"rows": nbs.scale_table(nb), "note": nb.scale["note"]} if nb.scale else None,
        "profile": profile,
        "parameters": {k: v for k, v in params.items() if k != "out_dir"},
        "git_commit": provenance.git_commit(),
        "started_utc": started.isoformat(timespec="seconds"),
        "wall_time_s": round(wall, 2),
        "budget_s": budget,
        "within_budget": wall <= budget,
        "parallel_jobs": jobs,  # notebooks that ran side by side, sharing the CPUs, in this run
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
            "scale": run.get("scale"),
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
    """The README's "Results" table: per notebook, claim counts, profile, device, wall time, figures."""
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


def scale_section(r: dict) -> str:
    """One notebook's "paper / full / default / smoke" table, from its run.json."""
    if not r.get("scale"):
        return f"**{r['title']}**: no scale declared.\n"
    lines = [f"**{r['title']}**\n", "| quantity | paper | full | default | smoke |", "|---|---|---|---|---|"]
    lines += [f"| {x['quantity']} | {x['paper']} | {x['full']} | {x['default']} | {x['smoke']} |"
              for x in r["scale"]["rows"]]
    return "\n".join(lines) + f"\n\n{r['scale']['note']}\n"


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


def _failed_note(out_root: Path) -> str:
    failed = sorted(p.name for p in (out_root / ".failed").glob("*") if p.is_dir())
    if not failed:
        return ""
    return ("\n\n**Failed at their last run** (earlier results, if any, are the ones above): "
            + ", ".join(f"`{n}` (see `.failed/{n}/`)" for n in failed))


def write_summaries(out_root: Path) -> None:
    """``out_root/README.md`` from every result folder; the top README's tables too for figures/."""
    rows = summary_rows(out_root)
    atomic_write_text(out_root / "README.md",
                      "# Reproduced figures and claims\n\nWritten by `paperlib reproduce`; one row per "
                      "notebook, read from its `claims.json` and `run.json`. Paper claims reproduce an "
                      "item of the paper; checks guard our own machinery; a declared gap is a paper claim "
                      "our reproduction does not meet, computed every run.\n\n"
                      + results_table(rows, "") + _failed_note(out_root) + "\n\n## Paper items\n\n"
                      + "\n".join(items_section(r) for r in rows)
                      + "\n## Scale: the paper's and each profile's\n\n" + "\n".join(scale_section(r) for r in rows))
    if out_root.resolve() == FIGURES_DIR.resolve() and README.exists():
        text = _replace_between(README.read_text(), RESULTS_BEGIN, RESULTS_END,
                                results_table(rows, "figures/"))
        text = _replace_between(text, PAPERS_BEGIN, PAPERS_END, papers_table(rows, "figures/"))
        text = _replace_between(text, SCALE_BEGIN, SCALE_END, "\n".join(scale_section(r) for r in rows))
        atomic_write_text(README, text)


def _print_table(results: list[Result], profile: str) -> None:
    print(f"\nSummary ({profile} profile)")
    print(f"{'notebook':40s} {'paper':>8s} {'wall':>8s}  status")
    for r in results:
        over = " (over budget)" if r.wall_s > BUDGET_SECONDS[profile] else ""
        print(f"{r.name:40s} {r.passed:>3d}/{r.total:<4d} {r.wall_s:>7.1f}s  {r.status}{over}"
              + (f": {r.message}" if r.message else ""))


# ----------------------------------------------------------------------------- entry points

def _last_wall_s(out: Path, name: str, profile: str) -> float:
    """Wall time of the last run of ``name`` at ``profile`` in ``out``; 0 if there is none."""
    try:
        run = json.loads((out / name / "run.json").read_text())
    except (OSError, ValueError):
        return 0.0
    return float(run.get("wall_time_s", 0.0)) if run.get("profile") == profile else 0.0


def _last_wall(out: Path, name: str, profile: str) -> str:
    wall = _last_wall_s(out, name, profile)
    return f", last run {wall:.0f} s" if wall else ""


def reproduce(profile: str = "default", only: list[str] | None = None, out: Path | None = None,
              params: list[tuple[str, str]] = (), jobs: int | None = 1,
              notebooks_dir: Path = nbs.NOTEBOOKS_DIR) -> list[Result]:
    """Run the selected notebooks. A bad command line raises :class:`UsageError` and another run on the
    same folder :class:`~paperlib._runguard.Busy`, both before any run; SIGINT, SIGTERM or SIGHUP end
    every child (papermill and its kernel), keep no partial result and raise :class:`RunStopped`."""
    jobs = default_jobs(profile) if jobs is None else jobs
    selected, chosen, out = plan(profile, only, list(params), jobs, notebooks_dir, out)
    jobs = min(jobs, len(selected))
    with OutputLock(out):
        for stale in out.glob(".tmp-*"):  # left by a run that was killed outright; none is live (lock)
            shutil.rmtree(stale, ignore_errors=True)
        children = Children()
        finished: list[str] = []

        def run(nb: nbs.Notebook) -> Result:
            print(f"[start] {nb.name} ({profile}{_last_wall(out, nb.name, profile)})", flush=True)
            try:
                result = run_one(nb, profile, chosen[nb.name], out, children, jobs)
            except Interrupted:
                result = Result(nb.name, "interrupted", message="stopped by a signal; nothing written")
            except Exception as e:  # one notebook's trouble never stops the others
                result = Result(nb.name, "error", message=f"{type(e).__name__}: {e}")
            if result.status in ("ok", "not as declared"):
                finished.append(nb.name)
            print(f"[{result.status}] {nb.name}: {result.passed}/{result.total} paper claims, "
                  f"{result.wall_s:.1f} s" + (f" - {result.message}" if result.message else ""), flush=True)
            return result

        pool = ThreadPoolExecutor(max_workers=jobs)
        try:
            with signals_raise():
                # longest first (by the last run's wall time) so parallel jobs end together
                order = sorted(selected, key=lambda nb: -_last_wall_s(out, nb.name, profile))
                futures = {nb.name: pool.submit(run, nb) for nb in order}
                results = [futures[nb.name].result() for nb in selected]
        except (KeyboardInterrupt, Interrupted) as e:
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(s, signal.SIG_IGN)  # the cleanup below is not to be interrupted
            children.stop_all()
            pool.shutdown(wait=True, cancel_futures=True)
            if finished:
                write_summaries(out)
            raise RunStopped(getattr(e, "signum", signal.SIGINT), list(finished)) from None
        pool.shutdown()
        write_summaries(out)
    _print_table(results, profile)
    return results


def _list(notebooks_dir: Path, names: list[str] | None = None) -> None:
    """Each notebook's citation and profiles; with names, also every knob's type, range, meaning and its
    value in each profile."""
    available = nbs.discover(notebooks_dir)
    unknown = [n for n in names or [] if n not in available]
    if unknown:
        raise UsageError(f"unknown notebook(s) {', '.join(unknown)}; available: {', '.join(available)}")
    for nb in (available[n] for n in names or available):
        print(f"{nb.name}\n  {nb.citation or nb.title}\n  arXiv {nb.arxiv or '-'}; profiles: "
              f"{', '.join(nb.profiles) or ', '.join(PROFILES)}")
        if not names:
            print("  parameters: " + ", ".join(f"{k}={v.default!r}" for k, v in nb.knobs.items()))
            continue
        table = nbs.profile_values(nb.path)
        for knob in nb.knobs.values():
            per_profile = "; ".join(f"{p}={table[p][knob.name]!r}" for p in PROFILES
                                    if knob.name in table.get(p, {}))
            print(f"  {knob.name}: {knob.spec} (default {knob.default!r})"
                  + (f" - {knob.help}" if knob.help else "") + (f"\n      {per_profile}" if per_profile else ""))


def main(argv: list[str] | None = None) -> int:
    """The ``paperlib`` command line (reproduce, list, new); returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            _list(args.notebooks, args.names)
            return 0
        if args.command == "new":
            from paperlib import scaffold  # nbformat's import is slow; only this command needs it

            try:
                written = scaffold.create(args.name, args.title, args.citation, args.arxiv, args.root)
            except (ValueError, FileExistsError) as e:
                raise UsageError(str(e)) from None
            print("\n".join(f"wrote {path}" for path in written))
            return 0
        results = reproduce(args.profile, args.only, args.out, args.param, args.jobs, args.notebooks)
    except (UsageError, Busy) as e:
        print(f"paperlib: error: {e}", file=sys.stderr)
        return 2
    except RunStopped as e:
        done = (f"{len(e.finished)} notebook(s) had finished and were written ({', '.join(e.finished)}); "
                if e.finished else "no notebook had finished; ")
        print(f"\npaperlib: stopped by {e}: {done}the running ones were stopped with their kernels and "
              "their earlier results left in place", file=sys.stderr)
        return 128 + e.signum
    return 0 if results and all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
