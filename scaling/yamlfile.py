"""YAML the user wrote (grids, run specs, override values): safe_load semantics, UTF-8 text, one document,
unique keys, and the line of every key path, so each problem can be reported as `file:line: key: message`;
`Source` keeps where a grid's keys came from (file line or command-line override) and collects its problems.

Duplicate keys are errors: PyYAML lets the last one silently win, which quietly changes the experiment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scaling.errors import ConfigError

KeyPath = tuple[str | int, ...]


class LineLoader(yaml.SafeLoader):
    """A SafeLoader that records the line of every mapping key and sequence item by key path, and every key
    given twice in one mapping. Aliased nodes are walked once (a nested-alias "billion laughs" stays cheap)."""

    def construct_document(self, node: yaml.Node) -> Any:
        self.lines: dict[KeyPath, int] = {}
        self.duplicates: list[tuple[KeyPath, int, int]] = []  # (key path, line, line of its first occurrence)
        self._walked: set[int] = set()
        self._mark(node, ())
        return super().construct_document(node)

    def _mark(self, node: yaml.Node, path: KeyPath) -> None:
        if id(node) in self._walked:
            return
        self._walked.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                sub, line = (*path, str(key.value)), key.start_mark.line + 1
                if str(key.value) in first and key.tag != "tag:yaml.org,2002:merge":
                    self.duplicates.append((sub, line, first[str(key.value)]))
                first.setdefault(str(key.value), line)
                self.lines.setdefault(sub, line)
                self._mark(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.lines[(*path, i)] = item.start_mark.line + 1
                self._mark(item, (*path, i))


@dataclass
class Document:
    """A parsed YAML file: its data, the line of every key path, and the keys it gives twice."""

    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    duplicates: list[tuple[KeyPath, int, int]] = field(default_factory=list)


def read_text(path: Path) -> str:
    """A config file as text: UTF-8 without NUL bytes, else one ConfigError saying where the first bad byte is."""
    try:
        data = Path(path).read_bytes()
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a YAML file") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x}); is this a YAML file?"
        ) from None
    if "\0" in text:
        line = text[: text.index("\0")].count("\n") + 1
        raise ConfigError(f"{path}:{line}: contains a NUL byte; is this a YAML file?")
    return text


def parse(text: str, where: str, numbered: bool = True) -> Document:
    """Parse one YAML document; a syntax error becomes one ConfigError at `where` (and its line, if known)."""
    loader = LineLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f"{where}:{mark.line + 1}" if mark and numbered else where
        problem = " ".join(str(getattr(err, "problem", None) or err).split())
        raise ConfigError(f"{at}: not valid YAML ({problem})") from None
    except RecursionError:
        raise ConfigError(f"{where}: not valid YAML (nested too deeply)") from None
    finally:
        loader.dispose()
    return Document(data, getattr(loader, "lines", {}), getattr(loader, "duplicates", []))


def read_yaml(path: Path) -> Document:
    """A YAML file, checked to be UTF-8 text holding one document."""
    return parse(read_text(path), str(path))


def duplicate_messages(document: Document, where: str) -> list[tuple[int, str]]:
    """(line, message) for every key given twice, naming both lines."""
    return [
        (line, f"{where}:{line}: {dotted(key)}: duplicate key (first given at line {first}); keep one")
        for key, line, first in document.duplicates
    ]


def dotted(path: KeyPath) -> str:
    """('axes', 'method', 1) -> 'axes.method[1]'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def override_value(item: str) -> tuple[list[str], Any]:
    """'a.b=value' -> (['a', 'b'], value parsed as YAML, so numbers and booleans keep their type)."""
    key, sep, value = item.partition("=")
    parts = key.split(".")
    if not sep or not all(parts):
        raise ConfigError(f"override {item!r}: expected key=value, e.g. optim.lr=1e-3")
    if "\0" in value:
        raise ConfigError(f"override {item!r}: contains a NUL byte")
    document = parse(value, f"override {item}", numbered=False)
    if document.duplicates:
        key_path, _, _ = document.duplicates[0]
        raise ConfigError(f"override {item}: {dotted(key_path)}: duplicate key")
    return parts, document.data


def read_grid_file(path: Path) -> tuple[dict, Document]:
    """The grid file as a mapping, with the line of every key path (1-based) and its duplicate keys."""
    document = read_yaml(path)
    raw = {} if document.data is None else document.data
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}:1: expected a mapping (name, out, base, axes, ...) at the top level")
    return raw, document


class GridError(ConfigError):
    """One problem of a grid: its line (0 for an override) orders a file's problems; `problem` is the message
    without the grid point it was found at, so the same problem at many points is reported once."""

    def __init__(self, line: int, problem: str, at_point: str = ""):
        super().__init__(problem + at_point)
        self.line, self.problem = line, problem


@dataclass
class Source:
    """Where grid keys came from: the file's lines, and the keys set by command-line overrides. Collects the
    problems found, so a file with several is reported whole, one line each, in file order."""

    path: Path
    lines: dict[KeyPath, int] = field(default_factory=dict)
    overrides: dict[str, str] = field(default_factory=dict)  # dotted key -> the key=value given
    problems: list[GridError] = field(default_factory=list)

    def error(self, path: KeyPath, message: str, at_point: str = "") -> GridError:
        return GridError(self.line(path), f"{self.where(path)}: {dotted(path) or '(top level)'}: {message}", at_point)

    def add(self, path: KeyPath, message: str) -> None:
        self.problems.append(self.error(path, message))

    def check(self) -> None:
        """Raise every problem found so far: overrides first, then in file order, each once."""
        if self.problems:
            ordered = sorted(self.problems, key=lambda err: err.line)
            raise ConfigError(*dict.fromkeys(str(err) for err in ordered))

    def override(self, path: KeyPath) -> str | None:
        name = dotted(path)
        for key, item in self.overrides.items():
            if name == key or name.startswith((f"{key}.", f"{key}[")):
                return item
        return None

    def line(self, path: KeyPath) -> int:
        if self.override(path):
            return 0
        return next((self.lines[path[:n]] for n in range(len(path), 0, -1) if path[:n] in self.lines), 1)

    def where(self, path: KeyPath) -> str:
        item = self.override(path)
        return f"override {item}" if item else f"{self.path}:{self.line(path)}"
