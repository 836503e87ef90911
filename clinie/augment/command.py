"""``clinie augment``: the command function (registered in services/cli/main.py): reads options, calls the library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer


def augment_command(
    in_path: Annotated[Path, typer.Option("--in", help="Interchange JSONL (annotated; for --method annotate: id and "
                                                       "text are enough).")],
    out: Annotated[Path, typer.Option(help="Interchange JSONL to write (every document passes the validator).")],
    method: Annotated[str, typer.Option(help="offline | llm | annotate")] = "offline",
    n: Annotated[int, typer.Option(help="Variants per document.")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same output).")] = 13,
    augmenters: Annotated[str, typer.Option(help="offline: comma-separated subset of substitute,sig,abbrev,"
                                                 "reorder_lists,reorder_sentences.")] = "",
    llm_url: Annotated[str | None, typer.Option(envvar="CLINIE_LLM_URL",
                                                help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1.")]
    = None,
    llm_model: Annotated[str, typer.Option(envvar="CLINIE_LLM_MODEL")] = "default",
    llm_api_key: Annotated[str | None, typer.Option(envvar="CLINIE_LLM_API_KEY", help="Bearer token, if any.")]
    = None,
    llm_concurrency: Annotated[int, typer.Option(help="Requests in flight at most.")] = 4,
    llm_retries: Annotated[int, typer.Option(help="Retries of a failed request (429/5xx/connection).")] = 4,
    llm_timeout: Annotated[float, typer.Option(help="Seconds per request.")] = 300.0,
    llm_cache: Annotated[Path | None, typer.Option(help="On-disk response cache.")] = Path(".clinie/llm-cache"),
    token_log: Annotated[Path | None, typer.Option(help="JSONL token log (ids and counts only).")]
    = Path(".clinie/llm-tokens.jsonl"),
    unit: Annotated[str, typer.Option(help="llm: rewrite each entity-bearing 'paragraph' (line) or the whole "
                                           "'document' per request.")] = "paragraph",
    max_units: Annotated[int | None, typer.Option(help="llm: rewrite at most this many units per document.")] = None,
    allow_entity_changes: Annotated[bool, typer.Option(help="llm: accept a changed entity text of the same label.")]
    = False,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature (llm 0.7, annotate 0).")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Completion token budget (default: from the input size).")]
    = None,
    guidelines: Annotated[Path | None, typer.Option(help="annotate: guidelines for the prompt (default: packaged "
                                                         "summary).")] = None,
    report: Annotated[Path | None, typer.Option(help="Write the counts (acceptance, rejections by reason) as "
                                                     "JSON.")] = None,
) -> None:
    """Entity-preserving augmentation of annotated notes (offline or with an LLM), or LLM annotation of notes."""
    from clinie.augment.synthesize import summarize, write_jsonl
    from clinie.augment.validate import validate_document

    docs = [json.loads(line) for line in in_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    summary: dict[str, Any] = {"method": method, "input_documents": len(docs), "seed": seed, "n": n}
    if method == "offline":
        from clinie.augment.offline import AUGMENTERS, AugmentStats, augment_offline

        names = [x.strip() for x in augmenters.split(",") if x.strip()] or list(AUGMENTERS)
        stats = AugmentStats()
        outs = list(augment_offline(docs, n=n, seed=seed, methods=names, stats=stats))
        summary.update(stats.as_dict(), augmenters=names)
    elif method in ("llm", "annotate"):
        from clinie.augment.llm import LLMClient, LLMConfig, LLMStats, annotate_llm, augment_llm

        if not llm_url:
            raise typer.BadParameter("--llm-url (or CLINIE_LLM_URL) is required for --method llm/annotate")
        client = LLMClient(LLMConfig(url=llm_url, model=llm_model, api_key=llm_api_key,
                                     max_concurrency=llm_concurrency, max_retries=llm_retries,
                                     timeout_s=llm_timeout, cache_dir=llm_cache, token_log=token_log))
        lstats = LLMStats()
        if method == "llm":
            outs = list(augment_llm(docs, client, n=n, seed=seed, unit=unit, max_units=max_units,
                                    allow_entity_changes=allow_entity_changes,
                                    temperature=0.7 if temperature is None else temperature,
                                    max_tokens=max_tokens, stats=lstats))
        else:
            text = guidelines.read_text(encoding="utf-8") if guidelines else None
            outs = list(annotate_llm(docs, client, guidelines=text,
                                     temperature=0.0 if temperature is None else temperature,
                                     max_tokens=max_tokens, stats=lstats))
        summary.update(lstats.as_dict(), model=llm_model, requests_sent=client.calls, cache_hits=client.cache_hits,
                       tokens=dict(client.usage))
    else:
        raise typer.BadParameter(f"--method must be offline, llm or annotate, not {method!r}")
    invalid = sum(1 for d in outs if validate_document(d))
    if invalid:  # cannot happen: every path validates before it yields; refuse to write rather than ship bad data
        typer.echo(f"{invalid} outputs fail the validator; nothing written", err=True)
        raise typer.Exit(1)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(out, outs)
    summary.update(written=len(outs), validator_pass_rate=1.0 if outs else None, out=str(out),
                   output_counts=summarize(outs) if outs else {})
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    typer.echo(json.dumps(summary, indent=2))
