"""``clinie`` command line: train, evaluate, predict, export, demo, stack, serve."""

from __future__ import annotations

import json
import logging
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="clinie: clinical notes to structured FHIR.", no_args_is_help=True, add_completion=False)
stack_app = typer.Typer(help="Start/stop the local Kafka (Tansu), tritonserver and PostgreSQL.", no_args_is_help=True)
serve_app = typer.Typer(help="Run a service in the foreground.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(serve_app, name="serve")
experiment_app = typer.Typer(help="Training-data experiments (same model and budget, different mixtures).",
                             no_args_is_help=True)
app.add_typer(experiment_app, name="experiment")

DEFAULT_STACK_DIR = Path(".clinie/stack")


def _default_model_dir() -> Path:
    from clinie.model.repository import default_repository, version_dir

    return version_dir(default_repository())


@app.command()
def train(
    config: Annotated[Path, typer.Option(help="TOML training config (see configs/default.toml).")] = Path(
        "configs/default.toml"),
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
                                max_train_docs=max_train_docs, init_from=init_from)
    result = run_train(cfg, resume=resume)
    typer.echo(json.dumps(result))


@app.command()
def predict(
    input_path: Annotated[Path, typer.Argument(help="JSONL with at least id and text per line.")],
    output_path: Annotated[Path, typer.Argument(help="Interchange JSONL with entities and relations.")],
    model: Annotated[Path | None, typer.Option(help="Model directory (default: latest in model_repo/).")] = None,
    batch_windows: Annotated[int, typer.Option(help="Windows per model call.")] = 32,
) -> None:
    """Annotate notes of any length with the in-process backend."""
    from clinie.backends.torch_backend import TorchBackend
    from clinie.io import iter_documents, write_documents
    from clinie.pipeline import Extractor

    model_dir = model or _default_model_dir()
    backend = TorchBackend.from_dir(model_dir)
    extractor = Extractor(backend, backend.tokenizer, backend.net.config, batch_windows=batch_windows)
    started = time.perf_counter()
    n = write_documents(output_path, extractor.pipe(d.without_annotations() for d in iter_documents(input_path)))
    typer.echo(f"{n} documents annotated with {model_dir} in {time.perf_counter() - started:.1f}s -> {output_path}",
               err=True)


@app.command()
def evaluate(
    gold: Annotated[Path, typer.Argument(help="Gold interchange JSONL.")],
    pred: Annotated[Path | None, typer.Argument(help="Predicted JSONL (default: run the model on GOLD).")] = None,
    model: Annotated[Path | None, typer.Option(help="Model directory when PRED is not given.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the full report as JSON.")] = None,
) -> None:
    """Strict and lenient micro P/R/F1 for entities and relations, per label (n2c2 2018 track 2 style)."""
    from clinie.evaluate import score
    from clinie.io import read_documents

    gold_docs = read_documents(gold)
    if pred is None:
        from clinie.backends.torch_backend import TorchBackend
        from clinie.pipeline import Extractor

        backend = TorchBackend.from_dir(model or _default_model_dir())
        extractor = Extractor(backend, backend.tokenizer, backend.net.config, batch_windows=32)
        pred_docs = list(extractor.pipe(d.without_annotations() for d in gold_docs))
    else:
        pred_docs = read_documents(pred)
    report = score(gold_docs, pred_docs)
    typer.echo(report.to_markdown(f"{gold.name}: {report.documents} documents"))
    if json_out:
        json_out.write_text(json.dumps(report.as_dict(), indent=2))


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
    from clinie.export import export_model
    from clinie.model.repository import default_repository

    out = export_model(model_dir, repository or default_repository(), name, fp16=not fp32)
    typer.echo(str(out))


@app.command()
def demo(
    input_path: Annotated[Path | None, typer.Option("--input", help="DocumentReference NDJSON "
                                                    "(default: the 196 Synthea notes shipped in the package).")] = None,
    export_dir: Annotated[
        Path | None, typer.Option("--export", help="Write <Type>.ndjson of the results here.")
    ] = None,
    database_url: Annotated[str | None, typer.Option(envvar="CLINIE_DATABASE_URL",
                                                     help="Use this PostgreSQL instead of an embedded one.")] = None,
    workdir: Annotated[Path | None, typer.Option(help="Where the stack keeps logs and data (default: a temp dir).")]
    = None,
) -> None:
    """Run the whole job on the local stack; print a JSON summary as the last line."""
    from services.extractor.demo import run_demo
    from services.extractor.logs import configure_logging

    configure_logging("WARNING")
    summary = run_demo(input_path, export_dir, database_url, workdir)
    print(json.dumps(summary), flush=True)


@stack_app.command("up")
def stack_up(
    workdir: Annotated[Path, typer.Option()] = DEFAULT_STACK_DIR,
    database_url: Annotated[str | None, typer.Option(envvar="CLINIE_DATABASE_URL")] = None,
) -> None:
    """Start Kafka, Triton, PostgreSQL and the FHIR API (auth off) in the background; print their CLINIE_* settings."""
    from clinie.model.repository import default_repository
    from clinie.stack.local import stack_up_detached

    state = stack_up_detached(workdir, default_repository(), database_url)
    env = state.get("env", {})
    for k, v in env.items():
        typer.echo(f"export {k}={shlex.quote(v)}")


@stack_app.command("down")
def stack_down(workdir: Annotated[Path, typer.Option()] = DEFAULT_STACK_DIR) -> None:
    """Stop everything `clinie stack up` started."""
    from clinie.stack.local import stack_down as down

    down(workdir)
    typer.echo("stack stopped", err=True)


@stack_app.command("status")
def stack_status(workdir: Annotated[Path, typer.Option()] = DEFAULT_STACK_DIR) -> None:
    from clinie.stack.local import stack_status as status

    state = status(workdir)
    if state is None:
        typer.echo("no stack recorded in " + str(workdir), err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(state, indent=2, default=str))


@serve_app.command("extractor")
def serve_extractor() -> None:
    """The Kafka consumer (settings from CLINIE_* environment variables)."""
    from clinie.settings import ExtractorSettings
    from services.extractor.main import run

    run(ExtractorSettings())


@serve_app.command("api")
def serve_api() -> None:
    """The FHIR search API (settings from CLINIE_* environment variables)."""
    from services.fhir_api.app import run
    from services.fhir_api.settings import ApiSettings

    run(ApiSettings())


def main() -> None:  # pragma: no cover
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
