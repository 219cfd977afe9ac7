"""Records load into one tidy row per run × evaluation; a corrupt record is named and not done."""

import pytest

from scaling import records
from scaling.io import write_json_atomic


def _record(run_id: str, method: str, status: str = "done") -> dict:
    evals = [
        {
            "step": s,
            "samples_seen": 100 * s,
            "compute_target": 1e9 * s,
            "compute_reference": 5e8,
            "wall_s": s,
            "val_loss": 3.0 / s,
            "zeroshot_error": {"shape": 0.5 / s},
            "retrieval_r1": {"i2t": 0.1 * s},
        }
        for s in (1, 2)
    ]
    spec = {
        "method": method,
        "model": "w32-l1",
        "samples_seen": 200,
        "seed": 0,
        "data": {"pool_size": 1000},
        "reference": None,
    }
    return {"run_id": run_id, "spec": spec, "status": status, "model": {"params_total": 10}, "evals": evals}


def test_load_flattens_to_one_row_per_evaluation(tmp_path):
    for run_id, method, status in [("a", "clip", "done"), ("b", "drrho", "done"), ("c", "clip", "running")]:
        (tmp_path / "runs" / run_id).mkdir(parents=True)
        write_json_atomic(tmp_path / "runs" / run_id / "record.json", _record(run_id, method, status))
    table = records.load(tmp_path)
    assert len(table) == 6
    assert list(table.columns[:2]) == ["run_id", "status"]
    assert table["zeroshot_error.shape"].tolist()[:2] == [0.5, 0.25]
    assert table["compute"].tolist()[:2] == [1.5e9, 2.5e9]
    assert table["samples_total"].unique().tolist() == [200]
    done = records.load(tmp_path, status="done")
    assert sorted(done["run_id"].unique()) == ["a", "b"] and done["final"].sum() == 2


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"run_id": "a", "sta', "invalid JSON"),  # truncated by a crash or a full disk
        (b"[1, 2]", "expected a JSON object, got list"),
        (b'{"run_id": "\xff\xfe"}', "not UTF-8"),
        (b"", "invalid JSON"),
    ],
)
def test_a_corrupt_record_is_named_and_not_done(tmp_path, content, reason):
    directory = records.run_dir(tmp_path, "a")
    directory.mkdir(parents=True)
    (directory / "record.json").write_bytes(content)
    with pytest.raises(records.CorruptRecord, match=reason) as caught:
        records.read_record(directory)
    assert caught.value.path == directory / "record.json"
    assert str(caught.value).startswith(f"corrupt record {directory / 'record.json'}: {reason}")
    assert not records.is_done(tmp_path, "a")


def test_load_skips_a_corrupt_record_with_one_warning_line(tmp_path, capsys):
    for run_id in ("a", "b"):
        records.run_dir(tmp_path, run_id).mkdir(parents=True)
    write_json_atomic(records.run_dir(tmp_path, "a") / "record.json", _record("a", "clip"))
    (records.run_dir(tmp_path, "b") / "record.json").write_text('{"run_id": "b", "evals": [{"st')
    table = records.load(tmp_path)
    assert table["run_id"].unique().tolist() == ["a"]
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1
    assert warning[0].startswith(
        f"warning: skipped corrupt record {records.run_dir(tmp_path, 'b') / 'record.json'}: "
        "invalid JSON (Unterminated string"
    )


def test_a_record_round_trips_with_its_schema_version(tmp_path):
    record = records.Record(
        run_id="r1",
        spec=_record("r1", "drrho")["spec"],
        status="done",
        reference=records.ReferenceInfo(name="run:ref0 (w32-l1)", run_id="ref0", mode="cache"),
        evals=_record("r1", "drrho")["evals"],
    )
    record.write(tmp_path)
    again = records.read_record(tmp_path)
    assert again == record and again.schema_version == records.SCHEMA_VERSION
    row = records.load(tmp_path).iloc[-1]
    assert row["reference.run_id"] == "ref0" and row["zeroshot_error.shape"] == 0.25


def test_a_record_without_a_version_still_loads(tmp_path):
    """Records written before schema 1 (results/cpu_study) named an in-sweep reference only in its name."""
    old = _record("r1", "drrho") | {"reference": {"name": "run:0a1b2c3d4e5f (w32-l1)", "mode": "cache"}}
    write_json_atomic(tmp_path / "record.json", old)
    record = records.read_record(tmp_path)
    assert record.schema_version == 0 and record.reference.run_id == "0a1b2c3d4e5f"
    pretrained = old | {"reference": {"name": "ViT-B-32/openai", "mode": "online"}}
    write_json_atomic(tmp_path / "record.json", pretrained)
    assert records.read_record(tmp_path).reference.run_id is None


def test_a_record_of_another_shape_is_corrupt_and_named(tmp_path):
    directory = records.run_dir(tmp_path, "r1")
    directory.mkdir(parents=True)
    write_json_atomic(directory / "record.json", _record("r1", "clip", status="finished"))
    with pytest.raises(records.CorruptRecord, match=r"record.json: not a record: status: .*'finished'"):
        records.read_record(directory)
    assert not records.is_done(tmp_path, "r1")


def test_a_hand_added_key_is_kept_and_a_newer_schema_is_refused(tmp_path):
    directory = records.run_dir(tmp_path, "r1")
    directory.mkdir(parents=True)
    write_json_atomic(directory / "record.json", {**_record("r1", "clip"), "note": "rerun of r0"})
    assert records.is_done(tmp_path, "r1") and records.read_record(directory).note == "rerun of r0"
    write_json_atomic(
        directory / "record.json", {**_record("r1", "clip"), "schema_version": records.SCHEMA_VERSION + 1}
    )
    with pytest.raises(records.NewerRecord, match=r"record.json: written by a newer clip-scaling"):
        records.is_done(tmp_path, "r1")
