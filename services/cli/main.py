"""``clinie`` command line: annotate, publish, demo, stack, serve, db, convert, train, evaluate, export.

Errors with a stable code (``clinie.errors``) end a command with one line on stderr, ``clinie: error [E301] ...``,
and exit status 1, never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shlex
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from clinie.errors import ClinieError, ErrorCode
from services.cli.annotate import OutputFormat, run_annotate
from services.cli.convert import convert_app
from services.cli.errors import friendly_errors

CONTEXT = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(help="clinie: clinical notes to structured FHIR.", no_args_is_help=True, add_completion=False,
                  context_settings=CONTEXT, pretty_exceptions_show_locals=False)
stack_app = typer.Typer(help="Start/stop the local Kafka (Tansu), tritonserver and PostgreSQL.", no_args_is_help=True,
                        context_settings=CONTEXT)
serve_app = typer.Typer(help="Run a service in the foreground.", no_args_is_help=True, context_settings=CONTEXT)
db_app = typer.Typer(help="Database schema (Alembic migrations) of an existing PostgreSQL.", no_args_is_help=True,
                     context_settings=CONTEXT)
terminology_app = typer.Typer(help="Terminology index for normalisation (ICD-10-CM, drug ingredients).",
                              no_args_is_help=True, context_settings=CONTEXT)
app.add_typer(stack_app, name="stack")
app.add_typer(serve_app, name="serve")
experiment_app = typer.Typer(help="Training-data experiments (same model and budget, different mixtures).",
                             no_args_is_help=True, context_settings=CONTEXT)
app.add_typer(experiment_app, name="experiment")
app.add_typer(db_app, name="db")
app.add_typer(terminology_app, name="terminology")
app.add_typer(convert_app, name="convert")

def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"clinie {version('clinie')}")
        except PackageNotFoundError:
            typer.echo("clinie (not installed)")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """clinie: clinical notes to structured FHIR."""

DEFAULT_STACK_DIR = Path(".services/stack")


def _default_model_dir() -> Path:
    from clinie.model.repository import default_repository, version_dir

    return version_dir(default_repository())


@app.command()
@friendly_errors
def train(
    config: Annotated[Path, typer.Option(help="TOML training config (see configs/default.toml).")] = Path(
        "configs/default.toml"),
    train_paths: Annotated[list[Path] | None, typer.Option(
        "--train", help="Training corpus (interchange JSONL); repeat for several. Replaces the config's train.")
    ] = None,
    dev_paths: Annotated[list[Path] | None, typer.Option(
        "--dev", help="Dev corpus (interchange JSONL); repeat for several. Replaces the config's dev.")] = None,
    output_dir: Annotated[str | None, typer.Option(help="Override output_dir.")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    epochs: Annotated[int | None, typer.Option()] = None,
    max_train_docs: Annotated[int | None, typer.Option(help="Per file, for smoke runs.")] = None,
    init_from: Annotated[str | None, typer.Option(
        help="Fine-tune from a model directory, e.g. model_repo/clinie_ie/2 (overrides init_from).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from OUTPUT_DIR/last.")] = False,
) -> None:
    """Train a model; the best dev checkpoint lands in OUTPUT_DIR/best, the latest epoch in OUTPUT_DIR/last."""
    from clinie.model.train import TrainConfig
    from clinie.model.train import train as run_train

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = TrainConfig.from_file(config, output_dir=output_dir, seed=seed, epochs=epochs,
                                max_train_docs=max_train_docs, init_from=init_from,
                                train=[str(p) for p in train_paths] if train_paths else None,
                                dev=[str(p) for p in dev_paths] if dev_paths else None)
    cfg.check_paths()
    result = run_train(cfg, resume=resume)
    typer.echo(json.dumps(result))


@app.command()
@friendly_errors
def annotate(
    inputs: Annotated[list[str], typer.Argument(
        help="Notes: .txt files, folders (searched recursively with --glob), quoted globs, '-' for stdin, "
             "interchange JSONL, FHIR DocumentReference NDJSON or Bundles.", show_default=False)],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Where to write (default: stdout). With "
                                                "--format fhir, an existing folder gets one <id>.json per note.")]
    = None,
    fmt: Annotated[OutputFormat, typer.Option("-f", "--format", help="jsonl: interchange JSONL; fhir: one FHIR R4 "
                                              "transaction Bundle per note (what the service stores); html: a "
                                              "self-contained page with highlighted spans and relation arcs.")]
    = OutputFormat.jsonl,
    glob: Annotated[str, typer.Option("--glob", help="Files to take from a folder (recursive with **).")]
    = "**/*.txt",
    patient: Annotated[str | None, typer.Option(help="Patient id for notes given as plain text (FHIR subject).")]
    = None,
    model: Annotated[Path | None, typer.Option(help="Model directory (default: latest in model_repo/).")] = None,
    batch_windows: Annotated[int, typer.Option(help="Windows per model call.")] = 32,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress bar.")] = False,
) -> None:
    """Annotate notes with the in-process model; write interchange JSONL, FHIR Bundles or an HTML page."""
    raise typer.Exit(run_annotate(inputs, output, fmt, pattern=glob, model=model, patient=patient,
                                  batch_windows=batch_windows, quiet=quiet))


@app.command(help="Older name of `clinie annotate IN -o OUT` (kept for scripts).")
@friendly_errors
def predict(
    input_path: Annotated[str, typer.Argument(help="Notes: a .txt file, a folder, '-', JSONL or FHIR NDJSON.")],
    output_path: Annotated[Path, typer.Argument(help="Interchange JSONL with entities and relations.")],
    model: Annotated[Path | None, typer.Option(help="Model directory (default: latest in model_repo/).")] = None,
    batch_windows: Annotated[int, typer.Option(help="Windows per model call.")] = 32,
) -> None:
    raise typer.Exit(run_annotate([input_path], output_path, OutputFormat.jsonl, model=model,
                                  batch_windows=batch_windows))


@app.command()
def evaluate(
    gold: Annotated[Path, typer.Argument(help="Gold interchange JSONL.")],
    pred: Annotated[Path | None, typer.Argument(help="Predicted JSONL (default: run the model on GOLD).")] = None,
    model: Annotated[Path | None, typer.Option(help="Model directory when PRED is not given.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the full report as JSON.")] = None,
    gold_spans: Annotated[bool, typer.Option(
        help="Run only the assertion and normalisation stages on the GOLD entities (isolates the linker).")] = False,
) -> None:
    """Strict and lenient micro P/R/F1 for entities and relations, per label (n2c2 2018 track 2 style), plus
    assertion flags, code and ingredient accuracy on strictly matched entities."""
    from clinie.evaluate import score
    from clinie.io import read_documents

    gold_docs = read_documents(gold)
    if gold_spans:
        from clinie.normalize.context import AssertionTagger
        from clinie.normalize.forms import default_forms
        from clinie.normalize.stage import Normalizer, strip_normalization

        tagger, normalizer = AssertionTagger(negation=True), Normalizer(forms=default_forms())
        pred_docs = [normalizer(tagger(strip_normalization(d))) for d in gold_docs]
    elif pred is None:
        from clinie.backends.torch_backend import TorchBackend
        from clinie.normalize import default_stages
        from clinie.pipeline import Annotator

        backend = TorchBackend.from_dir(model or _default_model_dir())
        extractor = Annotator(backend, backend.tokenizer, backend.net.config, batch_windows=32,
                              stages=default_stages())
        pred_docs = list(extractor.pipe(d.without_annotations() for d in gold_docs))
    else:
        pred_docs = read_documents(pred)
    report = score(gold_docs, pred_docs)
    typer.echo(report.to_markdown(f"{gold.name}: {report.documents} documents"))
    if json_out:
        json_out.write_text(json.dumps(report.as_dict(), indent=2))


@terminology_app.command("build")
def terminology_build(
    out: Annotated[Path, typer.Option(help="Index file to write (gzip JSON).")] = Path("terminology/icd10cm.json.gz"),
    rxnorm: Annotated[Path | None, typer.Option(help="Your licensed RxNorm RXNCONSO.RRF (or its release folder).",
                                                exists=True)] = None,
    snomed: Annotated[Path | None, typer.Option(help="Your licensed SNOMED CT RF2 Snapshot folder.",
                                                exists=True)] = None,
    terminology_out: Annotated[Path, typer.Option(help="RxNorm / SNOMED CT index to write (with --rxnorm/--snomed).")]
    = Path("terminology/licensed.json.gz"),
    dense: Annotated[bool, typer.Option(help="Also embed the ICD-10-CM terms with the packaged MiniLM encoder "
                                             "(dense retrieval; minutes on CPU).")] = False,
    dense_out: Annotated[Path, typer.Option(help="Dense index to write (with --dense).")]
    = Path("terminology/icd10cm-dense-v1.npz"),
    dense_scope: Annotated[str, typer.Option(help="common (visit-note chapters, ~17k terms) or all (~83k terms).")]
    = "common",
    threads: Annotated[int, typer.Option(help="Torch CPU threads for --dense and --forms.")] = 2,
    forms: Annotated[bool, typer.Option(help="Also embed the curated condition forms (nearest-form step; ~20 s on "
                                             "CPU; without the file it is built at start-up).")] = False,
    forms_out: Annotated[Path, typer.Option(help="Curated-form index to write (with --forms).")]
    = Path("terminology/condition-forms-v1.npz"),
) -> None:
    """Build the ICD-10-CM term index offline from the packaged data, and with --rxnorm/--snomed the index of your
    licensed RxNorm / SNOMED CT release files; prints the terminology versions."""
    from clinie.normalize.drugs import dictionary_version
    from clinie.normalize.icd import IcdIndex
    from clinie.normalize.terminology import Terminology, TerminologyFileError
    from clinie.normalize.unii import version as unii_version

    if dense and dense_scope not in ("common", "all"):
        raise typer.BadParameter("--dense-scope is common or all")
    out.parent.mkdir(parents=True, exist_ok=True)
    index = IcdIndex.build()
    index.save(out)
    report: dict[str, object] = {"index": str(out), "icd-10-cm": index.version, "drugs": dictionary_version(),
                                 "unii": unii_version(), "terms": sum(len(t) for t in index.tiers)}
    if rxnorm is not None or snomed is not None:
        try:
            licensed = Terminology.from_release_files(rxnorm, snomed)
        except TerminologyFileError as exc:
            raise typer.BadParameter(str(exc)) from exc
        terminology_out.parent.mkdir(parents=True, exist_ok=True)
        licensed.save(terminology_out)
        report["terminology_index"] = str(terminology_out)
        report["licensed"] = {i.system: {"version": i.version, "codes": len(i.displays), "terms": len(i.terms)}
                              for i in (licensed.rxnorm, licensed.snomed) if i is not None}
    if dense:
        from clinie.normalize.dense import DenseIndex

        dense_index = DenseIndex.build("common" if dense_scope == "common" else "all", threads=threads)
        dense_index.save(dense_out)
        report["dense_index"] = str(dense_out)
        report["dense"] = dense_index.meta
    if forms:
        from clinie.normalize.forms import FormIndex

        form_index = FormIndex.build(threads=threads)
        form_index.save(forms_out)
        report["forms_index"] = str(forms_out)
        report["forms"] = form_index.meta
    typer.echo(json.dumps(report))


@app.command()
def synthesize(
    n: Annotated[int, typer.Option(help="Number of notes.")] = 400,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same notes).")] = 7,
    out: Annotated[Path, typer.Option(help="Interchange JSONL to write.")] = Path("synth.jsonl"),
) -> None:
    """Synthetic clinical notes with exact gold annotations (needs the `augment` extra); prints label counts."""
    from clinie.augment.synthesize import summarize, write_jsonl
    from clinie.augment.synthesize import synthesize as run_synthesize

    docs = list(run_synthesize(n, seed))
    write_jsonl(out, docs)
    typer.echo(json.dumps(summarize(docs), indent=2))


@experiment_app.command("augmentation")
def experiment_augmentation(
    config: Annotated[Path, typer.Option(help="Experiment TOML.")] = Path("configs/experiments/augmentation.toml"),
    only: Annotated[list[str] | None, typer.Option(help="Run only these variants (repeatable).")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write the result tables here.")] = None,
) -> None:
    """Train every variant x seed (finished ones are reused, interrupted ones resume), score on the held-out sets."""
    from clinie.model.experiment import ExperimentConfig, results_markdown, run_experiment

    cfg = ExperimentConfig.from_file(config)
    tables = results_markdown(run_experiment(cfg, only))
    if markdown:
        markdown.write_text(tables)
    typer.echo(tables)


from clinie.augment.command import augment_command  # noqa: E402 - one command, its options live with the module

app.command("augment")(augment_command)


@app.command("export")
def export_cmd(
    model_dir: Annotated[Path, typer.Argument(help="A trained model directory (e.g. runs/default/best).")],
    repository: Annotated[Path | None, typer.Option(help="Triton model repository (default: model_repo/).")] = None,
    name: Annotated[str, typer.Option(help="Model name in the repository.")] = "clinie_ie",
    fp32: Annotated[bool, typer.Option(help="Keep fp32 weights (default: fp16).")] = False,
) -> None:
    """Write MODEL_DIR as the next numbered version of a Triton model repository."""
    from clinie.model.repository import default_repository
    from clinie.serving.model_export import export_model

    out = export_model(model_dir, repository or default_repository(), name, fp16=not fp32)
    typer.echo(str(out))


@app.command()
@friendly_errors
def demo(
    input_path: Annotated[Path | None, typer.Option("--input", help="DocumentReference NDJSON, .txt notes or a "
                                                    "folder (default: the 196 Synthea notes shipped in the "
                                                    "package).")] = None,
    export_dir: Annotated[
        Path | None, typer.Option("--export", help="Write <Type>.ndjson of the results here.")
    ] = None,
    database_url: Annotated[str | None, typer.Option(envvar="CLINIE_DATABASE_URL",
                                                     help="Use this PostgreSQL instead of an embedded one.")] = None,
    workdir: Annotated[Path | None, typer.Option(help="Where the stack keeps logs and data (default: a temp dir).")]
    = None,
    allow_dead_letters: Annotated[bool, typer.Option(
        help="Exit 0 even when notes were dead-lettered (their reasons are still printed).")] = False,
    patient: Annotated[str | None, typer.Option(help="Patient id for notes given as plain text.")] = None,
) -> None:
    """Run the whole job on the local stack; print a JSON summary as the last line.

    Exits 1 when any note was dead-lettered (each reason is printed on stderr), unless --allow-dead-letters.
    SIGTERM stops everything it started, as Ctrl-C does."""
    from services.extractor.demo import run_demo
    from services.extractor.logs import configure_logging

    configure_logging("WARNING")
    source = _demo_input(input_path, patient)
    with _terminate_as_interrupt():
        summary = run_demo(source, export_dir, database_url, workdir)
    for d in summary.get("dead_letters", []):
        typer.echo(f"clinie: dead-lettered (offset {d.get('source_offset')}) [{d.get('code')}] {d.get('message')}",
                   err=True)
    print(json.dumps(summary), flush=True)
    if summary.get("dead_lettered") and not allow_dead_letters:
        typer.echo(f"clinie: {summary['dead_lettered']} note(s) dead-lettered (reasons above)", err=True)
        raise typer.Exit(1)


def _demo_input(input_path: Path | None, patient: str | None) -> Path | None:
    """NDJSON is used as it is; plain-text notes (a .txt file or a folder) are wrapped into DocumentReferences."""
    if input_path is None:
        return None
    if input_path.is_file() and input_path.suffix.lower() in (".ndjson", ".jsonl", ".json"):
        return input_path
    import tempfile

    from clinie.annotate.sources import RecordError
    from services.cli.ops import messages

    lines = []
    for m in messages([str(input_path)], "**/*.txt", patient):
        if isinstance(m, RecordError):
            raise ClinieError(m.error.code, str(m))
        lines.append(m.value)
    tmp = Path(tempfile.mkdtemp(prefix="clinie-demo-input-")) / "notes.ndjson"
    tmp.write_bytes(b"\n".join(lines) + b"\n")
    return tmp


class _Terminated(KeyboardInterrupt):
    """SIGTERM, delivered like Ctrl-C so the same clean-up runs (context managers stop what was started)."""


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    def on_term(signum: int, frame: object) -> None:
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    except _Terminated:
        typer.echo("clinie: terminated (SIGTERM); everything started was stopped", err=True)
        raise typer.Exit(128 + signal.SIGTERM) from None
    except KeyboardInterrupt:
        typer.echo("clinie: interrupted; everything started was stopped", err=True)
        raise typer.Exit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


@stack_app.command("up")
@friendly_errors
def stack_up(
    workdir: Annotated[Path, typer.Option(help="Where the stack keeps logs, data and stack.json.")]
    = DEFAULT_STACK_DIR,
    database_url: Annotated[str | None, typer.Option(envvar="CLINIE_DATABASE_URL",
                                                     help="Use this PostgreSQL instead of an embedded one.")] = None,
) -> None:
    """Start Kafka, Triton, PostgreSQL and the FHIR API (auth off) in the background; print their CLINIE_* settings.

    Creates the input and dead-letter topics. Run the extractor against it with
    `eval "$(clinie stack up)"; clinie serve extractor` (see docs/operations.md)."""
    from clinie.model.repository import default_repository
    from services.settings import ExtractorSettings
    from services.stack.kafka import create_topics
    from services.stack.local import stack_up_detached

    with _terminate_as_interrupt():
        state = stack_up_detached(workdir, default_repository(), database_url)
    env = state.get("env", {})
    defaults = ExtractorSettings(_env_file=None)  # type: ignore[call-arg]
    create_topics(env["CLINIE_KAFKA_BOOTSTRAP_SERVERS"], [defaults.input_topic, defaults.dead_letter_topic])
    for k, v in env.items():
        typer.echo(f"export {k}={shlex.quote(v)}")
    typer.echo("export CLINIE_BACKEND=triton")


@stack_app.command("down")
def stack_down(workdir: Annotated[Path, typer.Option()] = DEFAULT_STACK_DIR) -> None:
    """Stop everything `clinie stack up` started."""
    from services.stack.local import stack_down as down

    down(workdir)
    typer.echo("stack stopped", err=True)


@stack_app.command("status")
def stack_status(workdir: Annotated[Path, typer.Option()] = DEFAULT_STACK_DIR) -> None:
    from services.stack.local import stack_status as status

    state = status(workdir)
    if state is None:
        typer.echo("no stack recorded in " + str(workdir), err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(state, indent=2, default=str))


@serve_app.command("extractor")
@friendly_errors
def serve_extractor() -> None:
    """The Kafka consumer (settings from CLINIE_* environment variables)."""
    from services.extractor.main import run
    from services.settings import ExtractorSettings

    run(ExtractorSettings())


@serve_app.command("api")
@friendly_errors
def serve_api() -> None:
    """The FHIR search API (settings from CLINIE_* environment variables)."""
    from services.fhir_api.app import run
    from services.settings import ApiSettings

    run(ApiSettings())


def _db_url(url: str | None) -> str:
    if url:
        return url
    from services.settings import ExtractorSettings

    return ExtractorSettings().database_dsn


DbUrl = Annotated[str | None, typer.Option("--database-url", envvar="CLINIE_DATABASE_URL", show_default=False,
                                           help="SQLAlchemy/libpq URL (default: CLINIE_DATABASE_URL).")]


@db_app.command("upgrade")
@friendly_errors
def db_upgrade(
    database_url: DbUrl = None,
    revision: Annotated[str, typer.Option(help="Target migration.")] = "head",
) -> None:
    """Create or upgrade clinie's tables (alembic upgrade); safe to run again, and from several hosts at once."""
    from services.cli.ops import upgrade

    before, after = upgrade(_db_url(database_url), revision)
    typer.echo(f"database schema: {before or '(empty)'} -> {after}" if before != after
               else f"database schema already at {after}")


@db_app.command("current")
@friendly_errors
def db_current(database_url: DbUrl = None) -> None:
    """Print the database's migration and whether it is the newest; exit 1 when `clinie db upgrade` is needed."""
    from services.cli.ops import current_revision, head_revision

    current, head = current_revision(_db_url(database_url)), head_revision()
    typer.echo(f"{current or '(none)'}{' (head)' if current == head else f' (head is {head})'}")
    if current != head:
        typer.echo("clinie: run `clinie db upgrade`", err=True)
        raise typer.Exit(1)


@app.command()
@friendly_errors
def publish(
    inputs: Annotated[list[str], typer.Argument(
        help="DocumentReference NDJSON/JSON/Bundles (sent as they are), or .txt notes, folders, '-' (wrapped into "
             "DocumentReferences).", show_default=False)],
    patient: Annotated[str | None, typer.Option(help="Patient id for notes given as plain text (subject).")] = None,
    encounter: Annotated[str | None, typer.Option(help="Encounter id for notes given as plain text.")] = None,
    topic: Annotated[str | None, typer.Option(help="Topic (default: CLINIE_INPUT_TOPIC).")] = None,
    bootstrap_servers: Annotated[str | None, typer.Option(
        help="Kafka bootstrap servers (default: CLINIE_KAFKA_BOOTSTRAP_SERVERS).")] = None,
    glob: Annotated[str, typer.Option("--glob", help="Files to take from a folder.")] = "**/*.txt",
) -> None:
    """Send notes to the extractor's Kafka topic (security from the CLINIE_KAFKA_* settings).

    Every DocumentReference is checked as the service checks it first; one that would be dead-lettered is
    reported and not sent (exit 1)."""
    import asyncio

    from clinie.annotate.sources import RecordError
    from services.cli.ops import Message, messages, send
    from services.settings import ExtractorSettings

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # its connection errors become one coded line below
    overrides: dict[str, str] = {}
    if bootstrap_servers:
        overrides["kafka_bootstrap_servers"] = bootstrap_servers
    settings = ExtractorSettings(**overrides)  # type: ignore[arg-type]
    batch: list[Message] = []
    errors = 0
    for m in messages(inputs, glob, patient, encounter):
        if isinstance(m, RecordError):
            typer.echo(f"clinie: not sent {m}", err=True)
            errors += 1
        else:
            batch.append(m)
    if not batch:
        raise ClinieError(ErrorCode.NO_INPUT, "nothing to send")
    if any(not (m.value.find(b'"subject"') + 1) for m in batch) and patient is None:
        typer.echo("clinie: note: notes without a patient are stored with an unknown subject (use --patient)",
                   err=True)
    target = topic or settings.input_topic
    sent = asyncio.run(send(settings, target, batch))
    typer.echo(f"clinie: sent {sent} DocumentReference(s) to {target} at {settings.kafka_bootstrap_servers}: "
               + ", ".join(m.key.decode() for m in batch[:10]) + (" ..." if len(batch) > 10 else ""), err=True)
    if errors:
        raise typer.Exit(1)


def main() -> None:  # pragma: no cover
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
