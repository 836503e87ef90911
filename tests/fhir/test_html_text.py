"""html_to_text: blocks become lines, entities are unescaped, script/style dropped, whitespace collapsed."""

from __future__ import annotations

import pytest

from clinie.fhir.html_text import html_to_text


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>one</p><p>two</p>", "one\ntwo"),
        ("a<br>b<br/>c", "a\nb\nc"),
        ("<div>x <b>bold</b>  y\n   z</div>", "x bold y z"),
        ("<p>5 &lt; 6 &amp;&amp; 7 &gt; 6 &#x263A; &eacute;</p>", "5 < 6 && 7 > 6 ☺ é"),
        ("<script>var s = '<p>no</p>';</script><style>.a{}</style>kept", "kept"),
        ("<ul><li>one</li><li>two</li></ul>", "one\ntwo"),
        ("<table><tr><td>a</td><td>b</td></tr><tr><th>c</th><td>d</td></tr></table>", "a\tb\nc\td"),
        ("<pre>x   y\n  z</pre>", "x   y\n  z"),
        ("<!-- hidden --><p>shown</p>", "shown"),
        ("plain text, no tags", "plain text, no tags"),
        ("<p>  </p>", ""),
        ("<h1>Title</h1>Body", "Title\nBody"),
        ("unclosed <b>tags <i>here", "unclosed tags here"),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text
