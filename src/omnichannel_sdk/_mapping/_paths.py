"""JMESPath expressions and ``{placeholder}`` templates for the declarative mapping.

Every path in a mapping is a JMESPath expression (https://jmespath.org), compiled once when the
configuration is validated. Paths written for 0.1.0's dotted syntax (``entries.0.text``) are
translated on the way in (``entries[0].text``), so old configurations keep working; the docs
carry the migration note.

Templates are strings with ``{expression}`` placeholders (``{{`` and ``}}`` for literal braces).
A template that is exactly one placeholder yields the expression's value as it is (a list stays a
list); otherwise each value is written as text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jmespath
import jmespath.exceptions
import jmespath.parser

__all__ = ["Path", "Template", "compile_path", "migrate_dotted"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INDEX = re.compile(r"^-?\d+$")
_DOTTED = re.compile(r"^[\w\-]+(\.[\w\-]+)*$")
"""What 0.1.0's dotted syntax could write: names (with ``-``) and indices between dots."""
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]+)\}")


def migrate_dotted(path: str) -> str:
    """The JMESPath spelling of a 0.1.0 dotted path: numbers become indices, names that are not
    identifiers are quoted (``a.0.b-c`` → ``a[0]."b-c"``)."""
    out = ""
    for segment in path.split("."):
        if _INDEX.match(segment) and out:
            out += f"[{segment}]"
        elif _IDENTIFIER.match(segment):
            out += ("." if out else "") + segment
        else:
            quoted = segment.replace("\\", "\\\\").replace('"', '\\"')
            out += ("." if out else "") + f'"{quoted}"'
    return out


class Path:
    """A compiled JMESPath expression; :meth:`search` never raises on data it cannot walk."""

    __slots__ = ("_compiled", "expression")

    def __init__(self, expression: str) -> None:
        self.expression = expression
        """The expression as the mapping wrote it (after the dotted-path translation)."""
        self._compiled: jmespath.parser.ParsedResult = jmespath.compile(expression)

    def search(self, data: Any) -> Any:
        """The value at this path, or ``None`` when it matches nothing."""
        try:
            return self._compiled.search(data)
        except jmespath.exceptions.JMESPathError:
            # type errors at run time (a function given the wrong type) match nothing
            return None

    def __repr__(self) -> str:
        return f"Path({self.expression!r})"


def compile_path(expression: str) -> Path:
    """Compile ``expression``; a 0.1.0 dotted path that is not JMESPath is translated first.

    Raises ``ValueError`` naming the expression when it is neither (pydantic turns it into a
    configuration error that names the channel key and the field).
    """
    expression = expression.strip()
    try:
        return Path(expression)
    except jmespath.exceptions.JMESPathError as first:
        migrated = migrate_dotted(expression) if _DOTTED.match(expression) else expression
        if migrated != expression:
            try:
                return Path(migrated)
            except jmespath.exceptions.JMESPathError:
                pass
        raise ValueError(f"not a JMESPath expression: {expression!r} ({first})") from None


class Template:
    """A string with ``{expression}`` placeholders, compiled once."""

    __slots__ = ("_pieces", "source", "whole")

    def __init__(self, source: str) -> None:
        self.source = source
        self._pieces: list[str | Path] = []
        at = 0
        for match in _PLACEHOLDER.finditer(source):
            self._pieces.append(source[at:match.start()])
            token = match.group(0)
            if token in ("{{", "}}"):
                self._pieces.append(token[0])
            else:
                self._pieces.append(compile_path(match.group(1)))
            at = match.end()
        self._pieces.append(source[at:])
        self._pieces = [p for p in self._pieces if p != ""]
        self.whole: Path | None = (
            self._pieces[0] if len(self._pieces) == 1 and isinstance(self._pieces[0], Path) else None)
        """The one path when the template is exactly one placeholder."""

    @property
    def paths(self) -> list[Path]:
        """The placeholders' expressions."""
        return [p for p in self._pieces if isinstance(p, Path)]

    @property
    def literal_prefix(self) -> str:
        """The text before the first placeholder (an URL template's origin, say)."""
        first = self._pieces[0] if self._pieces else ""
        return first if isinstance(first, str) else ""

    def render(self, data: Any, *, quote: Callable[[str], str] | None = None,
               missing: Callable[[Path], None] | None = None) -> Any:
        """The template filled from ``data``. ``quote`` escapes each value (URLs); ``missing``
        is told about a placeholder that matched nothing (it may raise)."""
        if self.whole is not None and quote is None:
            value = self.whole.search(data)
            if value is None and missing is not None:
                missing(self.whole)
            return value
        out: list[str] = []
        for piece in self._pieces:
            if isinstance(piece, str):
                out.append(piece)
                continue
            value = piece.search(data)
            if value is None:
                if missing is not None:
                    missing(piece)
                value = ""
            text = value if isinstance(value, str) else _text(value)
            out.append(quote(text) if quote is not None else text)
        return "".join(out)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        import orjson

        return orjson.dumps(value).decode()
    return str(value)


def render_value(template: Any, data: Any, missing: Callable[[Path], None] | None = None) -> Any:
    """A JSON body template (dicts, lists, strings with placeholders, other values as they are)
    filled from ``data``. Compiles on the fly; :class:`CompiledBody` keeps the compiled form."""
    return CompiledBody(template).render(data, missing)


class CompiledBody:
    """A JSON body template compiled once: strings become :class:`Template`."""

    __slots__ = ("_tree",)

    def __init__(self, template: Any) -> None:
        self._tree = _compile_tree(template)

    def render(self, data: Any, missing: Callable[[Path], None] | None = None) -> Any:
        """The body filled from ``data``."""
        return _render_tree(self._tree, data, missing)

    def paths(self) -> list[Path]:
        """Every placeholder's expression."""
        found: list[Path] = []
        _collect(self._tree, found)
        return found


def _compile_tree(node: Any) -> Any:
    if isinstance(node, str):
        return Template(node) if "{" in node or "}" in node else node
    if isinstance(node, dict):
        return {str(k): _compile_tree(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_compile_tree(v) for v in node]
    return node


def _render_tree(node: Any, data: Any, missing: Callable[[Path], None] | None) -> Any:
    if isinstance(node, Template):
        return node.render(data, missing=missing)
    if isinstance(node, dict):
        return {k: _render_tree(v, data, missing) for k, v in node.items()}
    if isinstance(node, list):
        return [_render_tree(v, data, missing) for v in node]
    return node


def _collect(node: Any, found: list[Path]) -> None:
    if isinstance(node, Template):
        found.extend(node.paths)
    elif isinstance(node, dict):
        for v in node.values():
            _collect(v, found)
    elif isinstance(node, list):
        for v in node:
            _collect(v, found)
