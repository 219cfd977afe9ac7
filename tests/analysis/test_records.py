"""The records adapter's data-axis table: pools, sizes and each steered run's reference, from run records."""

import numpy as np
import pandas as pd
import pytest

from analysis.records import data_axis_table, load_records

from .synthetic_records import POOL_SWEEP, write_pool_sweep, write_sweep


def test_data_axis_table_reads_each_reference_pool_and_own_error_from_its_run(tmp_path):
    table = data_axis_table(load_records(write_pool_sweep(tmp_path)))
    pools, references = POOL_SWEEP["pools"], POOL_SWEEP["references"]
    assert len(table) == len(pools) * (1 + len(references))  # the reference runs are set aside
    assert table["model.params_nonembedding"].eq(32321).all() and table["samples_seen"].gt(0).all()
    clip, drrho = table[table["method"] == "clip"], table[table["method"] == "drrho"]
    assert clip.filter(like="reference.data").isna().all().all()
    assert sorted(drrho["reference.data.pool_size"].unique()) == list(references)
    a, b = POOL_SWEEP["clip"]
    own = drrho["reference.zeroshot_error.colour_shape"]
    assert own.to_numpy() == pytest.approx(a * drrho["reference.data.pool_size"].to_numpy(float) ** b)
    assert sorted(drrho["data.pool_size"].unique()) == list(pools)


def test_data_axis_table_without_in_sweep_references_has_empty_reference_columns(tmp_path):
    write_sweep(tmp_path, methods=("clip",))
    table = data_axis_table(load_records(tmp_path))
    assert "reference.data.pool_size" in table and np.isnan(table["reference.data.pool_size"].astype(float)).all()


def test_data_axis_table_gives_each_run_its_early_stopped_error_and_each_reference_its_final_one(tmp_path):
    records = load_records(write_pool_sweep(tmp_path))  # one evaluation per run
    halfway = records.assign(samples_seen=records["samples_seen"] // 2, final=False, val_loss=records["val_loss"] - 0.5)
    table = data_axis_table(pd.concat([halfway, records]))  # every run was 0.5 better halfway than at its end
    assert table["val_loss.best"].to_numpy() == pytest.approx(table["val_loss"].to_numpy() - 0.5)
    assert "reference.val_loss.best" not in table  # a reference steers with its final weights
    finals = records.set_index("run_id")["val_loss"]
    steered = table.dropna(subset=["reference.run_id"])
    assert steered["reference.val_loss"].to_numpy() == pytest.approx(finals[steered["reference.run_id"]].to_numpy())


def test_wsd_trunks_are_no_points_and_the_checklist_names_the_schedule(tmp_path):
    from analysis.sweep_study import _schedule
    from scaling.records import find_records, read_record, run_dir

    write_sweep(tmp_path, methods=("clip",))
    files = find_records(tmp_path)
    for path in files:  # every run a branch of one trunk, written as a record of its own
        record = read_record(path)
        record.model_copy(update={"wsd": {"role": "branch", "trunk": "t" * 12, "fork_step": 1}}).write(path.parent)
    trunk = read_record(files[0]).model_copy(update={"run_id": "t" * 12, "wsd": {"role": "trunk", "forks": [1]}})
    run_dir(tmp_path, trunk.run_id).mkdir(parents=True)
    trunk.write(run_dir(tmp_path, trunk.run_id))

    runs = load_records(tmp_path)
    assert "t" * 12 not in set(runs["run_id"]) and set(runs["wsd.role"]) == {"branch"}
    assert _schedule(runs, "method").startswith("wsd (Hägele et al. 2024): ")
