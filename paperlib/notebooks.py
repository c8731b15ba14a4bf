"""The notebooks of the repository: discovery, their metadata and their parameters cell.

Each notebook carries ``metadata.paperlib = {"title", "citation", "arxiv", "profiles", "items", "scale"}`` and one
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
without an annotation accepts any value); ``list[float]`` also fixes the element type, and a list knob
is never empty. The trailing comment is the knob's meaning, optionally opened by its range or its
choices, which apply to the value or to every element of a list::

    mc_width: int | None = None  # [1, inf) hidden width of the Monte-Carlo networks
    lrs: list[float] | None = None  # (0, inf) learning rates
    net_dtype: str | None = None  # {float32, float64} dtype of the network sweeps

``scale`` says what each profile runs next to what the paper ran: ``{"rows": [...], "note": "..."}`` with
one row per size that matters; a row names either the knob whose profile values it shows or the values
themselves (one text for every profile, or one per profile), so no setting is written twice::

    {"quantity": "hidden widths", "paper": "64 ... 8192", "knob": "widths"}
    {"quantity": "data", "paper": "MNIST (60,000)", "profiles": "sklearn digits 8x8 (1,797), proxy"}

and ``note`` says plainly where ``full`` stays below the paper's scale, and why.

:func:`parse_value` turns a command-line string into a value the knob accepts or raises one clear line
naming the knob, before any kernel starts. :func:`profile_values` reads a notebook's ``PROFILES`` table
(``{profile: dict(knob=value, ...)}``) so that ``paperlib list`` can show every knob's value per profile.
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
SCALE_PROFILES = ("full", "default", "smoke")

_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "tuple": tuple,
          "dict": dict}


def _is_a(value: object, types: tuple[type, ...]) -> bool:
    if value is None:
        return type(None) in types
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, int) and float in types:
        return True
    return isinstance(value, types)


@dataclass(frozen=True)
class Knob:
    """One setting of a parameters cell, as :func:`parse_parameters` reads it."""

    name: str
    default: object
    types: tuple[type, ...] | None  # None: anything goes
    help: str
    element: type | None = None  # the element type of a list knob, when annotated (list[float])
    bounds: tuple[float, float, str] | None = None  # low, high and the brackets, e.g. (1, inf, "[)")
    choices: tuple | None = None

    def accepts(self, value: object) -> bool:
        """Whether ``value`` has one of the knob's declared types (ranges are :meth:`problem`'s)."""
        return self.types is None or _is_a(value, self.types)

    @property
    def spec(self) -> str:
        """The type and range as the parameters cell declares them, e.g. ``int | None, [1, inf)``."""
        types = "any" if self.types is None else " | ".join(
            ("None" if t is type(None) else f"list[{self.element.__name__}]" if t is list and self.element
             else t.__name__) for t in self.types)
        if self.bounds:
            low, high, br = self.bounds
            types += f", {br[0]}{low:g}, {high:g}{br[1]}"
        if self.choices:
            types += ", {" + ", ".join(map(str, self.choices)) + "}"
        return types

    def problem(self, value: object) -> str | None:
        """Why ``value`` is not acceptable for this knob, or None."""
        if not self.accepts(value):
            return f"expects {self.spec} (default {self.default!r}), got {value!r}"
        if value is None:
            return None
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        if isinstance(value, (list, tuple)):
            if not items:
                return "must not be empty"
            if self.element and not all(_is_a(v, (self.element,)) for v in items):
                return f"expects a list of {self.element.__name__}, got {value!r}"
        if self.choices and any(v not in self.choices for v in items):
            return f"must be one of {{{', '.join(map(str, self.choices))}}}, got {value!r}"
        if self.bounds:
            low, high, br = self.bounds
            numeric = [v for v in items if isinstance(v, (int, float)) and not isinstance(v, bool)]
            inside = all((v >= low if br[0] == "[" else v > low) and (v <= high if br[1] == "]" else v < high)
                         for v in numeric)
            if len(numeric) != len(items) or not inside:
                return f"must be in {br[0]}{low:g}, {high:g}{br[1]}, got {value!r}"
        return None


@dataclass(frozen=True)
class Notebook:
    """A paper notebook as the runner sees it, read without running it (:func:`load`)."""

    name: str
    path: Path
    title: str
    citation: str
    arxiv: str
    profiles: tuple[str, ...]
    knobs: dict[str, Knob]
    items: tuple[dict, ...] = ()
    scale: dict | None = None


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


_NUMBER = r"([-+]?(?:inf|\d+(?:\.\d*)?(?:e[-+]?\d+)?))"
_RANGE = re.compile(rf"^([\[(])\s*{_NUMBER}\s*,\s*{_NUMBER}\s*([\])])\s*(.*)$")
_CHOICES = re.compile(r"^\{([^}]*)\}\s*(.*)$")


def _comment_spec(comment: str) -> tuple[tuple | None, tuple | None, str]:
    """Range, choices and meaning from a parameter's trailing comment."""
    if m := _RANGE.match(comment):
        return (float(m[2]), float(m[3]), m[1] + m[4]), None, m[5]
    if m := _CHOICES.match(comment):
        choices = []
        for word in (w.strip() for w in m[1].split(",")):
            try:
                choices.append(ast.literal_eval(word))
            except (ValueError, SyntaxError):
                choices.append(word)
        return None, tuple(choices), m[2]
    return None, None, comment


def _element_type(node: ast.expr | None) -> type | None:
    text = ast.unparse(node) if node is not None else ""
    m = re.search(r"list\[(\w+)\]", text)
    return _TYPES.get(m[1]) if m else None


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
        bounds, choices, help_text = _comment_spec(line.split("#", 1)[1].strip() if "#" in line else "")
        knobs[target.id] = Knob(target.id, default, _annotation_types(annotation, default), help_text,
                                _element_type(annotation), bounds, choices)
    return knobs


def _literal(node: ast.expr, env: dict) -> object:
    """A literal, also through ``dict(k=v, ...)`` calls and names bound to literals earlier (the way
    profile tables are written)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" \
            and len(node.args) <= 1:
        base = dict(_literal(node.args[0], env)) if node.args else {}
        return base | {kw.arg: _literal(kw.value, env) for kw in node.keywords}
    if isinstance(node, ast.Dict):
        return {_literal(k, env): _literal(v, env) for k, v in zip(node.keys, node.values)}
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(v, env) for v in node.elts]
    if isinstance(node, ast.Name) and node.id in env:
        return env[node.id]
    return ast.literal_eval(node)


def profile_values(path: Path) -> dict[str, dict]:
    """The notebook's profile table ``{profile: {knob: value}}``, the second argument of its
    ``profiles.resolve`` or ``profiles.resolve_from`` call, read without running the notebook ({} if it
    cannot be read)."""
    env: dict = {}
    for cell in json.loads(Path(path).read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse("".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"])
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                try:
                    env[node.targets[0].id] = _literal(node.value, env)
                except (ValueError, SyntaxError, TypeError):
                    pass
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("profiles.resolve", "profiles.resolve_from") \
                    and len(node.args) >= 2 and isinstance(node.args[1], ast.Name):
                return env.get(node.args[1].id, {})
    return {}


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


def check_scale(scale: object, where: str = "") -> dict | None:
    """Validate a scale declaration (see the module docstring); None when the notebook has none."""
    if scale is None:
        return None
    if not isinstance(scale, dict) or set(scale) != {"rows", "note"} or not isinstance(scale["rows"], list):
        raise ValueError(f"{where}: metadata.paperlib.scale must be {{'rows': [...], 'note': '...'}}")
    for i, row in enumerate(scale["rows"]):
        extra = set(row) - {"quantity", "paper"} if isinstance(row, dict) else set()
        ok = isinstance(row, dict) and {"quantity", "paper"} <= set(row) and extra in ({"knob"}, {"profiles"})
        if ok and isinstance(row.get("profiles"), dict):
            ok = set(row["profiles"]) == set(SCALE_PROFILES)
        if not ok:
            raise ValueError(f"{where}: scale row {i} must have 'quantity', 'paper' and either 'knob' or "
                             f"'profiles' (a text, or one per profile {SCALE_PROFILES})")
    return scale


def _shown(value: object) -> str:
    """A profile value as table text: lists comma-separated, inner lists in parentheses."""
    if isinstance(value, (list, tuple)):
        return ", ".join(f"({_shown(v)})" if isinstance(v, (list, tuple)) else _shown(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def scale_table(nb: Notebook) -> list[dict]:
    """The notebook's scale rows resolved to text: ``{"quantity", "paper", "full", "default", "smoke"}``,
    knob rows read from its profile table. [] when it declares no scale."""
    if not nb.scale:
        return []
    table = profile_values(nb.path)
    rows = []
    for row in nb.scale["rows"]:
        if "knob" in row:
            missing = [p for p in SCALE_PROFILES if row["knob"] not in table.get(p, {})]
            if missing:
                raise ValueError(f"{nb.name}: scale row {row['quantity']!r} names knob {row['knob']!r}, "
                                 f"which the profile table lacks for {missing}")
            values = {p: _shown(table[p][row["knob"]]) for p in SCALE_PROFILES}
        elif isinstance(row["profiles"], dict):
            values = {p: _shown(row["profiles"][p]) for p in SCALE_PROFILES}
        else:
            values = dict.fromkeys(SCALE_PROFILES, _shown(row["profiles"]))
        rows.append({"quantity": row["quantity"], "paper": _shown(row["paper"]), **values})
    return rows


def load(path: Path) -> Notebook:
    """Read a notebook's metadata (title, citation, items, scale) and its parameters cell.

    Args:
      path: the ``.ipynb`` file.

    Returns:
      The :class:`Notebook`; ``ValueError`` when the metadata or the parameters cell is malformed.
    """
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
                    items=check_items(meta.get("items", []), str(path)),
                    scale=check_scale(meta.get("scale"), str(path)))


def discover(directory: Path = NOTEBOOKS_DIR) -> dict[str, Notebook]:
    """Every ``*.ipynb`` in ``directory`` (checkpoints excluded), by name."""
    return {p.stem: load(p) for p in sorted(Path(directory).glob("*.ipynb"))}


def parse_value(knob: Knob, text: str) -> object:
    """A command-line string as a value of the knob's type; a clear ValueError otherwise."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text  # a bare word is a string
    if (why := knob.problem(value)) is not None:
        raise ValueError(f"parameter {knob.name!r} {why}")
    return value
