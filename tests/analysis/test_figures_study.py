"""`figures study` on a synthetic sweep written as run records (tests/analysis/synthetic_records.py): the laws
it recovers, the multiplier's direction under both compute conventions, reference runs set aside, final vs
every evaluation, the verdict following the numbers, one-line errors, and no torch import."""

import json
import subprocess
import sys

import pandas as pd
import pytest
from matplotlib.legend import Legend

from analysis.figures import main
from analysis.records import choose_levels, config_columns
from analysis.report import study_markdown, study_verdict
from analysis.study import FitOptions
from analysis.sweep_study import sweep_study

from .common import REPO, figures
from .synthetic_records import LAWS, write_sweep

DRAWS = "200"
FIGURES = ("scaling", "extrapolation", "residuals", "multiplier", "bootstrap", "isoflop", "learning_curves")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    return write_sweep(tmp_path_factory.mktemp("records") / "sweep")


@pytest.fixture(scope="module")
def cli_run(sweep, tmp_path_factory):
    """The command line once: (output directory, printed text, summary.json)."""
    out = tmp_path_factory.mktemp("study")
    printed = figures("study", str(sweep.root), "--out", str(out), "--bootstrap", DRAWS)
    return out, printed, json.loads((out / "summary.json").read_text())


def test_study_writes_the_figure_set_and_both_summaries(cli_run):
    out, printed, summary = cli_run
    for name in FIGURES:
        for suffix in (".png", ".pdf"):
            assert (out / f"{name}{suffix}").stat().st_size > 1000, name
    markdown = (out / "summary.md").read_text()
    assert markdown.strip() in printed
    for section in (
        "## Verdict",
        "## Laws",
        "## Exponent difference",
        "## Compute multiplier",
        "## Paired error",
        "## Extrapolation check",
        "## Leave one model out",
        "## Rule used",
    ):
        assert section in markdown
    assert summary["figures"]["scaling"] == ["scaling.png", "scaling.pdf"]
    assert summary["draws"] == int(DRAWS) and summary["paired"] is True


def test_laws_recover_the_generating_exponents(cli_run):
    _, _, summary = cli_run
    conventions = summary["compute_conventions"]
    assert conventions["primary"]["x"] == "compute"
    target_only = conventions["alternative"]
    assert target_only["x"] == "compute_target"
    laws = {row["level"]: row for row in target_only["laws"]}
    for method, (_, b) in LAWS.items():
        assert laws[method]["params"]["b"]["value"] == pytest.approx(b, abs=0.01)
        lo, hi = laws[method]["params"]["b"]["ci"]
        assert lo < laws[method]["params"]["b"]["value"] < hi
    assert target_only["exponent"]["delta"] == pytest.approx(LAWS["drrho"][1] - LAWS["clip"][1], abs=0.01)


def test_multiplier_favours_drrho_and_shrinks_once_the_reference_is_counted(cli_run, sweep):
    _, _, summary = cli_run
    with_ref = summary["multiplier"]
    target_only = summary["compute_conventions"]["alternative"]["multiplier"]
    assert len(with_ref) == 3 and not any(row["extrapolated"] for row in with_ref)  # targets inside the data
    for full, own in zip(with_ref, target_only, strict=True):
        assert full["target"] == own["target"]
        assert full["lo"] > 1 and full["k"] < own["k"]
        assert own["k"] == pytest.approx(sweep.multiplier(own["target"]), rel=0.2)
    assert summary["paired_ratio"]["ratio_hi"] < 1


def test_reference_runs_are_set_aside_and_reported(cli_run, sweep):
    _, _, summary = cli_run
    study = summary["study"]
    assert study["excluded_reference_runs"] == [sweep.reference_run_id]
    assert study["runs"] == {"clip": sweep.runs // 2, "drrho": sweep.runs // 2}  # the failed run is not loaded
    assert study["configurations"] == {"clip": 12, "drrho": 12}
    assert study["configurations_with_seeds"] == 6  # the smallest model's seeds, averaged
    (ref,) = summary["references"]
    assert ref["name"].startswith(f"run:{sweep.reference_run_id}") and ref["steered_runs"] == sweep.runs // 2
    assert 0 < ref["y"] < 1


def test_final_only_by_default_every_evaluation_on_request(sweep):
    final = sweep_study(sweep.root, options=FitOptions(draws=50))
    every = sweep_study(sweep.root, options=FitOptions(draws=50), final_only=False)
    points = {row["level"]: row["report"]["points_total"] for row in final.summary["laws"]}
    assert points == {"clip": 12, "drrho": 12}
    assert all(row["report"]["points_total"] == 48 for row in every.summary["laws"])
    assert "samples_seen" in every.data.config and "samples_seen" not in final.data.config
    assert final.summary["figures"] == {}  # nothing written without `out`


def test_scaling_plot_markers_are_sized_by_samples_seen(sweep):
    result = sweep_study(sweep.root, options=FitOptions(draws=50))
    ax = result.figures["scaling"].axes[0]
    sizes = {round(float(s), 3) for coll in ax.collections for s in coll.get_sizes()}
    assert len(sizes) >= 4  # three sample counts + the fitted-point rings
    assert ax.get_legend().get_title().get_text() == "samples seen"  # the column in words


def test_verdict_follows_the_numbers(cli_run):
    _, _, summary = cli_run
    verdict = study_verdict(summary)
    assert verdict[0].startswith("drrho reaches error") and "less compute than clip" in verdict[0]
    assert "exponent is steeper" in verdict[2] and "lower" in verdict[3]
    unresolved = json.loads(json.dumps(summary))
    for row in unresolved["multiplier"]:
        row.update(k=1.02, lo=0.9, hi=1.2)
    unresolved["exponent"].update(lo=-0.01, hi=0.01)
    unresolved["paired_ratio"].update(ratio_lo=0.95, ratio_hi=1.05)
    verdict = study_verdict(unresolved)
    assert "not resolved" in verdict[0] and "not resolved" in verdict[2] and "not resolved" in verdict[3]
    assert "not resolved" in study_markdown({**unresolved, "verdict": verdict})


def test_compute_target_as_x_reports_compute_as_the_other_convention(sweep):
    result = sweep_study(sweep.root, x="compute_target", options=FitOptions(draws=50))
    assert result.summary["compute_conventions"]["alternative"]["x"] == "compute"
    assert "`compute` (target training + reference forward FLOPs)" in result.markdown


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda root: root.mkdir(), [], "no finished records"),
        (lambda root: None, [], "does not exist"),
        (lambda root: write_sweep(root), ["--y", "zeroshot_error.nope"], "'zeroshot_error.nope' not found"),
        (lambda root: write_sweep(root, methods=("clip",)), [], "single value"),
        (lambda root: write_sweep(root), ["--treatment", "fastclip"], "'fastclip' is not a value"),
    ],
    ids=["no-records", "no-directory", "missing-column", "single-method", "unknown-method"],
)
def test_bad_input_is_one_line_and_status_2(tmp_path, capsys, make, args, message):
    root = tmp_path / "sweep"
    make(root)
    assert main(["study", str(root), "--out", str(tmp_path / "out"), "--bootstrap", "20", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_study_never_imports_torch(sweep, tmp_path):
    code = (
        "import sys, contextlib, io\n"
        "from analysis.figures import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    rc = main(['study', {str(sweep.root)!r}, '--out', {str(tmp_path)!r}, '--bootstrap', '20'])\n"
        "assert rc == 0, rc\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_config_columns_skip_method_specific_settings():
    runs = pd.DataFrame(
        {
            "method": ["clip"] * 4 + ["drrho"] * 4,
            "model": ["a", "a", "b", "b"] * 2,
            "samples_total": [1, 2, 1, 2] * 2,
            "optim.lr": [2e-3, 2e-3, 1e-3, 1e-3] * 2,  # per-model: shared by both methods
            "optim.warmup": [0.05] * 4 + [0.1] * 4,  # per-method: no key
            "data.pool_size": [100] * 8,  # constant: no key
            "loss.tau": [0.07] * 4 + [0.01] * 4,
        }
    )
    assert config_columns(runs, "method", ["clip", "drrho"]) == ["model", "samples_total", "optim.lr"]
    every = runs.assign(samples_seen=[1, 2, 1, 2] * 2)
    assert config_columns(every, "method", ["clip", "drrho"], evals=True)[-1] == "samples_seen"


def test_levels_default_to_clip_and_drrho():
    three = pd.DataFrame({"method": ["fastclip", "drrho", "clip"]})
    assert choose_levels(three, "method") == ("clip", "drrho")
    assert choose_levels(three, "method", baseline="fastclip") == ("fastclip", "drrho")
    assert choose_levels(pd.DataFrame({"m": ["x", "y"]}), "m") == ("x", "y")


def test_a_diverged_run_is_dropped_and_named(tmp_path):
    """A run whose loss went NaN may still carry a finite zero-shot error (argmax of NaN logits): it is no
    point of any law, so the study drops it and says which and why."""
    sweep = write_sweep(tmp_path / "sweep")
    records = sorted(sweep.root.glob("runs/*/record.json"))
    diverged = next(p for p in records if json.loads(p.read_text())["spec"]["method"] == "clip")
    record = json.loads(diverged.read_text())
    record["evals"][-1]["val_loss"] = float("nan")
    diverged.write_text(json.dumps(record))
    result = sweep_study(sweep.root, options=FitOptions(draws=20))
    run_id = record["run_id"]
    assert list(result.data.dropped) == [run_id] and run_id not in set(result.data.curves["run_id"])
    study = result.summary["study"]
    assert study["runs"]["clip"] == sweep.runs // 2 - 1
    assert any(f"`{run_id}` (val_loss = nan at step" in note for note in study["notes"])
    assert "dropped 1 run(s) with a non-finite metric" in result.markdown


def test_figures_name_their_axes_in_words_and_order_models_by_size(sweep):
    figures = sweep_study(sweep.root, x="compute_target", options=FitOptions(draws=50)).figures
    ax = figures["scaling"].axes[0]
    assert ax.get_xlabel() == "target training compute (FLOPs)"
    assert ax.get_ylabel() == "zero-shot error (colour_shape task)"
    assert ax.get_ylim()[1] <= 1.0  # an error axis stops at 1
    legends = [c for c in ax.get_children() if isinstance(c, Legend)]  # runs' legend and the sizes' legend
    texts = [t.get_text() for legend in legends for t in legend.get_texts()]
    models = [t for t in texts if t.startswith("w")]
    assert models == ["w32-l1", "w48-l2", "w64-l2", "w96-l3"]  # smallest first (the records list w96 first)
    curves = figures["learning_curves"].axes[0]
    assert curves.get_xlabel() == "samples seen" and curves.get_ylim()[1] <= 1.0
    curve_models = [t.get_text() for t in curves.get_legend().get_texts() if t.get_text().startswith("w")]
    assert curve_models == models
    assert figures["multiplier"].axes[0].get_yscale() == "log"
