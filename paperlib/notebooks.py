"""The notebooks of the repository: discovery, their metadata and their parameters cell.

Each notebook carries ``metadata.paperlib = {"title", "citation", "arxiv", "profiles", "items"}`` and one
code cell tagged ``parameters`` whose top-level assignments are its knobs. ``items`` is the paper-item
table: one entry per theorem, proposition, figure and table of the paper (as its brief names them)::

    {"id": "thm3.1", "title": "Theorem 3.1: ...", "status": "reproduced",   # see ITEM_STATUSES
     "claims": ["thm3.1.bound"], "figures": ["fig2_bound"], "note": "scale, proxy or reason"}

The knobs, e.g.::

    profile = "default"          # smoke | default | full
    out_dir = "output"           # where figures and claims.json go
    seed: int = 0
    num_steps: int | None = None # None: the profile's value

A knob's type is its annotation when it has one, else the type of its default (a ``None`` default
without an annotation accepts any value). :func:`parse_value` turns a command-line string into a value
of that type or raises a clear error.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

from paperlib.provenance import REPO_ROOT

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
RESERVED = ("profile", "out_dir")  # set by the runner's --profile and --out, not by -p

ITEM_STATUSES = ("reproduced", "partial", "not reproduced", "out of scope")
ITEM_KEYS = ("id", "title", "status", "claims", "figures", "note")

_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "tuple": tuple,
          "dict": dict}


@dataclass(frozen=True)
class Knob:
    name: str
    default: object
    types: tuple[type, ...] | None  # None: anything goes
    help: str

    def accepts(self, value: object) -> bool:
        if self.types is None:
            return True
        if value is None:
            return type(None) in self.types
        if isinstance(value, bool):
            return bool in self.types
        if isinstance(value, int) and float in self.types:
            return True
        return isinstance(value, self.types)


@dataclass(frozen=True)
class Notebook:
    name: str
    path: Path
    title: str
    citation: str
    arxiv: str
    profiles: tuple[str, ...]
    knobs: dict[str, Knob]
    items: tuple[dict, ...] = ()


def _annotation_types(node: ast.expr | None, default: object) -> tuple[type, ...] | None:
    if node is None:
        return None if default is None else (type(default),)
    text = ast.unparse(node)
    if text.startswith("Optional[") and text.endswith("]"):
        text = text[len("Optional["):-1] + " | None"
    names = [n.strip() for n in re.sub(r"\[.*\]", "", text).split("|")]  # list[float] -> list
    if any(n not in _TYPES and n != "None" for n in names):
        return None
    return tuple(type(None) if n == "None" else _TYPES[n] for n in names)


def parse_parameters(source: str) -> dict[str, Knob]:
    """The knobs of a parameters cell: name, default, accepted types and trailing comment."""
    lines = source.splitlines()
    knobs = {}
    for stmt in ast.parse(source).body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, annotation = stmt.targets[0], None
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            target, annotation = stmt.target, stmt.annotation
        else:
            continue
        if not isinstance(target, ast.Name):
            continue
        default = ast.literal_eval(stmt.value)
        line = lines[stmt.lineno - 1]
        help_text = line.split("#", 1)[1].strip() if "#" in line else ""
        knobs[target.id] = Knob(target.id, default, _annotation_types(annotation, default), help_text)
    return knobs


def check_items(items: object, where: str = "") -> tuple[dict, ...]:
    """Validate a paper-item table (see the module docstring); return it as a tuple."""
    if not isinstance(items, list):
        raise ValueError(f"{where}: metadata.paperlib.items must be a list")
    seen = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != set(ITEM_KEYS):
            raise ValueError(f"{where}: paper item {i} must have exactly the keys {ITEM_KEYS}")
        if item["status"] not in ITEM_STATUSES:
            raise ValueError(f"{where}: paper item {item['id']!r} has status {item['status']!r}; "
                             f"use one of {ITEM_STATUSES}")
        if item["id"] in seen:
            raise ValueError(f"{where}: paper item {item['id']!r} listed twice")
        if not (isinstance(item["claims"], list) and isinstance(item["figures"], list)):
            raise ValueError(f"{where}: paper item {item['id']!r}: claims and figures must be lists")
        if item["status"] in ("reproduced", "partial") and not (item["claims"] or item["figures"]):
            raise ValueError(f"{where}: paper item {item['id']!r} is {item['status']} but names no "
                             "claim or figure behind it")
        seen.add(item["id"])
    return tuple(items)


def load(path: Path) -> Notebook:
    nb = json.loads(Path(path).read_text())
    meta = nb.get("metadata", {}).get("paperlib", {})
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{path}: needs exactly one cell tagged 'parameters', found {len(cells)}")
    source = "".join(cells[0]["source"]) if isinstance(cells[0]["source"], list) else cells[0]["source"]
    knobs = parse_parameters(source)
    missing = [k for k in RESERVED if k not in knobs]
    if missing:
        raise ValueError(f"{path}: the parameters cell must define {missing}")
    return Notebook(name=Path(path).stem, path=Path(path), title=meta.get("title", Path(path).stem),
                    citation=meta.get("citation", ""), arxiv=meta.get("arxiv", ""),
                    profiles=tuple(meta.get("profiles", ())), knobs=knobs,
                    items=check_items(meta.get("items", []), str(path)))


def discover(directory: Path = NOTEBOOKS_DIR) -> dict[str, Notebook]:
    """Every ``*.ipynb`` in ``directory`` (checkpoints excluded), by name."""
    return {p.stem: load(p) for p in sorted(Path(directory).glob("*.ipynb"))}


def parse_value(knob: Knob, text: str) -> object:
    """A command-line string as a value of the knob's type; a clear ValueError otherwise."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text  # a bare word is a string
    if not knob.accepts(value):
        expected = " or ".join(t.__name__ for t in knob.types)
        raise ValueError(f"parameter {knob.name!r} expects {expected} (default {knob.default!r}), "
                         f"got {text!r}")
    return value
