"""A small HTML-to-text converter on ``html.parser`` (no external dependency).

Rules: block elements (p, div, br, li, tr, headings, ...) start and end lines; runs of whitespace in text (incl.
non-breaking spaces) collapse to one space (except inside ``<pre>``); character references are unescaped;
``script``, ``style``, ``template``, ``noscript`` and comments are dropped; table cells are separated by a tab.
The result has no leading/trailing whitespace.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog", "div", "dl",
        "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "head",
        "header", "hr", "html", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody",
        "tfoot", "thead", "title", "tr", "ul",
    }
)  # fmt: skip
CELL_TAGS = frozenset({"td", "th"})
DROP_TAGS = frozenset({"script", "style", "template", "noscript"})
_WS = re.compile(r"\s+")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._drop = 0  # depth inside script/style/...
        self._pre = 0  # depth inside <pre>
        self._space = False  # a collapsed space is pending before the next word
        self._cell = False  # a cell ended on this line: the next cell starts with a tab

    # output helpers
    def _at_line_start(self) -> bool:
        return not self.parts or self.parts[-1].endswith("\n")

    def _newline(self) -> None:
        self._space = False
        self._cell = False
        if not self._at_line_start():
            self.parts.append("\n")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROP_TAGS:
            self._drop += 1
        elif tag == "br":
            self._space = False
            self.parts.append("\n")
        elif tag in BLOCK_TAGS:
            self._newline()
            if tag == "pre":
                self._pre += 1
        elif tag in CELL_TAGS and self._cell:
            self._space = False
            self.parts.append("\t")

    def handle_endtag(self, tag: str) -> None:
        if tag in DROP_TAGS:
            self._drop = max(0, self._drop - 1)
        elif tag in BLOCK_TAGS:
            if tag == "pre":
                self._pre = max(0, self._pre - 1)
            self._newline()
        elif tag in CELL_TAGS:
            self._cell = True

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag != "br":
            self.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if self._drop or not data:
            return
        if self._pre:
            self.parts.append(data)
            return
        words = _WS.split(data)
        if words and words[0] == "":  # leading whitespace
            self._space = True
            words = words[1:]
        trailing = bool(words) and words[-1] == ""
        words = [w for w in words if w]
        if not words:
            return
        if self._space and not self._at_line_start() and not self.parts[-1].endswith("\t"):
            self.parts.append(" ")
        self.parts.append(" ".join(words))
        self._space = trailing


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment or document (see the module docstring for the rules)."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts).strip()
