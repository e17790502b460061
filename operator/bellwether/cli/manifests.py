"""Reading manifest files the way `kubectl apply -f` reads them, fast.

`bellwether validate` must see the values the API server will see, not what PyYAML's YAML 1.1
constructors make of the text. kubectl converts YAML to JSON through go-yaml v2, which differs from
PyYAML where it matters for a spec: `version: 2026-11-20` stays a string (PyYAML makes a date),
`y`/`n` are booleans, `1e3` and `0o17` are numbers, `1:30` is a string, a float with an integral value
(`4.0`) reaches the server as the integer `4`, a key given twice is an error, and a `List` (any kind
ending in `List` with `items`) is applied item by item.

The documents are built straight from libyaml's events (PyYAML's C parser when it was built with
libyaml): PyYAML's node graph and constructors cost three quarters of the time, and a 3 MB file of
small ModelDeployments must read in well under a second.
"""

from __future__ import annotations

import gc
import json
import math
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml import events
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.scanner import Scanner


class PurePythonParser(Reader, Scanner, Parser):
    """PyYAML's own parser: the same events as libyaml's, ten times slower; for a PyYAML built without it."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)


try:
    from yaml._yaml import CParser

    PARSER: Any = CParser
except ImportError:  # pragma: no cover - PyYAML wheels ship libyaml
    PARSER = PurePythonParser


MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"


class ManifestError(ValueError):
    """A file kubectl could not read either; the message says where (line numbers count from 1)."""


@dataclass(frozen=True)
class Document:
    """One object to apply: a document of a file, or an item of a `List` in it."""

    source: str  # the file name as given, or "stdin"
    value: Any
    line: int  # where its document starts, from 1
    item: str = ""  # `items[2]` for an item of a List, else empty

    @property
    def label(self) -> str:
        return f"{self.source} (line {self.line}, {self.item})" if self.item else self.source


# --- Scalars as go-yaml v2 resolves a plain (unquoted, untagged) scalar.

_WORDS: dict[str, Any] = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), False),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
}
# Go's strconv.ParseInt(s, 0, 64) after go-yaml removed every underscore.
_GO_INT = re.compile(r"([-+]?)(0[bB][01]+|0[oO][0-7]+|0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_GO_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_BASES = {"b": 2, "o": 8, "x": 16}
_INT64 = 2**63
# Go's encoding/json writes float64 values below 1e21 without an exponent: an integral one reads back as an integer.
_JSON_INTEGRAL = 1e21


def number(value: float) -> int | float:
    """A float as the API server receives it: `4.0` is sent as `4`, an integer."""
    if value.is_integer() and abs(value) < _JSON_INTEGRAL:
        return int(value)
    return value


def _go_int(text: str) -> int | None:
    match = _GO_INT.fullmatch(text)
    if match is None:
        return None
    sign, body = match.groups()
    if len(body) > 1 and body[1] in "bBoOxX":
        value = int(body[2:], _BASES[body[1].lower()])
    elif body.startswith("0") and len(body) > 1:
        value = int(body[1:], 8)
    else:
        value = int(body)
    value = -value if sign == "-" else value
    return value if -_INT64 <= value < 2 * _INT64 else None  # beyond uint64: Go tries it as a float


def plain(text: str) -> Any:
    """A plain scalar's value: go-yaml v2's choice of bool, null, int, float or string."""
    if text in _WORDS:
        return _WORDS[text]
    first = text[0]
    if first in "0123456789+-":
        digits = text.replace("_", "")
        whole = _go_int(digits)
        if whole is not None:
            return whole
        if _GO_FLOAT.fullmatch(digits) and math.isfinite(float(digits)):  # out of range: Go keeps the text
            return number(float(digits))
        return text  # includes timestamps: go-yaml keeps `2026-11-20` a string for interface{} targets
    if first == "." and _GO_FLOAT.fullmatch(text) and math.isfinite(float(text)):
        return number(float(text))
    return text


_TAGGED: dict[str, Callable[[str], Any]] = {
    "tag:yaml.org,2002:str": str,
    "!": str,
    "tag:yaml.org,2002:int": plain,
    "tag:yaml.org,2002:float": plain,
    "tag:yaml.org,2002:bool": plain,
    "tag:yaml.org,2002:null": plain,
}


def _scalar(event: events.ScalarEvent) -> Any:
    if event.tag and event.tag in _TAGGED:
        return _TAGGED[event.tag](event.value)
    if event.style or not event.implicit[0]:
        return event.value  # quoted, literal or folded: always a string
    return plain(event.value)


def _key(value: Any, line: int) -> str:
    """A mapping key as sigs.k8s.io/yaml turns it into a JSON object key."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise ManifestError(f"line {line}: a mapping key must be a string or a number, not {type(value).__name__}")


# --- Documents from events.

_MERGE = object()  # the plain `<<` key: merge the mapping(s) it names
_NO_KEY = object()


class _Frame:
    """A mapping or sequence being built, with what a mapping needs: its pending key, where each key
    was set (to name a repeated key's lines) and the mappings merged into it with `<<`."""

    __slots__ = ("anchor", "key", "key_mark", "marks", "merged", "value")

    def __init__(self, value: dict[str, Any] | list[Any], anchor: str | None) -> None:
        self.value = value
        self.anchor = anchor
        self.key: Any = _NO_KEY
        self.key_mark: Any = None
        self.marks: dict[str, Any] = {}
        self.merged: list[Any] = []


class _Builder:
    def __init__(self, text: str, parser: Any) -> None:
        self.parser = parser(text)
        self.anchors: dict[str, Any] = {}
        self.open: set[str] = set()  # anchors of containers still being built: an alias to one is a cycle
        self.stack: list[_Frame] = []

    def documents(self) -> Iterator[tuple[Any, int]]:
        """(value, first line) of every document, in order. One loop over the events with everything
        it touches bound locally and the common cases inline: it is most of the time a large file takes."""
        get, stack, words = self.parser.get_event, self.stack, _WORDS
        scalar, mapping, sequence = events.ScalarEvent, events.MappingStartEvent, events.SequenceStartEvent
        ends = (events.MappingEndEvent, events.SequenceEndEvent)
        line = 1
        while True:
            event: Any = get()  # typed loosely: the loop tells the kinds apart by type(), not isinstance
            kind = type(event)
            if kind is scalar:
                text = event.value
                if event.tag or event.style or not event.implicit[0]:
                    value = _scalar(event)
                else:
                    value = words[text] if text in words else plain(text)
                if event.anchor:
                    self.anchors[event.anchor] = value
            elif kind is mapping or kind is sequence:
                self._open({} if kind is mapping else [], event.anchor)
                continue
            elif kind in ends:
                value = self._close(stack.pop())
            elif kind is events.AliasEvent:
                value = self._alias(event)
            elif kind is events.DocumentStartEvent:
                line, self.anchors = event.start_mark.line + 1, {}
                continue
            elif kind is events.StreamEndEvent:
                return
            else:
                continue
            if not stack:
                yield value, line
                continue
            frame = stack[-1]
            if type(frame.value) is list:
                frame.value.append(value)
            elif frame.key is _NO_KEY:
                is_merge = value == "<<" and kind is scalar and not event.style
                frame.key, frame.key_mark = (_MERGE if is_merge else value), event.start_mark
            else:
                self._set(frame, value)

    def _open(self, value: dict[str, Any] | list[Any], anchor: str | None) -> None:
        self.stack.append(_Frame(value, anchor))
        if anchor:
            self.anchors[anchor] = value
            self.open.add(anchor)

    def _close(self, frame: _Frame) -> Any:
        if frame.anchor:
            self.open.discard(frame.anchor)
        if isinstance(frame.value, dict):
            for merged in frame.merged:  # explicit keys win, then the earlier merged mapping
                for key, value in merged.items():
                    frame.value.setdefault(key, value)
        return frame.value

    def _alias(self, event: Any) -> Any:
        line = event.start_mark.line + 1
        if event.anchor in self.open:
            raise ManifestError(f"line {line}: alias *{event.anchor} refers to a value that contains it")
        if event.anchor not in self.anchors:
            raise ManifestError(f"line {line}: alias *{event.anchor} names no anchor defined before it")
        return self.anchors[event.anchor]

    def _set(self, frame: _Frame, value: Any) -> None:
        """The value of a mapping's pending key; a key given twice is an error, as kubectl makes it."""
        target, key, mark = frame.value, frame.key, frame.key_mark
        frame.key = _NO_KEY
        assert isinstance(target, dict)
        if key is _MERGE:
            frame.merged += _mergeable(value, mark.line + 1)
            return
        if type(key) is not str:
            key = _key(key, mark.line + 1)
        if key in target:
            first = frame.marks[key].line + 1
            raise ManifestError(f"line {mark.line + 1}: mapping key {key!r} already defined at line {first}")
        target[key] = value
        frame.marks[key] = mark


def _mergeable(value: Any, line: int) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, dict) for item in items):
        raise ManifestError(f"line {line}: `<<` merges a mapping or a list of mappings")
    return items


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ManifestError(f"duplicate field {key!r} in a JSON object")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ManifestError(f"{name} is not JSON: kubectl cannot send it")


def _json_documents(text: str) -> Iterator[tuple[Any, int]]:
    """One or more JSON objects one after the other, as kubectl reads a `.json` manifest."""
    decoder = json.JSONDecoder(
        object_pairs_hook=_json_object, parse_float=lambda s: number(float(s)), parse_constant=_no_constant
    )
    at = 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return
        try:
            value, end = decoder.raw_decode(text, at)
        except json.JSONDecodeError as e:
            raise ManifestError(
                f"line {e.lineno}: {e.msg} (read as JSON, as kubectl does: it starts with {{)"
            ) from None
        yield value, text.count("\n", 0, at) + 1
        at = end


def parse_text(text: str, parser: Any = None) -> list[tuple[Any, int]]:
    """Every document's value and first line; raises ManifestError for text kubectl cannot read.

    The cyclic garbage collector is paused meanwhile: reading builds hundreds of thousands of dicts and
    lists and no cycle (an alias to an enclosing node is refused), yet each thousand of them would start
    a collection that walks everything the process holds."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        if text.lstrip().startswith("{"):
            return list(_json_documents(text))
        return list(_Builder(text, parser or PARSER).documents())
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ManifestError(f"{where}{e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise ManifestError(str(e)) from None
    finally:
        if enabled:
            gc.enable()


# --- Files, directories, stdin and Lists.


def flatten(doc: Document) -> Iterator[Document]:
    """A `List` (any kind ending in List, with items) stands for its items, as kubectl applies them; an
    item without apiVersion and kind takes the List's (`ModelDeploymentList` items are ModelDeployments)."""
    value = doc.value
    kind = value.get("kind") if isinstance(value, dict) else None
    if not (isinstance(kind, str) and kind.endswith("List") and isinstance(value.get("items"), list)):
        yield doc
        return
    for i, item in enumerate(value["items"]):
        if isinstance(item, dict) and "kind" not in item and "apiVersion" not in item and kind != "List":
            item = {"apiVersion": value.get("apiVersion"), "kind": kind.removesuffix("List"), **item}
        where = f"{doc.item}.items[{i}]" if doc.item else f"items[{i}]"
        yield from flatten(Document(doc.source, item, doc.line, where))


def sources(name: str) -> list[tuple[str, Path | None]]:
    """The files a `-f` argument names: the file, every manifest under a directory (recursively,
    sorted), or stdin for `-`. Raises ManifestError when there is nothing to read."""
    if name == STDIN:
        return [("stdin", None)]
    path = Path(name)
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.suffix in MANIFEST_SUFFIXES and p.is_file())
        if not found:
            raise ManifestError(f"no {', '.join(MANIFEST_SUFFIXES)} files in the directory")
        return [(str(p), p) for p in found]
    return [(name, path)]


def read(label: str, path: Path | None) -> list[Document]:
    """Every object in one file (or stdin), Lists flattened; raises ManifestError."""
    try:
        text = sys.stdin.read() if path is None else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(e.strerror if isinstance(e, OSError) and e.strerror else str(e)) from None
    docs = [Document(label, value, line) for value, line in parse_text(text) if value is not None]
    return [item for doc in docs for item in flatten(doc)]
