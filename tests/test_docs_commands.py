"""Every `clinie ...` (also `.venv/bin/clinie`) and `make ...` in a code block of README.md or docs/ parses.

Each command is resolved with click's ``make_context`` (the parser typer builds on), without running it: every
subcommand must exist, every option must be accepted, choices must be valid and no extra argument may be left
over. Paths are not checked (no command
option requires an existing path at parse time). `make` targets must be defined in the Makefile.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer

try:  # typer >= 0.26 carries its own copy of click
    from typer._click.exceptions import BadParameter, UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import BadParameter, UsageError  # type: ignore[assignment]

from services.cli.main import app

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
SEPARATORS = {";", "&&", "||", "|", "&", "(", ")"}
_SUBSHELL = re.compile(r"\$\(([^()]*)\)")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class Shown:
    where: str  # file:line
    argv: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.where}: {shlex.join(self.argv)}"


def _code_lines(path: Path) -> list[tuple[int, str]]:
    """Lines of fenced code blocks (``` or ~~~), continuation lines (ending in a backslash) joined."""
    out: list[tuple[int, str]] = []
    fence: str | None = None
    pending: tuple[int, str] | None = None
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if fence is None:
            if stripped.startswith(("```", "~~~")):
                fence = stripped[:3]
            continue
        if stripped.startswith(fence):
            fence = None
            continue
        pending = (pending[0], pending[1] + " " + stripped) if pending is not None else (lineno, stripped)
        if pending[1].endswith("\\"):
            pending = (pending[0], pending[1][:-1])
            continue
        out.append(pending)
        pending = None
    return out


def _commands(text: str) -> list[list[str]]:
    """The simple commands of one shell line (split at ; && || | & and subshells), comments removed."""
    found: list[list[str]] = []
    for inner in _SUBSHELL.findall(text):
        found.extend(_commands(inner))
    text = _SUBSHELL.sub("X", text.removeprefix("$ "))
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    current: list[str] = []
    try:
        tokens = list(lexer)
    except ValueError:  # not shell (a TOML or JSON line in a code block)
        return found
    for tok in tokens:
        if tok in SEPARATORS:
            if current:
                found.append(current)
            current = []
        else:
            current.append(tok)
    if current:
        found.append(current)
    return found


def shown_commands() -> list[Shown]:
    shown = []
    for path in DOCS:
        for lineno, line in _code_lines(path):
            for argv in _commands(line):
                while argv and _ENV.match(argv[0]):  # CLINIE_X=1 clinie ...
                    argv = argv[1:]
                if argv and (argv[0] in ("clinie", "make") or argv[0].endswith("/bin/clinie")):
                    shown.append(Shown(f"{path.relative_to(REPO)}:{lineno}", ("clinie", *argv[1:])
                                       if argv[0] != "make" else tuple(argv)))
    return shown


def resolve_clinie(argv: list[str]) -> str:
    """Parse ``clinie ARGS`` down to the leaf command; returns its path, raises UsageError when wrong."""
    cmd: Any = typer.main.get_command(app)
    path = ["clinie"]
    args = list(argv)
    parent = None
    while True:
        try:
            ctx = cmd.make_context(path[-1], list(args), parent=parent)  # a parent passes -h on
        except typer.Exit:  # --help / --version: the command exists
            return " ".join(path)
        if hasattr(cmd, "get_command"):  # a group
            rest = [*ctx._protected_args, *ctx.args] if hasattr(ctx, "_protected_args") else [
                *ctx.protected_args, *ctx.args]
            if not rest:
                return " ".join(path)
            sub = cmd.get_command(ctx, rest[0])
            if sub is None:
                raise UsageError(f"no command {rest[0]!r} in {' '.join(path)}")
            cmd, args, parent = sub, rest[1:], ctx
            path.append(rest[0])
            continue
        if ctx.args:
            raise UsageError(f"extra arguments {ctx.args}")
        return " ".join(path)


def make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    return {m.group(1) for m in re.finditer(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, re.MULTILINE)}


SHOWN = shown_commands()


def test_the_docs_show_commands() -> None:
    assert sum(s.argv[0] == "clinie" for s in SHOWN) >= 20
    assert any(s.argv[:2] == ("make", "demo") for s in SHOWN)


@pytest.mark.parametrize("shown", SHOWN, ids=str)
def test_command_parses(shown: Shown) -> None:
    if shown.argv[0] == "make":
        targets = [a for a in shown.argv[1:] if not a.startswith("-") and "=" not in a]
        missing = sorted(set(targets) - make_targets())
        assert not missing, f"{shown}: no Makefile target {missing}"
        return
    try:
        resolve_clinie(list(shown.argv[1:]))
    except UsageError as err:
        missing = re.search(r"'(/[^']*)' does not exist", err.format_message())
        if isinstance(err, BadParameter) and missing and not Path(missing.group(1)).is_relative_to(REPO):
            return  # an absolute path of the reader's own (their licensed files): the command and options parse
        pytest.fail(f"{shown}: {err.format_message()}")


@pytest.mark.parametrize(("argv", "ok"), [
    ("clinie annotate note.txt -f html -o note.html", True),
    ("clinie convert brat folder --label-map m.toml", True),
    ("clinie --version", True),
    ("clinie convert to-conll -h", True),
    ("clinie train --train a.jsonl --train b.jsonl --dev c.jsonl", True),
    ("clinie convert brat folder --no-such-option", False),
    ("clinie annotate note.txt -f pdf", False),
    ("clinie stack upp", False),
    ("clinie evaluate gold.jsonl pred.jsonl extra.jsonl", False),
])
def test_the_checker_catches_wrong_commands(argv: str, ok: bool) -> None:
    if ok:
        resolve_clinie(shlex.split(argv)[1:])
    else:
        with pytest.raises(UsageError):
            resolve_clinie(shlex.split(argv)[1:])
