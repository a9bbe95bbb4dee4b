"""Readable plain text from HTML: the one converter of the SDK and its plugins (the renderer's
fallback for channels without HTML, email bodies that come as HTML only)."""

from __future__ import annotations

import html as html_lib
import re
from html.parser import HTMLParser

import nh3

__all__ = ["html_to_text"]


_BLOCKS = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol",
           "pre", "hr", "blockquote", "dl", "dt", "dd", "section", "article", "header", "footer"}
_PARAGRAPHS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "blockquote", "pre",
               "hr"}
_SKIP = {"script", "style", "head", "title", "template", "noscript", "xml"}


class _TextBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.quote = 0
        self.skip = 0
        self.pre = 0
        self.link: str | None = None

    def _flush(self) -> None:
        text = "".join(self.current)
        self.current = []
        if not self.pre:
            text = re.sub(r"[ \t\r\n\u00a0]+", " ", text).strip()
        if not text:
            return
        prefix = "> " * self.quote
        for line in text.split("\n") if self.pre else [text]:
            self.lines.append(prefix + line)

    def _blank(self) -> None:
        if self.lines and self.lines[-1].strip(" >"):
            self.lines.append(">" * min(self.quote, 1))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip += 1
            return
        if tag == "br" and not "".join(self.current).strip():
            self.lines.append(">" * min(self.quote, 1))
        if tag in _BLOCKS:
            self._flush()
        if tag in _PARAGRAPHS:
            self._blank()
        if tag == "blockquote":
            self.quote += 1
        elif tag == "pre":
            self.pre += 1
        elif tag == "li":
            self.current.append("- ")
        elif tag == "a":
            self.link = dict(attrs).get("href")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.current.append(f"[{alt}]")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
            return
        if tag == "a" and self.link:
            text = "".join(self.current)
            if self.link.startswith(("http://", "https://")) and self.link not in text:
                self.current.append(f" <{self.link}>")
            self.link = None
        if tag in _BLOCKS:
            self._flush()
        if tag in _PARAGRAPHS:
            self._blank()
        if tag == "blockquote":
            self.quote = max(0, self.quote - 1)
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in ("br", "hr", "img"):
            self.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.current.append(data)


def html_to_text(html: str) -> str:
    """Readable text from HTML: scripts and styles dropped, blocks on their own lines, list
    bullets, links kept as ``text <url>``, ``<blockquote>`` history as ``>`` quotes (so email's
    ``split_reply`` finds it), entities decoded."""
    builder = _TextBuilder()
    try:
        builder.feed(html)
        builder.close()
    except (AssertionError, ValueError):  # pragma: no cover - html.parser is lenient
        return html_lib.unescape(nh3.clean(html, tags=set()))
    builder._flush()
    while builder.lines and not builder.lines[-1].strip(" >"):
        builder.lines.pop()  # a quote's closing blank line ends nothing
    text = "\n".join(line.rstrip() for line in builder.lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
