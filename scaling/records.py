"""The record: the one contract between training and analysis, and its tidy table.

A run directory is `<out>/runs/<run_id>/` holding `record.json` (rewritten atomically at every evaluation),
`checkpoint.pt` and `log.txt`. `Record` is its schema (with `Evaluation` per evaluation and `ReferenceInfo`
for a steered run's reference): the run and the job that marks a crashed run failed write it, status, the
reference loader and analysis read it. `load()` turns any number of records into one row per (run,
evaluation), with the spec's axes as columns, which is what every analysis function takes.

Schema versions: 1 adds `schema_version` and the reference's `run_id`. A record without a version (0, e.g.
the committed results/cpu_study) still loads: its in-sweep reference's run id is read from the reference's
name, `run:<id> (<arch>)`, which version 0 wrote and nothing parses any more.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from scaling.errors import ConfigError, describe_validation_error
from scaling.io import write_json_atomic

RECORD = "record.json"
STATUSES = ("running", "done", "failed")
SCHEMA_VERSION = 1
_V0_REFERENCE_RUN = re.compile(r"^run:(?P<id>\w+) \(")


class Evaluation(BaseModel):
    """One evaluation of a run: where it was taken (step, samples, compute) and its metrics. Metrics beyond
    these (a new task, a new retrieval direction) are kept as they are."""

    model_config = ConfigDict(extra="allow")

    step: int
    samples_seen: int
    compute_target: float
    compute_reference: float
    epoch: float | None = None
    wall_s: float | None = None
    logit_scale: float | None = None
    val_loss: float | None = None
    zeroshot_error: dict[str, float] = {}
    retrieval_r1: dict[str, float] = {}


class ReferenceInfo(BaseModel):
    """What a steered run's record says about its reference: `run_id` is the in-sweep run that trained it
    (None for a checkpoint file or pretrained weights); `name` is for people."""

    model_config = ConfigDict(extra="forbid")

    name: str
    run_id: str | None = None
    arch: str | None = None
    checksum: str | None = None
    params_total: int | None = None
    flops_fwd_per_sample: float | None = None
    mode: str | None = None
    cache: str | None = None
    metrics: dict[str, Any] = {}


class Record(BaseModel):
    """A run's record.json. `spec` is the RunSpec as JSON (kept untyped here, so records of older specs
    load); `model` holds the model's parameter and FLOP counts. Keys beyond the schema (a note added by
    hand) are kept, not taken for corruption: a finished run is never retrained for them."""

    model_config = ConfigDict(extra="allow")

    schema_version: int = SCHEMA_VERSION
    run_id: str
    spec: dict[str, Any]
    status: Literal["running", "done", "failed"]
    error: str | None = None
    owner: dict[str, Any] | None = None  # host, pid and start of a running record's process (owner_died)
    weights: dict[str, str] | None = None  # {"file": "model.pt", "sha256": ...} once a run is done
    model: dict[str, Any] = {}
    reference: ReferenceInfo | None = None
    wsd: dict[str, Any] | None = None  # a WSD trunk or branch: role, trunk id, fork step (scaling.schedule)
    evals: list[Evaluation] = []
    env: dict[str, Any] = {}
    throughput: dict[str, Any] = {}

    @property
    def done(self) -> bool:
        return self.status == "done"

    def write(self, directory: Path) -> None:
        """Write as `<directory>/record.json`, atomically (sorted keys, so reruns diff cleanly)."""
        write_json_atomic(Path(directory) / RECORD, self.model_dump(mode="python"))


def _upgrade(data: dict) -> dict:
    """A record as the current schema expects it: version 0 named an in-sweep reference only in its name."""
    if "schema_version" in data:
        return data
    ref = data.get("reference")
    if isinstance(ref, dict) and "run_id" not in ref:
        match = _V0_REFERENCE_RUN.match(str(ref.get("name", "")))
        ref = {**ref, "run_id": match["id"] if match else None}
    return {**data, "schema_version": 0, "reference": ref}


def run_dir(out: Path, run_id: str) -> Path:
    return Path(out) / "runs" / run_id


class CorruptRecord(ValueError):
    """A record file that exists but is not a JSON object (truncated, binary, hand-edited): its run is not done."""

    def __init__(self, path: Path, reason: str):
        self.path, self.reason = Path(path), reason
        super().__init__(f"corrupt record {path}: {reason}")


class NewerRecord(ConfigError):
    """A record of a later schema than this code knows: an error to act on (upgrade), never a run to redo."""


def read_record(path: Path) -> Record | None:
    """A record by file or run directory; None if absent (a run that never evaluated).

    Raises CorruptRecord, naming the file, if it is not UTF-8 JSON holding an object of the record's schema."""
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
    version = record.get("schema_version", 0)
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise NewerRecord(
            f"{path}: written by a newer clip-scaling (record schema {version} > {SCHEMA_VERSION}); upgrade to read it"
        )
    try:
        return Record.model_validate(_upgrade(record))
    except ValidationError as err:
        raise CorruptRecord(path, f"not a record: {describe_validation_error(err)}") from None


def is_done(out: Path, run_id: str) -> bool:
    """Whether the run finished; a corrupt record is not done (the run is redone and rewrites it)."""
    try:
        record = read_record(run_dir(out, run_id))
    except CorruptRecord:
        return False
    return record is not None and record.done


def process_start(pid: int) -> int | None:
    """A process's start time in clock ticks since boot (Linux), to tell it from a later process with its pid."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def owner() -> dict:
    """Who writes a running record: host, pid and the pid's start time, so a reader can tell it died."""
    return {"host": platform.node(), "pid": os.getpid(), "start": process_start(os.getpid())}


def owner_died(record: Record) -> bool:
    """True when a `running` record's process, on this host, is gone (SIGKILL, out of memory): nothing else
    will ever mark it failed. False when it lives or when it ran on another host (its scheduler knows)."""
    who = record.owner or {}
    if record.status != "running" or who.get("host") != platform.node() or who.get("start") is None:
        return False
    return process_start(who["pid"]) != who["start"]


def find_records(path: Path) -> list[Path]:
    """Every record under a sweep dir, a runs dir, a run dir, or the record file itself."""
    path = Path(path)
    if path.is_file():
        return [path]
    return sorted(path.rglob(RECORD))


def flatten(prefix: str, value: Any, row: dict) -> None:
    """Nested mappings as dotted keys of `row` (`zeroshot_error.shape`): how records become columns."""
    if isinstance(value, dict):
        for key, sub in value.items():
            flatten(f"{prefix}.{key}" if prefix else key, sub, row)
    else:
        row[prefix] = value


def spec_columns(spec: dict) -> dict:
    """The spec's axes as plain columns (method, model, samples_seen, data.pool_size, optim.lr, ...)."""
    row: dict = {}
    flat_spec = {k: v for k, v in spec.items() if k not in ("reference", "samples_seen", "wsd")}
    flatten("", flat_spec, row)
    row["samples_total"] = spec["samples_seen"]
    row["steered"] = spec.get("reference") is not None
    return row


def record_rows(record: Record) -> list[dict]:
    """One dict per evaluation: run identity, spec axes, model stats, then the evaluation's metrics."""
    base = {"run_id": record.run_id, "status": record.status}
    base.update(spec_columns(record.spec))
    for key, value in record.model.items():
        base[f"model.{key}"] = value
    base["reference.name"] = record.reference.name if record.reference else None
    base["reference.run_id"] = record.reference.run_id if record.reference else None
    flatten("wsd", record.wsd or {}, base)
    rows = []
    for i, ev in enumerate(record.evals):
        row = dict(base)
        flatten("", ev.model_dump(), row)
        row["final"] = i == len(record.evals) - 1 and record.done
        rows.append(row)
    return rows


def load(path: str | Path, status: str | None = None):
    """All records under `path` as a tidy pandas DataFrame: one row per run × evaluation.

    Columns: run_id, status, steered, final, the spec's axes (method, model, samples_total, batch_size, seed,
    data.*, optim.*, loss.*, eval.*), model.* stats, reference.name, reference.run_id, and per evaluation:
    samples_seen, step, compute_target, compute_reference, compute (their sum), wall_s, val_loss, zeroshot_error.<task>,
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
        if record and (status is None or record.status == status):
            rows.extend(record_rows(record))
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["compute"] = frame["compute_target"] + frame["compute_reference"]
    return frame
