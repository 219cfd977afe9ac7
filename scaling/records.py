"""The record: the one contract between training and analysis, and its tidy table.

A run directory is `<out>/runs/<run_id>/` holding `record.json` (rewritten atomically at every evaluation),
`checkpoint.pt` and `log.txt`. `load()` turns any number of records into one row per (run, evaluation),
with the spec's axes as columns, which is what every analysis function takes.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

RECORD = "record.json"
STATUSES = ("running", "done", "failed")


def write_atomic(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    """`write` into a uniquely named temp file in the same directory, fsync, rename: a reader (or a resumed run)
    sees the old file or the new, never half of one, even with two writers of the same path."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as err:  # name the file: a full disk's error otherwise names none
        Path(tmp).unlink(missing_ok=True)
        if err.filename is None:
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    write_atomic(path, lambda f: f.write(json.dumps(data, indent=1, sort_keys=True).encode()))


def run_dir(out: Path, run_id: str) -> Path:
    return Path(out) / "runs" / run_id


class CorruptRecord(ValueError):
    """A record file that exists but is not a JSON object (truncated, binary, hand-edited): its run is not done."""

    def __init__(self, path: Path, reason: str):
        self.path, self.reason = Path(path), reason
        super().__init__(f"corrupt record {path}: {reason}")


def read_record(path: Path) -> dict | None:
    """A record by file or run directory; None if absent (a run that never evaluated).

    Raises CorruptRecord, naming the file, if it is not UTF-8 JSON holding an object."""
    path = Path(path)
    if path.is_dir():
        path = path / RECORD
    try:
        record = json.loads(path.read_bytes().decode())
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as err:
        raise CorruptRecord(path, f"not UTF-8 ({err.reason} at byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise CorruptRecord(path, f"invalid JSON ({err})") from None
    if not isinstance(record, dict):
        raise CorruptRecord(path, f"expected a JSON object, got {type(record).__name__}")
    return record


def is_done(out: Path, run_id: str) -> bool:
    """Whether the run finished; a corrupt record is not done (the run is redone and rewrites it)."""
    try:
        record = read_record(run_dir(out, run_id))
    except CorruptRecord:
        return False
    return record is not None and record.get("status") == "done"


def process_start(pid: int) -> int | None:
    """A process's start time in clock ticks since boot (Linux), to tell it from a later process with its pid."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def owner() -> dict:
    """Who writes a running record: host, pid and the pid's start time, so a reader can tell it died."""
    return {"host": platform.node(), "pid": os.getpid(), "start": process_start(os.getpid())}


def owner_died(record: dict) -> bool:
    """True when a `running` record's process, on this host, is gone (SIGKILL, out of memory): nothing else
    will ever mark it failed. False when it lives or when it ran on another host (its scheduler knows)."""
    who = record.get("owner") or {}
    if record.get("status") != "running" or who.get("host") != platform.node() or who.get("start") is None:
        return False
    return process_start(who["pid"]) != who["start"]


def find_records(path: Path) -> list[Path]:
    """Every record under a sweep dir, a runs dir, a run dir, or the record file itself."""
    path = Path(path)
    if path.is_file():
        return [path]
    return sorted(path.rglob(RECORD))


def _flatten(prefix: str, value: Any, row: dict) -> None:
    if isinstance(value, dict):
        for key, sub in value.items():
            _flatten(f"{prefix}.{key}" if prefix else key, sub, row)
    else:
        row[prefix] = value


def _spec_columns(spec: dict) -> dict:
    """The spec's axes as plain columns (method, model, samples_seen, data.pool_size, optim.lr, ...)."""
    row: dict = {}
    flat_spec = {k: v for k, v in spec.items() if k not in ("reference", "samples_seen")}
    _flatten("", flat_spec, row)
    row["samples_total"] = spec["samples_seen"]
    row["steered"] = spec.get("reference") is not None
    return row


def record_rows(record: dict) -> list[dict]:
    """One dict per evaluation: run identity, spec axes, model stats, then the evaluation's metrics."""
    base = {"run_id": record["run_id"], "status": record.get("status")}
    base.update(_spec_columns(record["spec"]))
    for key, value in (record.get("model") or {}).items():
        base[f"model.{key}"] = value
    ref = record.get("reference") or {}
    base["reference.name"] = ref.get("name")
    rows = []
    evals = record.get("evals") or []
    for i, ev in enumerate(evals):
        row = dict(base)
        _flatten("", ev, row)
        row["final"] = i == len(evals) - 1 and record.get("status") == "done"
        rows.append(row)
    return rows


def load(path: str | Path, status: str | None = None):
    """All records under `path` as a tidy pandas DataFrame: one row per run × evaluation.

    Columns: run_id, status, steered, final, the spec's axes (method, model, samples_total, batch_size, seed,
    data.*, optim.*, loss.*, eval.*), model.* stats, reference.name, and per evaluation: samples_seen, step,
    compute_target, compute_reference, compute (their sum), wall_s, val_loss, zeroshot_error.<task>,
    retrieval_r1.i2t / .t2i. `status="done"` keeps finished runs only. A corrupt record is skipped with one
    warning line on stderr naming its file.
    """
    import pandas as pd

    rows = []
    for file in find_records(Path(path)):
        try:
            record = read_record(file)
        except CorruptRecord as err:
            print(f"warning: skipped {err}", file=sys.stderr)
            continue
        if record and (status is None or record.get("status") == status):
            rows.extend(record_rows(record))
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["compute"] = frame["compute_target"] + frame["compute_reference"]
    return frame
