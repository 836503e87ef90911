"""One-line errors for the command line: ``clinie: error [E301] ...`` on stderr and exit status 1, no traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from clinie.errors import ClinieError, ErrorCode

F = TypeVar("F", bound=Callable[..., Any])


def fail(code: ErrorCode, message: str) -> typer.Exit:
    """Print the one-line error and return the exit to raise."""
    typer.echo(f"clinie: error [{code.value}] {message}", err=True)
    return typer.Exit(1)


def friendly_errors(func: F) -> F:
    """Turn coded errors and settings validation errors into one line on stderr and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pydantic import ValidationError

        from services.stack.process import StackError

        try:
            return func(*args, **kwargs)
        except ClinieError as err:
            raise fail(err.code, err.message) from None
        except StackError as err:  # what failed, and the tail of its log
            raise fail(ErrorCode.STACK_FAILED, str(err)) from None
        except ValidationError as err:  # settings from CLINIE_* variables
            where = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or e.get('ctx', {}).get('field', '')}: {e['msg']}"
                              for e in err.errors(include_url=False, include_input=False)[:3])
            raise fail(ErrorCode.BAD_SETTINGS, f"invalid {err.title}: {where}") from None

    return wrapper  # type: ignore[return-value]
