"""Records load into one tidy row per run × evaluation."""



from scaling import records
from scaling.io import write_json_atomic


def _record(run_id: str, method: str, status: str = "done") -> dict:
    evals = [
        {"step": s, "samples_seen": 100 * s, "compute_target": 1e9 * s, "compute_reference": 5e8,
         "wall_s": s, "val_loss": 3.0 / s, "zeroshot_error": {"shape": 0.5 / s}, "retrieval_r1": {"i2t": 0.1 * s}}
        for s in (1, 2)
    ]
    spec = {"method": method, "model": "w32-l1", "samples_seen": 200, "seed": 0, "data": {"pool_size": 1000},
            "reference": None}
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
