"""One error type for bad user input, so every entry point can print one line and exit with code 2."""

from __future__ import annotations

import errno
import os
import select
import signal
import sys
from collections.abc import Callable
from functools import wraps
from typing import TypeVar

import pydantic

EXIT_USAGE = 2
T = TypeVar("T")


class ConfigError(ValueError):
    """Bad input from the user: a spec field, a YAML key, a missing file. Each message names its field; a file
    with several problems gives several messages, printed one line each."""

    def __init__(self, *messages: str):
        super().__init__("\n".join(messages))
        self.messages = messages or ("invalid input",)


def pydantic_message(error: dict) -> str:
    """One pydantic error's message without its 'Value error, ' prefix, with the offending value if scalar."""
    message = error["msg"].removeprefix("Value error, ")
    got = error.get("input")
    if isinstance(got, dict | list) or got is None or error["type"].startswith("missing"):
        return message
    return f"{message} (got {got!r})"


def each_error(err: pydantic.ValidationError) -> list[tuple[tuple, dict]]:
    """(field path, error) of every field in error, the first error of each: a union reports one per member."""
    found: dict[tuple, dict] = {}
    for error in err.errors():
        loc = tuple(p for p in error["loc"] if p != "[key]")
        if not any(other and loc[: len(other)] == other for other in found):
            found.setdefault(loc, error)
    return list(found.items())


def describe_validation_error(err: pydantic.ValidationError, prefix: str = "") -> str:
    """The first pydantic error as one line: 'field.path: message (got value)'."""
    first = err.errors()[0]
    if not first["loc"]:  # a whole-spec check, whose message starts with the field it is about
        return f"{prefix}{pydantic_message(first)}"
    return f"{prefix}{'.'.join(str(p) for p in first['loc'])}: {pydantic_message(first)}"


def error_line(err: BaseException) -> str:
    """The one line a record, `scaling.status` and the CLIs show for a failure; a full disk says so plainly."""
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return f"no space left on device: {err.filename or '(unknown file)'}"
    return f"{type(err).__name__}: {err}".splitlines()[0]


def exits_cleanly(main: Callable[..., T]) -> Callable[..., T]:
    """Decorate a CLI main: ConfigError and validation errors become one line on stderr and exit code 2; a
    reader of stdout that leaves early (`| head`) ends the command quietly, with a shell's SIGPIPE code 141."""

    @wraps(main)
    def wrapper(*args, **kwargs):
        try:
            result = main(*args, **kwargs)
            sys.stdout.flush()  # here, not at exit, where a broken pipe would print "Exception ignored ..."
            return result
        except BrokenPipeError:
            if not stdout_reader_left():
                raise
            raise SystemExit(silence_closed_stdout()) from None
        except ConfigError as err:
            for message in err.messages:
                print(f"error: {message}", file=sys.stderr)
        except pydantic.ValidationError as err:
            print(f"error: {describe_validation_error(err)}", file=sys.stderr)
        except OSError as err:
            if err.errno != errno.ENOSPC:
                raise
            print(f"error: {error_line(err)}", file=sys.stderr)
            raise SystemExit(1) from None
        raise SystemExit(EXIT_USAGE)

    return wrapper


def silence_closed_stdout() -> int:
    """After stdout's reader left (`| head`): point stdout at /dev/null, so that the exit's flush has nothing
    to fail ("Exception ignored ... BrokenPipeError"), and return the shell's SIGPIPE status, 141."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 128 + signal.SIGPIPE


def stdout_reader_left() -> bool:
    """Whether stdout is a pipe whose reading end is closed (so a BrokenPipeError came from it, not elsewhere)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError):  # no file descriptor (a captured stdout)
        return False
