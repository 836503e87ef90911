"""Annotated notes as one self-contained HTML page (displaCy-style; no network, no external files).

Each note is shown as its text with the entities highlighted and labelled (``<mark class="ent">``, one colour per
label; nested or identical spans are nested or merged), negated mentions struck through with a dashed border and
a "negated" tag, and relations drawn as labelled arcs from the attribute (head) to the Drug (tail) by a small
inline script (SVG over the text; redrawn on resize). Below the text, tables list the entities and relations, so
the page is useful without the script too. All note text is HTML-escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from clinie.document import Document, Entity

COLORS = {
    "Problem": "#f4a6a6",
    "Drug": "#9fd3f4",
    "Dosage": "#c8e6a0",
    "Route": "#f6d28b",
    "Frequency": "#d7b8f3",
    "Duration": "#a8e6d9",
    "Reason": "#f7b7d8",
    "ADE": "#ffb870",
}
DEFAULT_COLOR = "#dddddd"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;max-width:60em;color:#222;
 padding:0 1em}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2.5em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.legend span{display:inline-block;margin:0 .5em .3em 0;padding:.1em .5em;border-radius:.3em;font-size:.85em}
.note{position:relative}
.text{position:relative;white-space:pre-wrap;line-height:3.6;font-size:1em;padding-top:1.2em;z-index:1}
mark.ent{background:var(--c);padding:.25em .35em;margin:0 .1em;border-radius:.35em;line-height:1.3;
 display:inline-block;white-space:normal}
mark.ent mark.ent{padding:.1em .2em}
mark.neg{text-decoration:line-through;text-decoration-thickness:2px;outline:2px dashed #b00;outline-offset:1px}
.tag{font-size:.62em;font-weight:700;text-transform:uppercase;letter-spacing:.03em;margin-left:.35em;
 vertical-align:middle;color:#333;text-decoration:none;display:inline-block;white-space:nowrap}
.neg>.tag::after{content:" \\00ac negated";color:#b00}
svg.arcs{position:absolute;left:0;top:0;pointer-events:none;overflow:visible;z-index:2}
svg.arcs path{fill:none;stroke:#555;stroke-width:1.3}
svg.arcs text{font-size:10px;fill:#333;paint-order:stroke;stroke:#fff;stroke-width:3px}
table{border-collapse:collapse;margin:.8em 0;font-size:.85em}
td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left}
.meta{color:#666;font-size:.85em}
"""

_JS = """
(function(){
function draw(){
 document.querySelectorAll('section.note').forEach(function(sec){
  var box=sec.querySelector('.text'),svg=sec.querySelector('svg.arcs');
  var rels=JSON.parse(sec.getAttribute('data-relations')||'[]');
  var base=box.getBoundingClientRect();
  svg.setAttribute('width',base.width);svg.setAttribute('height',base.height);
  svg.style.left=box.offsetLeft+'px';svg.style.top=box.offsetTop+'px';
  var ns='http://www.w3.org/2000/svg',out=[];
  while(svg.lastChild&&svg.lastChild.nodeName!=='defs'){svg.removeChild(svg.lastChild);}
  rels.forEach(function(r,i){
   var h=box.querySelector('[data-ids~="'+r.head+'"]'),t=box.querySelector('[data-ids~="'+r.tail+'"]');
   if(!h||!t){return;}
   var a=h.getClientRects()[0],b=t.getClientRects()[0];
   var x1=a.left+a.width/2-base.left,y1=a.top-base.top,x2=b.left+b.width/2-base.left,y2=b.top-base.top;
   var lift=14+Math.min(14,Math.abs(x2-x1)/40)+(i%3)*4;
   var top=Math.min(y1,y2)-lift;
   var p=document.createElementNS(ns,'path');
   p.setAttribute('d','M'+x1+','+y1+' C'+x1+','+top+' '+x2+','+top+' '+x2+','+(y2-2));
   p.setAttribute('marker-end','url(#'+svg.id+'-arrow)');svg.appendChild(p);
   var tx=document.createElementNS(ns,'text');tx.setAttribute('x',(x1+x2)/2);tx.setAttribute('y',top+lift*0.25);
   tx.setAttribute('text-anchor','middle');tx.textContent=r.label;svg.appendChild(tx);
  });
 });
}
window.addEventListener('load',draw);window.addEventListener('resize',draw);
})();
"""


@dataclass
class _Group:
    """Entities with the same span (e.g. a Problem that is also an ADE): one mark with several labels."""

    start: int
    end: int
    entities: list[Entity]


def render_html(docs: Sequence[Document], title: str = "clinie annotations") -> str:
    """One page showing every document of ``docs``."""
    labels = sorted({e.label for d in docs for e in d.entities}, key=lambda lab: (lab not in COLORS, lab))
    legend = "".join(f'<span style="background:{COLORS.get(lab, DEFAULT_COLOR)}">{html.escape(lab)}</span>'
                     for lab in labels)
    sections = "\n".join(_section(doc, i) for i, doc in enumerate(docs))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n<p class=\"meta\">{len(docs)} note(s). Arcs point from an attribute to its "
        f"drug.</p>\n<div class=\"legend\">{legend}</div>\n{sections}\n<script>{_JS}</script>\n</body></html>\n"
    )


def _section(doc: Document, index: int) -> str:
    import json

    groups = _groups(doc.entities)
    body = _render(doc.text, 0, len(doc.text), groups)
    rels = [{"label": r.label, "head": r.head, "tail": r.tail} for r in doc.relations]
    by_id = {e.id: e for e in doc.entities}
    ent_rows = "".join(
        f"<tr><td>{html.escape(e.id)}</td><td>{html.escape(e.label)}</td><td>{html.escape(doc.text[e.start:e.end])}"
        f"</td><td>{e.start}-{e.end}</td><td>{'yes' if e.negated else ''}</td>"
        f"<td>{'' if e.score is None else f'{e.score:.2f}'}</td></tr>" for e in doc.entities)
    rel_rows = "".join(
        f"<tr><td>{html.escape(r.label)}</td><td>{html.escape(_mention(doc, by_id.get(r.head)))}</td>"
        f"<td>{html.escape(_mention(doc, by_id.get(r.tail)))}</td>"
        f"<td>{'' if r.score is None else f'{r.score:.2f}'}</td></tr>" for r in doc.relations)
    svg_id = f"arcs{index}"
    return (
        f'<section class="note" id="note{index}" data-doc-id="{html.escape(doc.id, quote=True)}" '
        f"data-relations='{html.escape(json.dumps(rels), quote=True)}'>\n"
        f"<h2>{html.escape(doc.id)}</h2>\n"
        f'<svg class="arcs" id="{svg_id}"><defs><marker id="{svg_id}-arrow" viewBox="0 0 10 10" refX="9" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/>'
        "</marker></defs></svg>\n"
        f'<div class="text">{body}</div>\n'
        f"<details><summary>{len(doc.entities)} entities, {len(doc.relations)} relations</summary>\n"
        "<table class=\"entities\"><tr><th>id</th><th>label</th><th>text</th><th>offsets</th><th>negated</th>"
        f"<th>score</th></tr>{ent_rows}</table>\n"
        "<table class=\"relations\"><tr><th>relation</th><th>attribute</th><th>drug</th><th>score</th></tr>"
        f"{rel_rows}</table></details>\n</section>"
    )


def _mention(doc: Document, e: Entity | None) -> str:
    return "?" if e is None else f"{doc.text[e.start:e.end]} ({e.id})"


def _groups(entities: Sequence[Entity]) -> list[_Group]:
    spans: dict[tuple[int, int], _Group] = {}
    for e in entities:
        spans.setdefault((e.start, e.end), _Group(e.start, e.end, [])).entities.append(e)
    return sorted(spans.values(), key=lambda g: (g.start, -g.end))


def _render(text: str, start: int, end: int, groups: list[_Group]) -> str:
    """``text[start:end]`` with the groups (sorted by start, longest first) as nested marks.

    A group that starts inside another but ends after it is cut at the outer group's end (rare partial overlaps)."""
    out: list[str] = []
    pos, i = start, 0
    while i < len(groups):
        g = groups[i]
        gs, ge = max(g.start, pos), min(g.end, end)
        j = i + 1
        while j < len(groups) and groups[j].start < ge:
            j += 1
        if gs >= ge:
            i = j
            continue
        out.append(html.escape(text[pos:gs]))
        out.append(_mark(g, _render(text, gs, ge, groups[i + 1:j])))
        pos, i = ge, j
    out.append(html.escape(text[pos:end]))
    return "".join(out)


def _mark(g: _Group, inner: str) -> str:
    labels = list(dict.fromkeys(e.label for e in g.entities))
    negated = any(e.negated for e in g.entities)
    color = COLORS.get(labels[0], DEFAULT_COLOR)
    ids = " ".join(e.id for e in g.entities)
    cls = "ent neg" if negated else "ent"
    tag = " · ".join(labels)
    return (f'<mark class="{cls}" style="--c:{color}" data-ids="{html.escape(ids, quote=True)}" '
            f'data-labels="{html.escape(" ".join(labels), quote=True)}" title="{html.escape(tag, quote=True)}'
            f'{" (negated)" if negated else ""}">{inner}<span class="tag">{html.escape(tag)}</span></mark>')
