"""One run end to end on CPU: training, log-spaced evaluations, the record, and exact resume after SIGKILL."""

import json
import os
import signal
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from scaling import records
from scaling.curves import Curves
from scaling.data.loader import batch_indices
from scaling.errors import ConfigError
from scaling.run import Diverged, Run, eval_steps, run
from scaling.spec import parse_spec

TINY = {
    "model": "w32-l1",
    "samples_seen": 32 * 24,
    "batch_size": 32,
    "data": {"pool_size": 320, "eval_size": 128, "caption_noise": 0.2},
    "eval": {"points": 3},
}


def test_batches_visit_the_pool_once_per_epoch_then_reshuffle():
    spec = parse_spec(TINY)
    epoch = [batch_indices(spec, 320, s) for s in range(10)]
    assert sorted(np.concatenate(epoch)) == list(range(320))
    assert not np.array_equal(batch_indices(spec, 320, 10), epoch[0])


def test_evaluations_are_log_spaced_and_end_at_the_last_step():
    spec = parse_spec({**TINY, "samples_seen": 32 * 1000, "eval": {"points": 4, "first": 0.01}})
    assert eval_steps(spec) == [10, 46, 215, 1000]


def test_a_run_writes_a_complete_record_and_a_tidy_table(tmp_path):
    spec = parse_spec(TINY)
    record = run(spec, tmp_path, progress=False)
    assert record.status == "done" and record.run_id == spec.run_id
    saved = json.loads((tmp_path / "runs" / spec.run_id / "record.json").read_text())
    assert saved["spec"] == spec.model_dump(mode="json")
    assert {"params_total", "params_nonembedding", "flops_fwd_per_sample", "flops_train_per_sample"} <= set(
        saved["model"]
    )
    assert {"packages", "git_commit", "host", "device", "threads"} <= set(saved["env"])
    last = saved["evals"][-1]
    assert last["samples_seen"] == spec.steps * spec.batch_size
    assert last["compute_target"] == pytest.approx(last["samples_seen"] * saved["model"]["flops_train_per_sample"])
    assert set(last["zeroshot_error"]) == {"shape", "colour", "position", "colour_shape"}
    assert all(0 <= e <= 1 for e in last["zeroshot_error"].values())

    table = records.load(tmp_path)
    assert len(table) == len(saved["evals"]) == 3
    for column in [
        "run_id",
        "method",
        "model",
        "samples_seen",
        "compute_target",
        "compute_reference",
        "val_loss",
        "zeroshot_error.colour_shape",
        "retrieval_r1.i2t",
        "data.pool_size",
        "seed",
    ]:
        assert column in table.columns
    assert table["final"].sum() == 1
    again = run(spec, tmp_path, progress=False)  # a done run is not trained again
    assert again.model_dump()["evals"] == saved["evals"] and saved["schema_version"] == records.SCHEMA_VERSION


def test_training_learns_colour_within_a_hundred_steps(tmp_path):
    data = {"pool_size": 4000, "eval_size": 256}
    spec = parse_spec({**TINY, "samples_seen": 64 * 120, "batch_size": 64, "data": data})
    first, *_, last = run(spec, tmp_path, progress=False).evals
    assert last.val_loss < first.val_loss - 0.5
    assert last.zeroshot_error["colour"] < 0.5 < first.zeroshot_error["colour"]  # chance is 7/8


def _start(config: Path, out: Path) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "scaling.train",
        str(config),
        "--out",
        str(out),
        "--no-progress",
        "--checkpoint-every-steps",
        "7",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def _wait_for(path: Path, proc: subprocess.Popen, newer_than: float, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and path.stat().st_mtime > newer_than:
            return
        time.sleep(0.02)


STEERED = {  # DRRho with memory (γ < 1): its u tables must come back from the checkpoint too
    "method": "drrho",
    "loss": {"gamma": 0.5, "gamma_decay_epochs": 1},
    "reference": {"run": {**TINY, "samples_seen": 32 * 8, "data": {**TINY["data"], "seed": 3}}, "mode": "cache"},
}


RESUMED = {
    "clip": {},
    "drrho": STEERED,
    # drrho_distill resumes DRRho's state: KD adds none (its loss reads the reference's cached embeddings)
    # JEST on FastCLIP's u tables, counting trained examples: 90 steps, each selecting 32 of 160 loaded
    "jest": {**STEERED, "method": "jest", "selection": {"base_loss": "fastclip", "samples_seen_counts": "trained"}},
}


@pytest.mark.slow
@pytest.mark.parametrize("method", list(RESUMED))
def test_sigkill_at_any_moment_resumes_to_the_same_result(tmp_path, method):
    spec = parse_spec({**TINY, "samples_seen": 32 * 90, "eval": {"points": 4}, **RESUMED[method]})
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    reference = tmp_path / "uninterrupted"
    assert _start(config, reference).wait(timeout=300) == 0

    killed = tmp_path / "killed"
    run_dir = killed / "runs" / spec.run_id
    kills = 0
    # Kill right after a checkpoint lands, right after a record lands, and a little after either.
    for target, delay in [("checkpoint.pt", 0), ("record.json", 0), ("checkpoint.pt", 0.15), ("record.json", 0.3)]:
        proc = _start(config, killed)
        _wait_for(run_dir / target, proc, newer_than=time.time())
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
    assert kills >= 3
    assert _start(config, killed).wait(timeout=300) == 0

    def metrics(root: Path) -> list[dict]:
        evals = records.read_record(root / "runs" / spec.run_id).evals
        return [e.model_dump(exclude={"wall_s"}) for e in evals]

    assert metrics(killed) == metrics(reference)  # bitwise: floats compared exactly
    a = torch.load(reference / "runs" / spec.run_id / "model.pt", weights_only=True)
    b = torch.load(run_dir / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not list(run_dir.glob(".*tmp"))


@pytest.mark.parametrize("lr", [1e3, 1e2])
def test_a_diverging_run_ends_failed_with_its_step_and_reason(tmp_path, lr):
    spec = parse_spec({**TINY, "optim": {"lr": lr}})
    with pytest.raises(Diverged, match=r"training diverged at step \d+ of 24: the (training|validation) loss is nan"):
        run(spec, tmp_path, progress=False)
    record = records.read_record(records.run_dir(tmp_path, spec.run_id))
    assert record.status == "failed" and record.error.startswith("Diverged: training diverged at step")
    assert all(np.isfinite(e.val_loss) for e in record.evals)  # no NaN ever recorded
    assert records.load(tmp_path, status="done").empty


@pytest.mark.parametrize("lr", [".inf", ".nan", "0", "-1e-3"])
def test_the_learning_rate_must_be_finite_and_positive(lr):
    with pytest.raises(ConfigError, match=r"optim\.lr: Input should be (a finite number|greater than 0)"):
        parse_spec({**TINY, "optim": {"lr": yaml.safe_load(lr)}})


class Crash(Exception):
    """Stands for a kill: the run stops between two steps, leaving its checkpoints behind."""


def crash_at(monkeypatch: pytest.MonkeyPatch, at: int) -> None:
    train_step = Run.train_step

    def crashing(self, step: int, batch) -> float:
        if step == at:
            raise Crash
        return train_step(self, step, batch)

    monkeypatch.setattr(Run, "train_step", crashing)


def flip_byte(path: Path, where: float | str) -> None:
    """Flip the byte at a fraction of the file, or ("tensor") the middle byte of its largest tensor's data: a
    fraction can land in a zip header's alignment padding, which nothing reads."""
    data = bytearray(path.read_bytes())
    if where == "tensor":
        with zipfile.ZipFile(path) as archive:
            member = max(archive.infolist(), key=lambda info: info.file_size)
        header = member.header_offset  # local header: 30 bytes, then the name and extra fields
        start = header + 30 + int.from_bytes(data[header + 26 : header + 28], "little")
        start += int.from_bytes(data[header + 28 : header + 30], "little")
        data[start + member.file_size // 2] ^= 0xFF
    else:
        data[int(len(data) * where)] ^= 0xFF
    path.write_bytes(bytes(data))


def evals_of(out: Path, spec) -> list[dict]:
    return [e.model_dump(exclude={"wall_s"}) for e in records.read_record(records.run_dir(out, spec.run_id)).evals]


@pytest.fixture(scope="module")
def clean_tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    run(parse_spec(TINY), out, progress=False)
    return out


@pytest.mark.parametrize(
    ("damage", "resumes_from"),
    [
        ({"checkpoint.pt": "tensor"}, "checkpoint.prev.pt"),  # a flipped tensor byte: torch.load would not notice
        ({"checkpoint.pt": 0.0, "checkpoint.prev.pt": "tensor"}, None),  # a damaged header, and no intact fallback
    ],
)
def test_a_corrupt_checkpoint_is_detected_and_the_run_resumes_from_the_last_good_state(
    tmp_path, monkeypatch, capsys, clean_tiny, damage, resumes_from
):
    spec = parse_spec(TINY)
    out = tmp_path / "damaged"
    crash_at(monkeypatch, 12)
    with pytest.raises(Crash):
        run(spec, out, checkpoint_every_steps=4, progress=False)
    monkeypatch.undo()
    directory = records.run_dir(out, spec.run_id)
    for name, where in damage.items():
        flip_byte(directory / name, where)
    capsys.readouterr()

    assert run(spec, out, progress=False).status == "done"
    log = capsys.readouterr().err.splitlines()
    assert log[0].startswith(f"corrupt checkpoint {directory / 'checkpoint.pt'}: ")
    assert log[-1] == (
        f"resuming from {directory / resumes_from} (step 5)"
        if resumes_from
        else "no intact checkpoint left: training restarts from step 0"
    )
    assert evals_of(out, spec) == evals_of(clean_tiny, spec)  # the same result, bitwise
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        ["record.json", "model.pt", *(f"{name}.corrupt" for name in damage)]
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_run_started_by_scaling_train_never_stays_running_after_it_died(tmp_path, sig):
    """SIGTERM: the record says failed (interrupted), one line on stderr. SIGKILL leaves no chance to write,
    so the record names its process, and readers (scaling.status) see that it is gone."""
    spec = parse_spec({**TINY, "samples_seen": 32 * 2000})
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    proc = _start(config, tmp_path)
    path = tmp_path / "runs" / spec.run_id / "record.json"
    _wait_for(path, proc, newer_than=0)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    record = records.read_record(path)
    if sig == signal.SIGTERM:
        assert proc.returncode == 130
        assert proc.stderr.read().decode().strip().splitlines() == [
            f"run {spec.run_id} failed: interrupted (SIGTERM); record: {path}"
        ]
        assert record.status == "failed" and record.error.startswith("interrupted (SIGTERM) at step ")
    else:
        assert record.status == "running" and record.owner["pid"] == proc.pid
        assert records.owner_died(record)


def test_tensorboard_curves_hold_the_training_scalars_and_the_evaluations(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    spec = parse_spec({**TINY, "logging": {"tensorboard": True, "every": 4}})
    assert spec.run_id == parse_spec(TINY).run_id  # live curves do not change what a run is
    record = run(spec, tmp_path, progress=False)
    events = EventAccumulator(str(tmp_path / "runs" / spec.run_id / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/scale", "train/samples_per_second", "train/data_time"} <= tags
    assert [e.step for e in events.Scalars("train/loss")] == list(range(4, spec.steps + 1, 4))
    val = events.Scalars("val/val_loss")
    assert [(e.step, e.value) for e in val] == [(p.step, pytest.approx(p.val_loss)) for p in record.evals]
    assert "val/zeroshot_error/colour" in tags


def wandb_records(path: Path) -> list:
    """The protobuf records of an offline run's .wandb file: a ':W&B' header (7 bytes), then LevelDB's log
    format (32 KiB blocks of chunks, each `crc32 <I, length <H, type <B`; type 1 whole, 2-3-4 first-middle-last)."""
    from wandb.proto.wandb_internal_pb2 import Record

    data, pos, pending, records = path.read_bytes(), 7, b"", []
    assert data.startswith(b":W&B")
    while pos + 7 <= len(data):
        if (room := 32768 - pos % 32768) < 7:  # a block's tail too short for a chunk header is padding
            pos += room
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        pending, pos = pending + data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind in (1, 4):
            records.append(Record.FromString(pending))
            pending = b""
    return records


def test_wandb_offline_run_holds_the_training_scalars_and_the_evaluations(tmp_path):
    pytest.importorskip("wandb")
    spec = parse_spec({**TINY, "logging": {"wandb": True, "every": 4}})
    assert spec.run_id == parse_spec(TINY).run_id
    record = run(spec, tmp_path, progress=False)
    (path,) = (tmp_path / "runs" / spec.run_id / "wandb").glob("offline-run-*/run-*.wandb")
    records = wandb_records(path)
    (header,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    config = {item.key: json.loads(item.value_json) for item in header.config.update}
    assert (header.run_id, header.display_name, config["model"]) == (spec.run_id, spec.run_id, spec.model)
    rows = {
        r.history.step.num: {
            item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in r.history.item
        }
        for r in records
        if r.WhichOneof("record_type") == "history"
    }
    assert [step for step, row in rows.items() if "train/loss" in row] == list(range(4, spec.steps + 1, 4))
    assert {"train/lr", "train/scale", "train/samples_per_second", "train/data_time"} <= set(rows[4])
    assert [(p.step, rows[p.step]["val/val_loss"]) for p in record.evals] == [
        (p.step, pytest.approx(p.val_loss)) for p in record.evals
    ]
    assert rows[spec.steps]["val/zeroshot_error/colour"] == pytest.approx(record.evals[-1].zeroshot_error["colour"])


def test_wandb_without_its_package_is_one_error_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # what `import wandb` meets where the extra is not installed
    spec = parse_spec({**TINY, "logging": {"wandb": True}})
    with pytest.raises(ConfigError, match=r"^logging.wandb: .*pip install 'clip-scaling\[wandb\]'$"):
        Curves(spec, tmp_path, main=True)
    Curves(spec, tmp_path, main=False).close()  # other ranks log nothing and need nothing
