"""Point-selection rules on hand-checked examples and on the paper's points."""

import numpy as np
import pytest

from analysis.select import get_rule, select_many


def test_running_min_keeps_runs_that_beat_every_cheaper_run():
    x = np.array([5.0, 1.0, 3.0, 2.0, 4.0])
    y = np.array([2.5, 5.0, 4.0, 3.0, 2.0])
    chosen = get_rule("running-min").select(x, y)
    np.testing.assert_array_equal(chosen.index, [1, 3, 4])
    np.testing.assert_array_equal(chosen.x, [1.0, 2.0, 4.0])


def test_running_min_ties_in_compute_keep_the_best_once():
    chosen = get_rule("running-min").select(np.array([1.0, 1.0, 2.0]), np.array([3.0, 2.0, 2.5]))
    np.testing.assert_array_equal(chosen.index, [1])


def test_all_keeps_everything_sorted_by_compute():
    chosen = get_rule("all").select(np.array([3.0, 1.0, 2.0]), np.array([1.0, 3.0, 2.0]))
    np.testing.assert_array_equal(chosen.index, [1, 2, 0])


def test_cherti_bins_fit_at_bin_centres():
    lx = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.05])
    y = np.array([0.9, 0.8, 0.85, 0.6, 0.5, 0.55])
    chosen = get_rule("bins:2").select(10.0**lx, y)  # bins over [0, 2.15): width 1.075
    np.testing.assert_array_equal(chosen.index, [1, 4])
    np.testing.assert_allclose(np.log10(chosen.x), [0.5375, 1.6125])
    np.testing.assert_allclose(chosen.y, [0.8, 0.5])


def test_pareto_bin_keeps_one_run_per_bin_then_the_running_minimum():
    x = np.array([1.0, 1.5, 2.0, 4.0, 8.0, 16.0, 32.0])
    y = np.array([1.0, 0.95, 0.9, 0.95, 0.7, 0.8, 0.6])
    # 5 geometric bins over [1, 32); (1, 1.0) loses to (1.5, 0.95) in the first bin; 32 is added last.
    np.testing.assert_array_equal(get_rule("pareto-bin").select(x, y).index, [1, 2, 4, 6])
    np.testing.assert_array_equal(get_rule("running-min").select(x, y).index, [0, 1, 2, 4, 6])
    np.testing.assert_array_equal(get_rule("pareto-bin:1").select(x, y).index, [4, 6])


def test_paper_frontier_is_the_published_one(paper):
    """The running-min frontier of the OpenCLIP runs (scaling-law notes, Wei et al. figure)."""
    clip = paper[paper["method"] == "OpenCLIP"].reset_index(drop=True)
    chosen = get_rule("running-min").select(clip["compute_gflops"].to_numpy(), 1 - clip["imagenet_top1"] / 100)
    picked = {(clip["arch"][i], clip["samples_seen"][i] / 1e9) for i in chosen.index}
    assert picked == {
        ("ViT-B-32", 0.64),
        ("ViT-B-32", 1.28),
        ("ViT-B-32", 2.56),
        ("ViT-B-16", 1.28),
        ("ViT-B-32", 5.12),
        ("ViT-B-16", 2.56),
        ("ViT-B-16", 5.12),
        ("ViT-L-14", 2.56),
    }


@pytest.mark.parametrize("name", ["bins", "bins:0", "bins:x", "pareto", "running-min:3", "all:2", ""])
def test_unknown_rules_are_rejected(name):
    with pytest.raises(ValueError, match="unknown frontier"):
        get_rule(name)


def test_rule_names_round_trip():
    for name in ("all", "running-min", "bins:5", "pareto-bin", "pareto-bin:4"):
        assert get_rule(name).name == name


def test_select_many_packs_each_row_and_skips_absent_entries():
    x = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    y = np.array([[3.0, np.nan, 1.0], [1.0, 2.0, 3.0]])
    index, x_fit, weight = select_many(get_rule("running-min"), x, y)
    np.testing.assert_array_equal(weight, [[1, 1, 0], [1, 1, 1]])
    np.testing.assert_array_equal(index[0, :2], [0, 2])
    np.testing.assert_array_equal(index[1], [2, 1, 0])
    np.testing.assert_array_equal(x_fit[1], [1.0, 2.0, 3.0])
