"""n*(m) and the pool needed to reach an error, on synthetic tables where both are known in closed form."""

import json

import numpy as np
import pandas as pd
import pytest

from analysis.bootstrap import bootstrap_laws
from analysis.data_efficiency import References, baseline_pairs, convergence, lengths, main, n_star, reach

from .common import study
from .synthetic_records import POOL_SWEEP, write_pool_sweep

POOLS = np.geomspace(1e3, 1e5, 6)
REFERENCE_POOLS = (2e3, 6e3, 2e4, 6e4)
CLIP = (2.0, -0.3)  # E = a·n^b: CLIP, and the ERM references trained on m (so CLIP's n*(m) = m)
FASTCLIP = (1.5, -0.3)  # no reference either: n*(m) = m·(1.5/2)^(1/0.3) = 0.38·m
DRRHO_B, DRRHO_C = -0.4, 30.0  # steered by the reference of pool m: n*(m) = 30·√m exactly


def reference_error(m: float) -> float:
    return CLIP[0] * m ** CLIP[1]


def true_n_star(method: str, m: float) -> float:
    if method == "drrho":
        return DRRHO_C * np.sqrt(m)
    a, b = CLIP if method == "clip" else FASTCLIP
    return (reference_error(m) / a) ** (1 / b)


def pool_table(noise: float = 0.01, seed: int = 0) -> pd.DataFrame:
    """CLIP and FastCLIP once, DRRho once per reference, at each pool; reference columns on steered rows."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in POOLS:
        rows.append({"method": "clip", "pool": n, "err": CLIP[0] * n ** CLIP[1]})
        rows.append({"method": "fastclip", "pool": n, "err": FASTCLIP[0] * n ** FASTCLIP[1]})
        for m in REFERENCE_POOLS:
            a = reference_error(m) * true_n_star("drrho", m) ** -DRRHO_B  # passes through (n*, E_ref)
            rows.append(
                {"method": "drrho", "pool": n, "err": a * n**DRRHO_B, "ref": f"clip-{m:g}", "ref_pool": m}
                | {"ref_err": reference_error(m)}
            )
    table = pd.DataFrame(rows)
    return table.assign(err=table["err"] * np.exp(rng.normal(0.0, noise, len(table))))


REFS = References("ref", "ref_pool", "ref_err")


@pytest.fixture(scope="module")
def result():
    return n_star(study(pool_table(), "pool", "err", by="method", frontier="all", draws=300), REFS)


def test_n_star_of_each_reference_is_recovered_within_its_interval(result):
    table = result.table
    assert len(table) == 3 * len(REFERENCE_POOLS)
    truth = np.array([true_n_star(method, m) for method, m in zip(table["method"], table["m"], strict=True)])
    assert table["n_star"].to_numpy() == pytest.approx(truth, rel=0.05)
    covered = (table["lo"] < truth) & (truth < table["hi"])
    assert covered.sum() >= 10  # 95% intervals from 6 pools each: one or two of 12 may miss
    assert (table["reached"] == 1.0).all()
    drrho = table[table["method"] == "drrho"]
    assert list(drrho["curve"]) == [f"drrho | clip-{m:g}" for m in REFERENCE_POOLS]  # one curve per reference
    assert not drrho["extrapolated"].any()
    fast = table[table["method"] == "fastclip"].set_index("m")
    assert fast.loc[2e3, "extrapolated"] and not fast.loc[6e3, "extrapolated"]  # 767 < the smallest pool


def test_slope_of_n_star_in_m_is_one_half_for_drrho_and_one_without_a_reference(result):
    slopes = result.slopes.set_index("method")
    for method, truth in (("clip", 1.0), ("fastclip", 1.0), ("drrho", 0.5)):
        row = slopes.loc[method]
        assert row["slope"] == pytest.approx(truth, abs=0.05)
        assert row["lo"] < truth < row["hi"]
        assert row["references"] == len(REFERENCE_POOLS) and row["valid_draws"] == 300
    assert slopes.loc["drrho", "hi"] < 0.9  # the two predictions are told apart
    versus = result.slope_differences.set_index(["versus", "method"])
    assert list(versus.index) == [("clip", "fastclip"), ("clip", "drrho"), ("fastclip", "drrho")]
    for control in ("clip", "fastclip"):  # against plain training, and against the same estimator without a reference
        row = versus.loc[(control, "drrho")]
        assert row["delta"] == pytest.approx(-0.5, abs=0.05)
        assert row["lo"] < -0.5 < row["hi"] < 0  # paired draws: DRRho flatter
    assert versus.loc[("clip", "fastclip"), "lo"] < 0 < versus.loc[("clip", "fastclip"), "hi"]  # both slope 1


def test_slopes_can_leave_out_the_references_some_method_reaches_only_by_extrapolation():
    s = study(pool_table(), "pool", "err", by="method", frontier="all", draws=300)
    inside = n_star(s, REFS, interpolated=True)  # FastCLIP's n* of the m = 2,000 reference is below every pool
    slopes = inside.slopes.set_index("method")
    assert (slopes["references"] == len(REFERENCE_POOLS) - 1).all()  # left out for every method alike
    for method, truth in (("clip", 1.0), ("fastclip", 1.0), ("drrho", 0.5)):
        assert slopes.loc[method, "slope"] == pytest.approx(truth, abs=0.05)
    assert any("clip-2000" in note for note in inside.notes)
    assert len(inside.table) == 3 * len(REFERENCE_POOLS)  # n* is still read for every reference


def test_reach_gives_the_pool_needed_for_a_target_error():
    s = study(pool_table(), "pool", "err", by="method", frontier="all", draws=200, config=("pool",))
    found = reach(bootstrap_laws(s.keep_levels(["clip", "fastclip"])), [0.2, 0.15]).set_index(["level", "target"])
    for (level, target), row in found.iterrows():
        a, b = CLIP if level == "clip" else FASTCLIP
        assert row["lo"] < (target / a) ** (1 / b) < row["hi"]
    assert found.loc[("clip", 0.15), "x"] == pytest.approx((0.15 / 2.0) ** (1 / -0.3), rel=0.1)


def test_command_line_on_a_csv_and_its_errors(tmp_path, capsys):
    csv = tmp_path / "pools.csv"
    pool_table().to_csv(csv, index=False)
    base = [str(csv), "--y", "err", "--pool", "pool", "--model", "none", "--reference", "ref"]
    base += ["--reference-pool", "ref_pool", "--reference-error", "ref_err", "--bootstrap", "100"]
    assert main([*base, "--targets", "0.2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    slopes = {row["method"]: row for row in out["slopes"]}
    assert slopes["drrho"]["lo"] < 0.5 < slopes["drrho"]["hi"]
    assert {row["level"] for row in out["reach"]} >= {"clip", "fastclip"}
    assert main(base) == 0
    assert "slope of log n* on log m" in capsys.readouterr().out
    assert main([*base[:5], *base[7:]]) == 2  # a CSV without the default model column
    assert "--model none fits one curve per method" in capsys.readouterr().err
    assert main([*base, "--pool", "pool_size"]) == 2
    assert "column 'pool_size' not found" in capsys.readouterr().err
    assert main([*base, "--reference-error", "own_error"]) == 2
    assert "column 'own_error' not found" in capsys.readouterr().err
    assert main([*base, "--law", "chinchilla"]) == 2
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "out")]) == 2  # no model size column for the isoData figure
    assert "column 'model.params_nonembedding' not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_command_line_on_a_sweeps_records_finds_the_known_slopes_and_draws_isodata(tmp_path, capsys):
    sweep = write_pool_sweep(tmp_path / "sweep", models=("w32-l1", "w48-l2"))
    out = tmp_path / "figures"
    assert main([str(sweep), "--bootstrap", "50", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    slopes = {(row["model"], row["method"]): row["slope"] for row in summary["slopes"]}
    assert slopes[("w32-l1", "clip")] == pytest.approx(1.0, abs=1e-6)  # noise-free: exact
    assert slopes[("w32-l1", "drrho")] == pytest.approx(0.5, abs=1e-6)
    first = [row for row in summary["n_star"] if row["model"] == "w32-l1" and row["method"] == "drrho"]
    assert [row["n_star"] for row in first] == pytest.approx([30 * m**0.5 for m in POOL_SWEEP["references"]])
    runs = len(list(sweep.rglob("record.json")))
    assert summary["convergence"] == {"flat": runs}  # one evaluation per run: nothing changes after it
    written = {p.name for p in out.iterdir()}
    assert written == {f"{name}.csv" for name in ("n_star", "slopes", "slope_differences", "data", "convergence")} | {
        "summary.json",
        "isodata.png",
        "isodata.pdf",
        "n_star.png",
        "n_star.pdf",
    }


def test_command_line_on_early_stopped_errors_names_the_reference_error_to_use(tmp_path, capsys):
    sweep = write_pool_sweep(tmp_path / "sweep")
    assert main([str(sweep), "--y", "val_loss.best", "--bootstrap", "20"]) == 2
    assert "--reference-error reference.val_loss\n" in capsys.readouterr().err
    args = ["--y", "zeroshot_error.colour_shape.best", "--reference-error", "reference.zeroshot_error.colour_shape"]
    assert main([str(sweep), *args, "--bootstrap", "50", "--json"]) == 0
    slopes = {row["method"]: row["slope"] for row in json.loads(capsys.readouterr().out)["slopes"]}
    assert slopes == pytest.approx({"clip": 1.0, "drrho": 0.5}, abs=1e-6)  # one evaluation per run: best = final


def test_a_curve_that_levels_off_above_a_references_error_never_reaches_it():
    """Saturating curves: n* is NaN (not a number read past the floor), and the notes say so."""
    rows = []
    for n in POOLS:
        rows.append({"method": "clip", "pool": n, "err": 0.12 + 4.0 * n**-0.5})
        for m, own in ((4e3, 0.2), (4e4, 0.1)):  # the second reference lies below CLIP's floor 0.12
            rows.append(
                {"method": "drrho", "pool": n, "err": 0.05 + 4.0 * n**-0.5, "ref": m, "ref_pool": m} | {"ref_err": own}
            )
    s = study(pd.DataFrame(rows), "pool", "err", by="method", law="saturating", frontier="all", draws=50)
    result = n_star(s, REFS)
    clip = result.table[result.table["method"] == "clip"].set_index("m")
    assert clip.loc[4e3, "n_star"] == pytest.approx((4.0 / 0.08) ** 2, rel=0.05)
    assert np.isnan(clip.loc[4e4, "n_star"]) and clip.loc[4e4, "reached"] < 0.05
    assert any("clip never reaches the error of reference 40000.0" in note for note in result.notes)
    slopes = result.slopes.set_index("method")
    assert np.isnan(slopes.loc["clip", "slope"]) and slopes.loc["clip", "references"] == 1
    assert slopes.loc["drrho", "references"] == 2


# L(N, D) = E + A/N^alpha + B/D^beta: CLIP and DRRho-CLIP alike but for the data term (DRRho's decays faster);
# the references are CLIP at the largest N on pools m, so CLIP's n*(m) there is m.
SIZES, LAW_POOLS, LAW_REFERENCES = (1e4, 1e5, 1e6), np.geomspace(400, 25_600, 6), (800, 3_200, 12_800)
TRUTH = {"clip": (0.5, 20.0, 0.3, 40.0, 0.45), "drrho": (0.5, 20.0, 0.3, 60.0, 0.6)}  # E, A, alpha, B, beta


def chinchilla_law(method: str, n: float, d: float) -> float:
    e, a, alpha, b, beta = TRUTH[method]
    return e + a / n**alpha + b / d**beta


def law_table(noise: float = 0.002, seed: int = 0) -> pd.DataFrame:
    """Each (N, D) once for CLIP and once per reference for DRRho-CLIP, with the reference's columns."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in SIZES:
        for d in LAW_POOLS:
            rows.append({"method": "clip", "N": n, "D": d, "err": chinchilla_law("clip", n, d)})
            for m in LAW_REFERENCES:
                own = {"ref": f"m{m}", "ref_pool": m, "ref_err": chinchilla_law("clip", SIZES[-1], m)}
                rows.append({"method": "drrho", "N": n, "D": d, "err": chinchilla_law("drrho", n, d), **own})
    table = pd.DataFrame(rows)
    return table.assign(err=table["err"] * np.exp(rng.normal(0.0, noise, len(table))))


def test_command_line_on_any_csv_with_n_d_and_error_columns_recovers_a_known_law(tmp_path, capsys):
    """Issue 14 item 3: n*(m) and L(N, D) from a CSV of (method, N, D, error), the law known in closed form."""
    csv = tmp_path / "law.csv"
    law_table().to_csv(csv, index=False)
    args = [str(csv), "--y", "err", "--pool", "D", "--model", "N", "--size", "N", "--law", "saturating"]
    args += ["--reference", "ref", "--reference-pool", "ref_pool", "--reference-error", "ref_err"]
    out = tmp_path / "out"
    assert main([*args, "--chinchilla", "--bootstrap", "100", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert json.loads((out / "summary.json").read_text()) == summary
    clip = [r for r in summary["n_star"] if r["method"] == "clip" and r["model"] == SIZES[-1]]
    assert [r["n_star"] for r in clip] == pytest.approx(LAW_REFERENCES, rel=0.1)
    law = summary["chinchilla"]["drrho"]
    fitted = {row["level"]: row for row in law["laws"]}
    for method in ("clip", "drrho"):
        assert fitted[method]["params"]["beta"]["value"] == pytest.approx(TRUTH[method][4], abs=0.05)
    beta = law["input_exponents"]["beta"]
    truth = TRUTH["drrho"][4] - TRUTH["clip"][4]
    assert beta["delta"] == pytest.approx(truth, abs=0.05) and beta["lo"] < truth < beta["hi"]
    assert set(summary["chinchilla"]) == {"drrho"}  # no FastCLIP rows: DRRho-CLIP against CLIP only
    assert main([*args, "--chinchilla", "--size", "params"]) == 2  # N named but absent: one line, status 2
    assert "column 'params' not found" in capsys.readouterr().err


def test_command_line_on_accuracies_fits_the_same_law_as_on_errors(tmp_path, capsys):
    """--y-transform error-from-acc maps y and the reference's own value once, for n*(m) and L(N, D) alike."""
    table = law_table()
    csv = tmp_path / "law.csv"
    table.assign(acc=1 - table["err"], ref_acc=1 - table["ref_err"]).to_csv(csv, index=False)
    args = [str(csv), "--y", "acc", "--y-transform", "error-from-acc", "--pool", "D", "--model", "N", "--size", "N"]
    args += [
        "--law",
        "saturating",
        "--reference",
        "ref",
        "--reference-pool",
        "ref_pool",
        "--reference-error",
        "ref_acc",
    ]
    assert main([*args, "--chinchilla", "--bootstrap", "20", "--json"]) == 0
    law = json.loads(capsys.readouterr().out)["chinchilla"]["drrho"]
    fitted = {row["level"]: row["params"]["beta"]["value"] for row in law["laws"]}
    assert fitted == pytest.approx({method: TRUTH[method][4] for method in ("clip", "drrho")}, abs=0.05)


def test_a_curve_of_one_pool_is_left_out_and_named():
    """A sweep still running: a reference's curve with a single pool has no law; the others are read."""
    table = pool_table()
    table = table[(table["ref"] != "clip-60000") | (table["pool"] == POOLS[0])]
    found = n_star(study(table, "pool", "err", by="method", frontier="all", draws=50), REFS)
    assert "curve drrho | clip-60000 left out: fewer than two pools" in found.notes
    drrho = found.table[found.table["method"] == "drrho"]
    assert list(drrho["m"]) == list(REFERENCE_POOLS[:-1])


def test_convergence_tells_a_flat_run_from_one_past_its_best_and_one_still_falling():
    curves = {
        "flat": [5.0, 3.0, 2.0, 1.96],  # within 5 % over the last two evaluations, at its best
        "overfit": [5.0, 2.0, 3.0, 3.1],  # best at the second evaluation, then 55 % above it
        "falling": [5.0, 4.0, 3.0, 2.5],  # still dropping 17 % at the end
    }
    records = pd.DataFrame(
        [
            {"run_id": run, "method": "clip", "samples_seen": 1000 * 2**i, "val_loss": loss}
            for run, losses in curves.items()
            for i, loss in enumerate(losses)
        ]
    )
    table = convergence(records, "val_loss").set_index("run_id")
    assert table["verdict"].to_dict() == {"flat": "flat", "overfit": "past its best", "falling": "still falling"}
    assert table.loc["overfit", ["best", "best_at", "final", "samples_seen"]].tolist() == [2.0, 2000, 3.1, 8000]
    assert table.loc["falling", "last_change"] == pytest.approx(2.5 / 3.0 - 1)


def length_check_records() -> pd.DataFrame:
    """CLIP on two pools at 16, 32 and 64 epochs, four evaluations each: the small pool overfits when trained
    longer, the large one needs 32 epochs and gains nothing from 64 (whose best is 2 % lower on the way)."""
    finals = {  # pool -> epochs -> the run's evaluations
        100: {16: [5.0, 3.0, 2.6, 2.5], 32: [5.0, 2.6, 2.7, 2.9], 64: [5.0, 2.6, 3.2, 3.6]},
        800: {16: [5.0, 3.0, 2.2, 2.0], 32: [5.0, 2.5, 1.8, 1.5], 64: [5.0, 2.0, 1.47, 1.52]},
    }
    return pd.DataFrame(
        [
            {
                "run_id": f"{pool}x{epochs}",
                "method": "clip",
                "data.pool_size": pool,
                "val_loss": loss,
                "samples_seen": pool * epochs * (i + 1) // 4,
            }
            for pool, runs in finals.items()
            for epochs, losses in runs.items()
            for i, loss in enumerate(losses)
        ]
    )


def test_lengths_chooses_per_pool_the_length_with_the_lowest_final_error():
    table = lengths(length_check_records(), "val_loss").set_index("data.pool_size")
    assert table["epochs"].to_dict() == {100: 16, 800: 32}  # the small pool overfits; the large one needs longer
    assert table["final"].to_dict() == {100: 2.5, 800: 1.5}
    assert table["lowest"].to_dict() == {100: 2.5, 800: 1.47}  # the 64-epoch run's best, on the way
    assert set(table["verdict"]) == {"converged"}
    assert table.loc[800, "tried"] == "16, 32, 64"


def test_lengths_says_when_the_longest_run_wins_or_a_run_got_lower_on_the_way():
    records = length_check_records()
    unchecked = lengths(records[records["run_id"] != "800x64"], "val_loss").set_index("data.pool_size")
    assert unchecked.loc[800, "verdict"] == "no longer run"  # 32 epochs won, but nothing longer was tried
    dip = (records["run_id"] == "800x64") & (records["val_loss"] == 1.47)  # 64 epochs get to 1.3 on the way
    dipped = lengths(records.assign(val_loss=records["val_loss"].mask(dip, 1.3)), "val_loss")
    assert dipped.set_index("data.pool_size").loc[800, "verdict"] == "lower on the way"


def test_the_cli_writes_the_length_check_of_a_sweep(tmp_path, capsys):
    sweep = write_pool_sweep(tmp_path / "sweep")
    assert main([str(sweep), "--y", "val_loss", "--lengths", "--out", str(tmp_path / "out")]) == 0
    table = pd.read_csv(tmp_path / "out" / "lengths.csv")
    assert {"epochs", "final", "lowest", "tried", "verdict"} <= set(table.columns)
    assert "length per pool" in capsys.readouterr().out
    assert main([str(tmp_path / "out" / "lengths.csv"), "--lengths"]) == 2  # a CSV holds no evaluations


def test_each_method_is_compared_with_clip_and_with_fastclip_the_same_estimator_without_a_reference():
    assert baseline_pairs(["clip", "drrho", "fastclip"]) == [
        ("clip", "drrho"),
        ("clip", "fastclip"),
        ("fastclip", "drrho"),
    ]
    assert baseline_pairs(["clip", "drrho"]) == [("clip", "drrho")]
    assert baseline_pairs(["drrho", "fastclip"]) == [("fastclip", "drrho")]
    assert baseline_pairs(["a", "b"]) == [("a", "b")]  # no control: the first method is the baseline
