"""Input handling: y transforms, column and log-domain checks with messages that name the column."""

import pandas as pd
import pytest

from analysis.data import Y_TRANSFORMS, InputError, prepare, read_table

from .common import PAPER_DATA, REPO


def test_error_from_accuracy_percent():
    acc = pd.Series([53.87, 70.54])
    assert list(Y_TRANSFORMS["error-from-acc-pct"](acc)) == pytest.approx([0.4613, 0.2946])
    assert list(Y_TRANSFORMS["error-from-acc"](acc / 100)) == pytest.approx([0.4613, 0.2946])


def test_prepare_transforms_a_copy_and_checks_the_log_columns():
    df = pd.DataFrame({"c": [1.0, 2.0], "acc": [60.0, 70.0], "tag": ["a", "b"]})
    out = prepare(df, "c", "acc", keep=["tag"], y_transform="error-from-acc-pct")
    assert list(out["acc"]) == pytest.approx([0.4, 0.3]) and list(df["acc"]) == [60.0, 70.0]
    with pytest.raises(InputError, match=r"column 'acc' must be positive .* \(after --y-transform pct-to"):
        prepare(df.assign(acc=[0.0, 70.0]), "c", "acc", y_transform="pct-to-fraction")
    with pytest.raises(InputError, match="first: a"):
        prepare(df, "tag", "acc")
    with pytest.raises(InputError, match="column 'group' not found"):
        prepare(df, "c", "acc", keep=["group"])
    with pytest.raises(InputError, match="unknown --y-transform"):
        prepare(df, "c", "acc", y_transform="log")


def test_read_table_names_the_file(tmp_path):
    with pytest.raises(InputError, match=r"cannot read CSV .*missing\.csv"):
        read_table(tmp_path / "missing.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match=r"empty\.csv"):
        read_table(empty)


@pytest.mark.parametrize("name", ["drrho_scaling_imagenet.csv", "drrho_baselines_dfn192m.csv"])
def test_committed_paper_data_is_the_shared_copy(name):
    """results/paper/data holds byte-identical copies of ../shared/paper (provenance in its README)."""
    shared = REPO.parent / "shared" / "paper" / name
    if not shared.exists():
        pytest.skip("../shared/paper is not beside this checkout")
    assert (PAPER_DATA / name).read_bytes() == shared.read_bytes()
