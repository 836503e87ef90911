"""LLM paths of ``clinie augment``: a client for any OpenAI-compatible chat endpoint, the entity-preserving LLM
augmenter (MedInfo 2025: rewrite with entities marked inline, accept only if every entity and relation survives)
and LLM annotation of unannotated notes (JMIR 2025), both through clinie.augment.markup and the validator.

The client has a concurrency limit, retries with exponential backoff (429, 5xx, connection errors), an on-disk
response cache keyed by the request and a JSONL token log (ids, token counts and timings only, never note text).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clinie.augment.markup import (
    can_render,
    check_rewrite,
    parse_annotation,
    render,
    render_relations,
)
from clinie.augment.pieces import Piece, assemble, merge_plain, split_plain_at, to_pieces
from clinie.augment.validate import validate_document
from clinie.augment.vocab import DATA_DIR

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- client


@dataclass(frozen=True)
class LLMConfig:
    url: str  # base URL of the API (http://host:port/v1) or the full chat-completions URL
    model: str
    api_key: str | None = None
    max_concurrency: int = 4
    max_retries: int = 4
    backoff_s: float = 1.0
    timeout_s: float = 300.0
    cache_dir: Path | None = None
    token_log: Path | None = None


class LLMError(RuntimeError):
    pass


@dataclass(frozen=True)
class ChatResult:
    text: str
    key: str
    usage: dict[str, int]
    cached: bool


def request_key(payload: dict[str, Any]) -> str:
    """Cache/replay key of a chat request: model, messages and sampling parameters (not the URL or the key)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


class LLMClient:
    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        url = config.url.rstrip("/")
        self.endpoint = url if url.endswith("/chat/completions") else url + "/chat/completions"
        self._log_lock = threading.Lock()
        self.calls = 0
        self.cache_hits = 0
        self.usage: Counter[str] = Counter()

    def payload(self, messages: list[dict[str, str]], **params: Any) -> dict[str, Any]:
        return {"model": self.config.model, "messages": messages, **{k: v for k, v in params.items() if v is not None}}

    def chat(self, messages: list[dict[str, str]], **params: Any) -> ChatResult:
        payload = self.payload(messages, **params)
        key = request_key(payload)
        cached = self._cache_get(key)
        if cached is not None:
            self.cache_hits += 1
            result = self._result(cached, key, True)
            self._log(key, result.usage, True, 0.0, 0, "ok")
            return result
        started = time.perf_counter()
        response, attempts = self._post(payload, key)
        result = self._result(response, key, False)
        self._cache_put(key, response)
        self._log(key, result.usage, False, time.perf_counter() - started, attempts, "ok")
        return result

    def chat_many(self, requests: list[tuple[list[dict[str, str]], dict[str, Any]]]) -> list[ChatResult | LLMError]:
        """Answers in request order; at most ``max_concurrency`` requests in flight."""

        def one(req: tuple[list[dict[str, str]], dict[str, Any]]) -> ChatResult | LLMError:
            try:
                return self.chat(req[0], **req[1])
            except LLMError as exc:
                return exc

        with ThreadPoolExecutor(max_workers=max(1, self.config.max_concurrency)) as pool:
            return list(pool.map(one, requests))

    def _result(self, response: dict[str, Any], key: str, cached: bool) -> ChatResult:
        try:
            text = response["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise LLMError(f"request {key[:12]}: response has no choices[0].message.content") from None
        usage = {k: int(v) for k, v in (response.get("usage") or {}).items() if isinstance(v, int)}
        if not cached:
            self.usage.update(usage)
        return ChatResult(str(text), key, usage, cached)

    def _post(self, payload: dict[str, Any], key: str) -> tuple[dict[str, Any], int]:
        body = json.dumps(payload).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        last = ""
        for attempt in range(1, self.config.max_retries + 2):
            self.calls += 1
            retry_after: float | None = None
            try:
                req = urllib.request.Request(self.endpoint, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.config.timeout_s) as resp:
                    data: dict[str, Any] = json.loads(resp.read().decode("utf-8"))
                    return data, attempt
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
                if exc.code != 429 and exc.code < 500:
                    self._log(key, {}, False, 0.0, attempt, last)
                    raise LLMError(f"request {key[:12]}: {last}") from None
                header = exc.headers.get("Retry-After") if exc.headers else None
                if header and header.replace(".", "", 1).isdigit():
                    retry_after = min(float(header), 60.0)
            except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as exc:
                last = type(exc).__name__
            if attempt <= self.config.max_retries:
                delay = retry_after if retry_after is not None else self.config.backoff_s * 2 ** (attempt - 1)
                time.sleep(delay * (1 + 0.1 * random.random()))
        self._log(key, {}, False, 0.0, self.config.max_retries + 1, last)
        raise LLMError(f"request {key[:12]}: {last} after {self.config.max_retries + 1} attempts")

    def _cache_path(self, key: str) -> Path | None:
        return self.config.cache_dir / key[:2] / f"{key}.json" if self.config.cache_dir else None

    def _cache_get(self, key: str) -> dict[str, Any] | None:
        path = self._cache_path(key)
        if path is None or not path.exists():
            return None
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return data
        except (OSError, json.JSONDecodeError):
            return None

    def _cache_put(self, key: str, response: dict[str, Any]) -> None:
        path = self._cache_path(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(response, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)

    def _log(self, key: str, usage: dict[str, int], cached: bool, latency: float, attempts: int, status: str) -> None:
        if self.config.token_log is None:
            return
        line = {
            "ts": round(time.time(), 3), "key": key[:16], "model": self.config.model, "cached": cached,
            "prompt_tokens": usage.get("prompt_tokens", 0), "completion_tokens": usage.get("completion_tokens", 0),
            "total_tokens": usage.get("total_tokens", 0), "latency_s": round(latency, 3), "attempts": attempts,
            "status": status,
        }
        with self._log_lock:
            self.config.token_log.parent.mkdir(parents=True, exist_ok=True)
            with open(self.config.token_log, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(line) + "\n")


# ---------------------------------------------------------------- LLM augmenter

REWRITE_SYSTEM = (
    "You paraphrase parts of clinical notes to make new training examples. Medical terms are marked like "
    "[Label|e7 text]. Rewrite the wording around them: change sentence structure, word order and the unmarked "
    "words. Copy every marker exactly, character for character: same label, same handle, same text inside. Do not "
    "add, drop, merge or split markers and do not mark anything new. Keep the line breaks. Answer with the "
    "rewritten text only."
)
REWRITE_RELATIONS = " After the text, copy the RELATIONS block unchanged."


@dataclass
class Unit:
    doc_index: int
    variant: int
    start: int  # piece index range in the document's pieces
    end: int
    messages: list[dict[str, str]]
    params: dict[str, Any]


@dataclass
class LLMStats:
    documents: int = 0
    skipped_documents: int = 0  # nothing to rewrite, or text that reads as markup
    units: int = 0
    accepted_units: int = 0
    produced: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # each reason once per rejected unit
    primary: Counter[str] = field(default_factory=Counter)  # first reason of each rejected unit

    def as_dict(self) -> dict[str, Any]:
        return {
            "documents": self.documents,
            "skipped_documents": self.skipped_documents,
            "units": self.units,
            "accepted_units": self.accepted_units,
            "unit_acceptance": round(self.accepted_units / self.units, 4) if self.units else None,
            "produced_documents": self.produced,
            "rejections_by_reason": dict(self.rejected.most_common()),
            "rejections_by_first_reason": dict(self.primary.most_common()),
        }


def _line_units(pieces: list[Piece]) -> tuple[list[Piece], list[tuple[int, int]]]:
    """Pieces split at line breaks, and the piece ranges of the lines that carry entities."""
    text = "".join(p.text for p in pieces)
    cuts = set()
    pos = 0
    for line in text.split("\n"):
        cuts.add(pos)
        cuts.add(pos + len(line))
        pos += len(line) + 1
    pieces = split_plain_at(pieces, cuts)
    units: list[tuple[int, int]] = []
    start = 0
    for n, p in enumerate(pieces):
        if not p.is_entity and p.text.startswith("\n"):
            if any(q.is_entity for q in pieces[start:n]):
                units.append((start, n))
            start = n + 1
    if any(q.is_entity for q in pieces[start:]):
        units.append((start, len(pieces)))
    return pieces, units


def _unit_relations(doc: dict[str, Any], pieces: list[Piece]) -> list[tuple[int, int]]:
    handles = {p.handle for p in pieces if p.is_entity}
    index = {e["id"]: i for i, e in enumerate(doc.get("entities", []))}
    out = []
    for r in doc.get("relations", []):
        h, t = index.get(r["head"]), index.get(r["tail"])
        if h in handles and t in handles and h is not None and t is not None:
            out.append((h, t))
    return out


def rewrite_messages(doc: dict[str, Any], pieces: list[Piece]) -> list[dict[str, str]]:
    rels = _unit_relations(doc, pieces)
    user = render(pieces)
    if rels:
        user += "\n\n" + render_relations(rels)
    return [
        {"role": "system", "content": REWRITE_SYSTEM + (REWRITE_RELATIONS if rels else "")},
        {"role": "user", "content": user},
    ]


def plan_rewrites(
    docs: list[dict[str, Any]],
    *,
    n: int = 1,
    seed: int = 13,
    unit: str = "paragraph",
    max_units: int | None = None,
    temperature: float = 0.7,
    max_tokens: int | None = None,
    stats: LLMStats | None = None,
) -> tuple[list[list[Piece]], list[Unit]]:
    """The pieces of every document and the rewrite requests (one per unit and variant), deterministic by seed."""
    all_pieces: list[list[Piece]] = []
    units: list[Unit] = []
    for di, doc in enumerate(docs):
        pieces = to_pieces(doc)
        if unit == "paragraph":
            pieces, ranges = _line_units(pieces)
        elif unit == "document":
            ranges = [(0, len(pieces))] if any(p.is_entity for p in pieces) else []
        else:
            raise ValueError(f"unit must be paragraph or document, not {unit!r}")
        all_pieces.append(pieces)
        if not ranges or not can_render(pieces) or validate_document(doc):
            if stats is not None:
                stats.skipped_documents += 1
            continue
        for variant in range(1, n + 1):
            rng = random.Random(f"{seed}:{doc.get('id')}:{variant}")
            chosen = ranges
            if max_units is not None and len(ranges) > max_units:
                chosen = sorted(rng.sample(ranges, max_units))
            for a, b in chosen:
                part = pieces[a:b]
                chars = sum(len(p.text) for p in part)
                budget = max_tokens if max_tokens is not None else max(64, int(chars / 2.5) + 48)
                params = {"temperature": temperature, "max_tokens": budget, "seed": rng.randrange(2**31)}
                units.append(Unit(di, variant, a, b, rewrite_messages(doc, part), params))
    return all_pieces, units


def augment_llm(
    docs: Iterable[dict[str, Any]],
    client: LLMClient,
    *,
    n: int = 1,
    seed: int = 13,
    unit: str = "paragraph",
    max_units: int | None = None,
    allow_entity_changes: bool = False,
    temperature: float = 0.7,
    max_tokens: int | None = None,
    stats: LLMStats | None = None,
) -> Iterator[dict[str, Any]]:
    """LLM-rewritten variants: each unit's answer is checked (clinie.augment.markup.check_rewrite); accepted units
    replace their source, rejected ones keep the source text; a document is written when at least one unit was
    accepted and the whole document passes the validator."""
    docs = list(docs)
    stats = stats if stats is not None else LLMStats()
    stats.documents += len(docs)
    all_pieces, units = plan_rewrites(docs, n=n, seed=seed, unit=unit, max_units=max_units,
                                      temperature=temperature, max_tokens=max_tokens, stats=stats)
    answers = client.chat_many([(u.messages, u.params) for u in units])
    by_variant: dict[tuple[int, int], list[tuple[Unit, ChatResult | LLMError]]] = {}
    for u, a in zip(units, answers, strict=True):
        by_variant.setdefault((u.doc_index, u.variant), []).append((u, a))
    for (di, variant), items in sorted(by_variant.items()):
        doc, pieces = docs[di], all_pieces[di]
        replaced: dict[int, tuple[int, list[Piece]]] = {}  # unit start -> (end, new pieces)
        for u, answer in items:
            stats.units += 1
            if isinstance(answer, LLMError):
                _reject(stats, ["llm_error"])
                continue
            verdict = check_rewrite(doc, pieces[u.start : u.end], answer.text,
                                    allow_entity_changes=allow_entity_changes)
            if not verdict.accepted or verdict.pieces is None:
                _reject(stats, verdict.reasons)
                continue
            trial = {**replaced, u.start: (u.end, verdict.pieces)}
            if validate_document(assemble(doc, _splice(pieces, trial))):
                _reject(stats, ["validator"])
                continue
            replaced = trial
            stats.accepted_units += 1
        if replaced:
            meta = {"augmented_from": doc.get("id"), "methods": ["llm"], "variant": variant,
                    "llm_units": len(replaced)}
            out = assemble(doc, _splice(pieces, replaced), doc_id=f"{doc.get('id')}-llm{variant}", meta=meta)
            stats.produced += 1
            yield out


def _reject(stats: LLMStats, reasons: list[str]) -> None:
    stats.rejected.update(dict.fromkeys(reasons, 1))
    if reasons:
        stats.primary[reasons[0]] += 1


def _splice(pieces: list[Piece], replaced: dict[int, tuple[int, list[Piece]]]) -> list[Piece]:
    out: list[Piece] = []
    n = 0
    while n < len(pieces):
        if n in replaced:
            end, new = replaced[n]
            out.extend(new)
            n = end
        else:
            out.append(pieces[n])
            n += 1
    return merge_plain(out)


# ---------------------------------------------------------------- LLM annotation (JMIR)

ANNOTATE_FORMAT = (
    "\n\nOutput format: repeat the note exactly, character for character, and mark every entity inline as "
    "[Label|eN text] with a new handle eN for each (e1, e2, ...). Labels: Problem, Drug, Dosage, Route, Frequency, "
    "Duration, Reason, ADE. After the note, write a line RELATIONS: and then one line 'eA -> eD' for each relation "
    "from an attribute (Dosage, Route, Frequency, Duration, Reason, ADE) to its Drug. Output nothing else."
)


def default_guidelines() -> str:
    return (DATA_DIR / "annotation_prompt.md").read_text(encoding="utf-8")


def annotate_llm(
    docs: Iterable[dict[str, Any]],
    client: LLMClient,
    *,
    guidelines: str | None = None,
    temperature: float = 0.0,
    max_tokens: int | None = None,
    stats: LLMStats | None = None,
) -> Iterator[dict[str, Any]]:
    """Annotate notes (id and text) with the LLM; an answer is kept only if it reproduces the note exactly, its
    markup and relations parse and the validator passes (``clinie.augment.markup.parse_annotation``)."""
    docs = list(docs)
    stats = stats if stats is not None else LLMStats()
    stats.documents += len(docs)
    system = (guidelines if guidelines is not None else default_guidelines()) + ANNOTATE_FORMAT
    requests = []
    for doc in docs:
        budget = max_tokens if max_tokens is not None else max(128, int(len(doc["text"]) / 2.0) + 256)
        requests.append(([{"role": "system", "content": system}, {"role": "user", "content": doc["text"]}],
                         {"temperature": temperature, "max_tokens": budget}))
    answers = client.chat_many(requests)
    for doc, answer in zip(docs, answers, strict=True):
        stats.units += 1
        if isinstance(answer, LLMError):
            _reject(stats, ["llm_error"])
            continue
        out, reasons, _details = parse_annotation(doc["text"], answer.text)
        if out is None:
            _reject(stats, reasons)
            continue
        stats.accepted_units += 1
        stats.produced += 1
        out["id"] = str(doc.get("id"))
        out["source"] = f"llm:{client.config.model}"
        yield out
