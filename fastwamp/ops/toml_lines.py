"""Where each key of a TOML document is written: key paths to line numbers.

``tomllib`` returns values without positions, so configuration errors (which name
keys as ``realms[1].users[0].ticket``) find their line here.  The scanner knows the
TOML shapes a configuration uses: ``[table]`` and ``[[array.of.tables]]`` headers
(counted per parent, so the second ``[[realms]]`` is ``realms[1]``), bare, quoted
and dotted keys, arrays (``serializers[1]``) and inline tables, strings of all four
kinds.  It never raises: text it cannot follow is skipped, and :func:`line_of` falls
back to the nearest enclosing key that was found.
"""

from __future__ import annotations

import re

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_KEY_PART = re.compile(r'\s*(?:([A-Za-z0-9_-]+)|"((?:[^"\\]|\\.)*)"|\'([^\']*)\')\s*')
#: One trailing component of a key path: ``[3]`` or ``.name``.
_LAST_PART = re.compile(r"(\[\d+\]|\.[^.\[\]]*)$")


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


class _Scanner:
    """One pass over the text, recording the first line of every key path."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[str, int] = {}
        #: Arrays of tables seen so far: resolved path -> index of their last table.
        self.arrays: dict[str, int] = {}

    def record(self, path: str, line: int) -> None:
        self.lines.setdefault(path, line)

    def record_dotted(self, prefix: str, parts: list[str], line: int) -> str:
        """Record a (dotted) key and the tables it opens: ``a.b = 1`` writes ``a`` too."""
        for part in parts:
            prefix = _join(prefix, part)
            self.record(prefix, line)
        return prefix

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos:self.pos + n]

    def advance(self, n: int = 1) -> None:
        self.line += self.text.count("\n", self.pos, self.pos + n)
        self.pos += n

    def skip_blank(self, newlines: bool) -> None:
        """Skip spaces (and newlines and comments when ``newlines``)."""
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch in " \t\r" or (newlines and ch == "\n"):
                self.advance()
            elif newlines and ch == "#":
                self.skip_line()
            else:
                return

    def skip_line(self) -> None:
        end = self.text.find("\n", self.pos)
        self.advance((end if end >= 0 else len(self.text)) - self.pos)

    def key(self) -> list[str] | None:
        """A (dotted) key at ``pos``, as its parts; None if there is none."""
        parts = []
        while True:
            match = _KEY_PART.match(self.text, self.pos)
            if not match or match.end() == self.pos:
                return None
            parts.append(next(g for g in match.groups() if g is not None))
            self.advance(match.end() - self.pos)
            if self.peek() != ".":
                return parts
            self.advance()

    def resolve(self, parts: list[str]) -> str:
        """A header's path, each array of tables standing for its last table."""
        path = ""
        for part in parts:
            path = _join(path, part)
            if path in self.arrays:
                path = f"{path}[{self.arrays[path]}]"
        return path

    def value(self, path: str) -> None:
        """Skip one value, recording the keys and items inside it under ``path``."""
        ch = self.peek()
        if ch == "{":
            self.advance()
            while True:
                self.skip_blank(newlines=True)
                if self.peek() in ("}", ""):
                    self.advance()
                    return
                if self.peek() == ",":
                    self.advance()
                    continue
                line = self.line
                parts = self.key()
                if parts is None or self.peek() != "=":
                    self.skip_line()
                    return
                self.advance()
                self.skip_blank(newlines=False)
                inner = self.record_dotted(path, parts, line)
                self.value(inner)
        elif ch == "[":
            self.advance()
            index = 0
            while True:
                self.skip_blank(newlines=True)
                if self.peek() in ("]", ""):
                    self.advance()
                    return
                if self.peek() == ",":
                    self.advance()
                    continue
                item = f"{path}[{index}]"
                self.record(item, self.line)
                before = self.pos
                self.value(item)
                if self.pos == before:  # pragma: no cover - defensive: always progress
                    self.advance()
                index += 1
        elif ch in ('"', "'"):
            quote = self.peek(3)
            if quote in ('"""', "'''"):
                end = self.text.find(quote, self.pos + 3)
                self.advance((end + 3 if end >= 0 else len(self.text)) - self.pos)
            else:
                pattern = r'"(?:[^"\\\n]|\\.)*"?' if ch == '"' else r"'[^'\n]*'?"
                match = re.compile(pattern).match(self.text, self.pos)
                self.advance(match.end() - self.pos if match else 1)
        else:
            match = re.compile(r"[^,\]}\n#]*").match(self.text, self.pos)
            self.advance(match.end() - self.pos if match else 1)

    def run(self) -> dict[str, int]:
        table = ""
        while self.pos < len(self.text):
            self.skip_blank(newlines=True)
            if self.pos >= len(self.text):
                break
            line = self.line
            if self.peek(2) == "[[":
                self.advance(2)
                parts = self.key()
                if parts:
                    parent = self.resolve(parts[:-1])
                    array = _join(parent, parts[-1])
                    index = self.arrays.get(array, -1) + 1
                    self.arrays[array] = index
                    table = f"{array}[{index}]"
                    self.record(array, line)
                    self.record(table, line)
                self.skip_line()
            elif self.peek() == "[":
                self.advance()
                parts = self.key()
                if parts:
                    table = self.resolve(parts)
                    self.record(table, line)
                self.skip_line()
            else:
                parts = self.key()
                if parts is None or self.peek() != "=":
                    self.skip_line()
                    continue
                self.advance()
                self.skip_blank(newlines=False)
                path = self.record_dotted(table, parts, line)
                self.value(path)
        return self.lines


def key_lines(text: str) -> dict[str, int]:
    """Map every key path of a TOML text (``realms[0].users[1].wampcra.key``,
    ``listeners[0].serializers[2]``) to the line (from 1) where it is written."""
    try:
        return _Scanner(text).run()
    except (IndexError, ValueError):  # pragma: no cover - defensive: never fail a report
        return {}


def line_of(lines: dict[str, int], path: str) -> int | None:
    """The line of key ``path``, else of the nearest enclosing key or table found;
    None when none of them is written in the text (a default, or an empty document)."""
    while path:
        if path in lines:
            return lines[path]
        shorter = _LAST_PART.sub("", path)
        if shorter == path:
            return None
        path = shorter
    return None
