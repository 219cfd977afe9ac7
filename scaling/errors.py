"""One error type for bad user input, so every entry point can print one line and exit with code 2."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import TypeVar

import pydantic

EXIT_USAGE = 2
T = TypeVar("T")


class ConfigError(ValueError):
    """Bad input from the user: a spec field, a YAML key, a missing file. The message names the field."""


def pydantic_message(error: dict) -> str:
    """One pydantic error's message without its 'Value error, ' prefix, with the offending value if scalar."""
    message = error["msg"].removeprefix("Value error, ")
    got = error.get("input")
    if isinstance(got, dict | list) or got is None or error["type"].startswith("missing"):
        return message
    return f"{message} (got {got!r})"


def describe_validation_error(err: pydantic.ValidationError, prefix: str = "") -> str:
    """The first pydantic error as one line: 'field.path: message (got value)'."""
    first = err.errors()[0]
    if not first["loc"]:  # a whole-spec check, whose message starts with the field it is about
        return f"{prefix}{pydantic_message(first)}"
    return f"{prefix}{'.'.join(str(p) for p in first['loc'])}: {pydantic_message(first)}"


def exits_cleanly(main: Callable[..., T]) -> Callable[..., T]:
    """Decorate a CLI main: ConfigError and validation errors become one line on stderr and exit code 2."""

    @wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except ConfigError as err:
            print(f"error: {err}", file=sys.stderr)
        except pydantic.ValidationError as err:
            print(f"error: {describe_validation_error(err)}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)

    return wrapper
