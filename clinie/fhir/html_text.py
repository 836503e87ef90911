"""HTML to text with a single-pass, linear tokenizer (no tree, no recursion, no rescanning).

Rules: block elements (p, div, br, li, tr, headings, ...) start and end lines; runs of whitespace in text (incl.
non-breaking spaces) collapse to one space (except inside ``<pre>``); character references are unescaped;
``script``, ``style``, ``template``, ``noscript`` and comments are dropped; table cells are separated by a tab.
The result has no leading/trailing whitespace. The returned text is the note text: every offset downstream refers
to it.

Why a tokenizer of our own: ``html.parser`` rescans unfinished constructs (``<a<a<a…``, unclosed attribute
quotes) from the start each time, which is quadratic (a 256 KB note took 45 s) and it raises ``AssertionError``
on some markup (``<![<![``). HTML5 tree builders (lexbor, html5lib) are linear in the input but quadratic in the
nesting depth (scope checks walk the stack of open elements). Text extraction needs neither: this module follows
the HTML5 tokenizer's rules for where a tag, comment or raw-text element ends (a construct left open runs to the
end of the input, as in a browser), and every character is looked at a bounded number of times, so the work is
O(len(html)) whatever the markup.
"""

from __future__ import annotations

import html as html_lib
import re

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
RAW_TEXT_TAGS = frozenset({"script", "style"})  # their content is not markup: it runs to the matching end tag
_WS = re.compile(r"\s+")
_TAG_NAME = re.compile(r"[A-Za-z][^\t\n\f\r />]*")
_ATTR_CHUNK = re.compile(r"[^>\"'=]*")
_SPACES = re.compile(r"[\t\n\f\r ]*")
_RAW_END = {t: re.compile(rf"</{t}(?=[\t\n\f\r />])", re.IGNORECASE) for t in RAW_TEXT_TAGS}


class _TextBuilder:
    """Turns start/end/text events into lines (the rules of the module docstring)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.drop = 0  # depth inside script/style/template/noscript
        self.pre = 0  # depth inside <pre>
        self.space = False  # a collapsed space is pending before the next word
        self.cell = False  # a cell ended on this line: the next cell starts with a tab

    def at_line_start(self) -> bool:
        return not self.parts or self.parts[-1].endswith("\n")

    def newline(self) -> None:
        self.space = False
        self.cell = False
        if not self.at_line_start():
            self.parts.append("\n")

    def start(self, tag: str) -> None:
        if tag in DROP_TAGS:
            self.drop += 1
        elif tag == "br":
            self.space = False
            self.parts.append("\n")
        elif tag in BLOCK_TAGS:
            self.newline()
            if tag == "pre":
                self.pre += 1
        elif tag in CELL_TAGS and self.cell:
            self.space = False
            self.parts.append("\t")

    def end(self, tag: str) -> None:
        if tag in DROP_TAGS:
            self.drop = max(0, self.drop - 1)
        elif tag in BLOCK_TAGS:
            if tag == "pre":
                self.pre = max(0, self.pre - 1)
            self.newline()
        elif tag in CELL_TAGS:
            self.cell = True

    def text(self, raw: str) -> None:
        if self.drop or not raw:
            return
        data = html_lib.unescape(raw) if "&" in raw else raw
        if self.pre:
            self.parts.append(data)
            return
        words = _WS.split(data)
        if words and words[0] == "":  # leading whitespace
            self.space = True
            words = words[1:]
        trailing = bool(words) and words[-1] == ""
        words = [w for w in words if w]
        if not words:
            return
        if self.space and not self.at_line_start() and not self.parts[-1].endswith("\t"):
            self.parts.append(" ")
        self.parts.append(" ".join(words))
        self.space = trailing


def _tag_end(html: str, j: int) -> int:
    """Index of the ``>`` that closes the tag whose attributes start at ``j``; ``-1`` if it runs to the end.

    Quotes delimit a value only right after ``=``; each character is scanned once.
    """
    n = len(html)
    while True:
        j = _ATTR_CHUNK.match(html, j).end()  # type: ignore[union-attr]  # always matches
        if j >= n:
            return -1
        ch = html[j]
        if ch == ">":
            return j
        if ch == "=":
            k = _SPACES.match(html, j + 1).end()  # type: ignore[union-attr]
            if k < n and html[k] in "\"'":
                close = html.find(html[k], k + 1)
                if close < 0:
                    return -1
                j = close + 1
            else:
                j = k
        else:  # a quote that does not start a value belongs to an attribute name
            j += 1


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment or document (see the module docstring); O(len(html))."""
    out = _TextBuilder()
    n = len(html)
    pos = 0
    while pos < n:
        lt = html.find("<", pos)
        if lt < 0:
            out.text(html[pos:])
            break
        nxt = html[lt + 1 : lt + 2]
        if nxt.isascii() and nxt.isalpha():  # start tag
            if lt > pos:
                out.text(html[pos:lt])
            name_end = _TAG_NAME.match(html, lt + 1).end()  # type: ignore[union-attr]
            tag = html[lt + 1 : name_end].lower()
            gt = _tag_end(html, name_end)
            if gt < 0:
                break  # a tag left open at the end of the input is dropped (HTML5: EOF in tag)
            out.start(tag)
            pos = gt + 1
            if html[gt - 1] == "/" and gt - 1 >= name_end and tag != "br":
                out.end(tag)  # <x/>
            elif tag in RAW_TEXT_TAGS:
                m = _RAW_END[tag].search(html, pos)
                if m is None:
                    break  # unclosed <script>: the rest of the input is script
                gt = _tag_end(html, m.end())
                out.end(tag)
                if gt < 0:
                    break
                pos = gt + 1
        elif nxt == "/":  # end tag, or a bogus comment
            if lt > pos:
                out.text(html[pos:lt])
            after = html[lt + 2 : lt + 3]
            if after.isascii() and after.isalpha():
                name_end = _TAG_NAME.match(html, lt + 2).end()  # type: ignore[union-attr]
                gt = _tag_end(html, name_end)
                if gt < 0:
                    break
                out.end(html[lt + 2 : name_end].lower())
            else:
                gt = html.find(">", lt + 2)  # "</>" is ignored; "</ x>" is a bogus comment
                if gt < 0:
                    break
            pos = gt + 1
        elif nxt in ("!", "?"):  # comment, doctype, CDATA, processing instruction: not text
            if lt > pos:
                out.text(html[pos:lt])
            if html.startswith("<!--", lt):
                if html.startswith(("<!-->", "<!--->"), lt):
                    pos = html.index(">", lt) + 1
                    continue
                close = html.find("-->", lt + 4)
                if close < 0:
                    break
                pos = close + 3
            else:
                gt = html.find(">", lt + 2)
                if gt < 0:
                    break
                pos = gt + 1
        else:  # a "<" that starts no markup is text
            out.text(html[pos : lt + 1])
            pos = lt + 1
    return "".join(out.parts).strip()
