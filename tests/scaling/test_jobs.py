"""A job that crashed marks its run failed with the same `Record` schema the run writes."""

from scaling import records
from scaling.jobs import mark_failed
from scaling.spec import RunSpec

SPEC = RunSpec(model="w32-l1", data={"pool_size": 512}, samples_seen=1024, batch_size=64)


def test_a_run_that_never_wrote_a_record_is_marked_failed(tmp_path):
    mark_failed(tmp_path, SPEC, FileNotFoundError("no shards under /data/x\nsecond line"))
    record = records.read_record(records.run_dir(tmp_path, SPEC.run_id))
    assert record.status == "failed" and record.error == "FileNotFoundError: no shards under /data/x"
    assert record.schema_version == records.SCHEMA_VERSION and record.spec == SPEC.model_dump(mode="json")


def test_marking_keeps_the_evaluations_and_replaces_a_corrupt_record(tmp_path):
    directory = records.run_dir(tmp_path, SPEC.run_id)
    directory.mkdir(parents=True)
    (directory / "record.json").write_text('{"run_id": ')
    mark_failed(tmp_path, SPEC, RuntimeError("boom"))
    assert records.read_record(directory).error == "RuntimeError: boom"
    evaluation = {"step": 8, "samples_seen": 512, "compute_target": 1e9, "compute_reference": 0.0}
    running = records.Record(
        run_id=SPEC.run_id, spec=SPEC.model_dump(mode="json"), status="running", evals=[evaluation]
    )
    running.write(directory)
    mark_failed(tmp_path, SPEC, RuntimeError("killed"))
    record = records.read_record(directory)
    assert record.status == "failed" and [e.step for e in record.evals] == [8]
