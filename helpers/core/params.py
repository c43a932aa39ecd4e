"""Settings declared once, and checked in one place.

Each field of a settings dataclass (hw1's, hw2's, ``fit``'s) is declared with
:func:`param` (a notebook parameter) or :func:`setting` (a recipe setting that presets
and tools set, not the notebook): its default, its type (the field's annotation), its
bounds or choices, and one line of help. Everything else reads the declaration:

- :func:`check_values` tests each value against it and raises :class:`ParameterError`
  naming the parameter, the bad value and what it must be;
- :func:`notebook_values` hands a notebook's parameters over by their declared names;
- :func:`cell_lines` and :func:`markdown_table` write the notebook's parameters cell
  (which papermill reads for ``--help-notebook``) and the docs' parameters table
  (``python -m helpers.tools.parameters``; ``tests/test_parameters.py`` fails when
  either is stale).

A field's type is its annotation, as the settings hold it once resolved; a ``None``
default means "chosen later" (from a preset or from the data), so ``None`` is accepted
there too and the notebook annotates it ``Optional[...]``.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

from .errors import ParameterError

Check = Callable[[str, Any], None]  # (name, value) -> None, or a ParameterError
FOLDER = "a folder path"  # what a path parameter must be, in its error message


@dataclass(frozen=True)
class Spec:
    """What a declaration says beside the default and the annotation."""

    help: str  # one line: the notebook's comment, papermill's help, the docs' meaning
    notebook: bool = True  # a parameter of the notebook (else a recipe or derived setting)
    bounds: str = ""  # ">= 1", "> 0", "(0, 1]", "[0, 1)": numbers (a list's every element)
    choices: tuple = ()  # the allowed values
    hint: str = ""  # appended to an error: an example or what a value means, e.g. "e.g. 0.5"
    what: str = ""  # the value in words, when not its type's (e.g. "a folder path")
    notebook_type: str = ""  # the notebook's annotation, when not the field's (a list for a tuple)
    doc: str = ""  # the docs table's meaning (Markdown), when longer than ``help``
    check: Check | None = None  # a further check of the value alone (e.g. a path exists)


def param(default: Any = MISSING, help: str = "", **spec: Any) -> Any:
    """A notebook parameter: a dataclass field with its declaration (see :class:`Spec`)."""
    return _field(default, Spec(help, notebook=True, **spec))


def setting(default: Any = MISSING, help: str = "", **spec: Any) -> Any:
    """A setting that presets, tools or the code set, but not the notebook."""
    return _field(default, Spec(help, notebook=False, **spec))


def _field(default: Any, spec: Spec) -> Any:
    if isinstance(default, list):  # a list default would be shared between instances
        return field(default=tuple(default), metadata={"spec": spec})
    return field(default=default, metadata={"spec": spec})


def declared(cls: type) -> list[Field]:
    """The declared fields of the settings class ``cls``, in declaration order."""
    return [f for f in fields(cls) if "spec" in f.metadata]


def spec_of(f: Field) -> Spec:
    return f.metadata["spec"]


def notebook_fields(cls: type) -> list[Field]:
    """The fields of ``cls`` that are notebook parameters, in the parameters cell's order."""
    return [f for f in declared(cls) if spec_of(f).notebook]


def defaults(cls: type) -> dict[str, Any]:
    """Every declared default of ``cls`` (a list default is held as a tuple)."""
    return {f.name: f.default for f in declared(cls) if f.default is not MISSING}


def notebook_values(cls: type, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The notebook parameters of ``cls`` found in ``namespace`` (a notebook's ``globals()``),
    by their declared names: the parameters cell hands its values over without retyping them."""
    return {f.name: namespace[f.name] for f in notebook_fields(cls) if f.name in namespace}


def reject_unknown(cls: type, names: Iterable[str]) -> None:
    """A clear error for a name ``cls`` does not declare (a typo), with the closest one."""
    known = [f.name for f in declared(cls)]
    unknown = sorted(set(names) - set(known))
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1)
        guess = f" Did you mean {close[0]!r}?" if close else ""
        raise ParameterError(
            f"unknown parameter(s) {unknown}.{guess} Valid names: {', '.join(sorted(known))}."
        )


# --- types and bounds ---------------------------------------------------------------


def _split_top(text: str, sep: str) -> list[str]:
    """``text`` split at ``sep`` outside brackets."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        depth += c == "["
        depth -= c == "]"
        if depth == 0 and text.startswith(sep, i):
            parts.append(text[start:i].strip())
            start = i + len(sep)
    return [*parts, text[start:].strip()]


def _alternatives(annotation: str) -> list[str]:
    """``"int | None"`` -> ``["int", "None"]``."""
    return _split_top(annotation, "|")


def _is_instance(kind: str, value: Any) -> bool:
    """Whether ``value`` has the annotated type ``kind`` (a list is accepted for a tuple)."""
    if len(_alternatives(kind)) > 1:
        return any(_is_instance(k, value) for k in _alternatives(kind))
    match = re.fullmatch(r"(tuple|list)\[(.*)\]", kind)
    if match:
        items = _split_top(match.group(2), ",")
        if not isinstance(value, (list, tuple)):
            return False
        if len(items) == 2 and items[1] == "...":
            return all(_is_instance(items[0], v) for v in value)
        return len(value) == len(items) and all(map(_is_instance, items, value))
    simple: dict[str, Callable[[Any], bool]] = {
        "None": lambda v: v is None,
        "bool": lambda v: isinstance(v, bool),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: (
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        ),
        "str": lambda v: isinstance(v, str),
    }
    return simple[kind](value)


def _optional(f: Field) -> str:
    """The field's annotation, with ``| None`` where its default is ``None``."""
    kind = f.type.__name__ if isinstance(f.type, type) else str(f.type)
    if f.default is None and "None" not in _alternatives(kind):
        kind += " | None"
    return kind


@dataclass(frozen=True)
class Bounds:
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    @classmethod
    def parse(cls, text: str) -> Bounds:
        """``">= 1"``, ``"> 0"``, ``"(0, 1]"``, ``"[0, 1)"``."""
        one_sided = re.fullmatch(r"(>=?)\s*(\S+)", text)
        if one_sided:
            return cls(low=float(one_sided.group(2)), low_open=one_sided.group(1) == ">")
        interval = re.fullmatch(r"([\[(])\s*(\S+),\s*(\S+)\s*([\])])", text)
        if not interval:
            raise ValueError(f"bounds {text!r}: write '>= 1', '> 0' or an interval like '(0, 1]'")
        left, low, high, right = interval.groups()
        return cls(float(low), float(high), left == "(", right == ")")

    def hold(self, x: float) -> bool:
        above = x > self.low if self.low_open else x >= self.low
        below = x < self.high if self.high_open else x <= self.high
        return above and below


def _base_words(kind: str, bounds: str) -> str:
    """A type in words, with its bounds: "an integer >= 1", "a positive number"."""
    match = re.fullmatch(r"(tuple|list)\[(.*)\]", kind)
    if match:
        items = _split_top(match.group(2), ",")
        noun, _, rest = _base_words(items[0], bounds).split(" ", 1)[1].partition(" ")
        count = "a list of" if items[-1] == "..." else f"a list of {len(items)}"
        return f"{count} {noun}s {rest}".rstrip()  # "a list of integers >= 1"
    if kind == "bool":
        return "True or False"
    if kind == "str":
        return "a string"
    noun = "an integer" if kind == "int" else "a number"
    if not bounds:
        return noun
    if bounds == "> 0":
        return f"a positive {noun.split()[-1]}"
    if bounds.startswith(">"):
        return f"{noun} {bounds}"
    return f"{noun} in {bounds}"


def expectation(f: Field) -> str:
    """What the value of ``f`` must be, in words: "an integer >= 1, or None"."""
    spec = spec_of(f)
    kinds = [k for k in _alternatives(_optional(f)) if k != "None"]
    words = spec.what or " or ".join(_base_words(k, spec.bounds) for k in kinds)
    if "None" in _alternatives(_optional(f)):
        words = (
            words.replace(" or ", ", ") + " or None" if kinds == ["bool"] else words + ", or None"
        )
    return words


def _in_bounds(value: Any, bounds: Bounds) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_in_bounds(v, bounds) for v in value)
    return not isinstance(value, (int, float)) or isinstance(value, bool) or bounds.hold(value)


def check_value(f: Field, value: Any) -> None:
    """``value`` against the declaration of ``f``: type, bounds, choices, its own check."""
    spec = spec_of(f)
    if value is None and "None" in _alternatives(_optional(f)):
        return
    if spec.choices and value not in spec.choices:
        raise ParameterError(
            f"{f.name}={value!r} is unknown; choose one of {', '.join(map(str, spec.choices))}."
        )
    fits = _is_instance(_optional(f), value)
    if not fits or (spec.bounds and not _in_bounds(value, Bounds.parse(spec.bounds))):
        verb = "lie in" if spec.bounds.startswith(("(", "[")) and "float" in str(f.type) else "be"
        words = expectation(f)
        words = words.removeprefix("a number in ") if verb == "lie in" else words
        hint = f" ({spec.hint})" if spec.hint else ""
        raise ParameterError(f"{f.name}={value!r} must {verb} {words}{hint}.")
    if spec.check is not None:
        spec.check(f.name, value)


def check_values(cls: type, values: Mapping[str, Any]) -> None:
    """Every value in ``values`` against the declaration of ``cls`` (unknown names refused)."""
    reject_unknown(cls, values)
    by_name = {f.name: f for f in declared(cls)}
    for name, value in values.items():
        check_value(by_name[name], value)


# --- the notebook's parameters cell and the docs' table --------------------------------


def notebook_type(f: Field) -> str:
    """The annotation the parameters cell gives ``f``, in the form papermill parses
    (``Optional[int]``, ``Union[str, int]``, ``list[int]``; not ``int | None``)."""
    spec = spec_of(f)
    if spec.notebook_type:
        return spec.notebook_type
    kinds = _alternatives(_optional(f))
    inner = [re.sub(r"tuple\[(\w+), \.\.\.\]", r"list[\1]", k) for k in kinds if k != "None"]
    kind = inner[0] if len(inner) == 1 else f"Union[{', '.join(inner)}]"
    return f"Optional[{kind}]" if "None" in kinds else kind


def literal(value: Any) -> str:
    """A default as the notebook writes it: ``"data"``, ``[16, 32, 64]``, ``None``."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple):
        return repr(list(value))
    return repr(value)


def cell_lines(cls: type) -> list[str]:
    """One line per notebook parameter of ``cls``: ``name: Type = default  # help``."""
    return [
        f"{f.name}: {notebook_type(f)} = {literal(f.default)}  # {spec_of(f).help}"
        for f in notebook_fields(cls)
    ]


def as_markdown(text: str) -> str:
    """Plain help as Markdown: ``<`` and ``>`` escaped, quoted values as code."""
    text = text.replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
    return re.sub(r'("[^"]*")', r"`\1`", text)


def markdown_table(cls: type) -> str:
    """The docs' parameters table of ``cls``: parameter, default, meaning (its ``doc``, or
    its help as Markdown)."""
    rows = ["| parameter | default | meaning |", "|---|---|---|"]
    for f in notebook_fields(cls):
        spec = spec_of(f)
        meaning = spec.doc or as_markdown(spec.help)
        rows.append(f"| `{f.name}` | `{literal(f.default)}` | {meaning} |")
    return "\n".join(rows)
