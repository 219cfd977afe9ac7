"""The grids shipped in sweeps/ validate and plan what their comments promise (dry runs: nothing is written)."""

import subprocess
import sys
from pathlib import Path

import pytest

from scaling.grid import load_grid
from scaling.methods import METHODS
from scaling.plan import build_tasks

SWEEPS = Path(__file__).resolve().parents[2] / "sweeps"


def dry_run(name: str, *overrides: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "scaling.sweep", str(SWEEPS / name), *overrides, "--dry-run"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=SWEEPS.parent,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def runs_by(name: str) -> dict[tuple[str, str], list[int]]:
    expansion = load_grid(SWEEPS / name)
    table: dict[tuple[str, str], list[int]] = {}
    for spec in expansion.runs:
        table.setdefault((spec.method, spec.model), []).append(spec.samples_seen)
    return table


def test_paper_grid_is_the_papers_eleven_configurations_per_method():
    assert "nothing written" in dry_run("paper_dfn.yaml")
    table = runs_by("paper_dfn.yaml")
    for method in ("clip", "drrho"):
        assert (
            sorted(table[(method, "ViT-B-32")])
            == sorted(table[(method, "ViT-B-16")])
            == [640_000_000, 1_280_000_000, 2_560_000_000, 5_120_000_000]
        )
        assert sorted(table[(method, "ViT-L-14")]) == [640_000_000, 1_280_000_000, 2_560_000_000]
    steered = next(s for s in load_grid(SWEEPS / "paper_dfn.yaml").runs if s.method == "drrho")
    assert (steered.reference.pretrained, steered.reference.model) == ("openai", "ViT-B-32")
    assert (steered.loss.tau, steered.loss.learn_tau, steered.batch_size) == (0.01, False, 5120)


def test_paper_grid_measures_imagenet_in_amp_bf16_and_scales_out_with_nodes():
    expansion = load_grid(SWEEPS / "paper_dfn.yaml")
    assert all(s.precision == "amp_bf16" and s.eval.imagenet for s in expansion.runs)
    assert {s.model for s in expansion.runs if s.grad_checkpointing} == {"ViT-L-14"}
    assert expansion.grid.analysis.y == "zeroshot_error.imagenet"
    assert "1 node(s) x 8 GPU(s) = 8 GPUs per run" in dry_run("paper_dfn.yaml")
    assert "2 node(s) x 8 GPU(s) = 16 GPUs per run" in dry_run("paper_dfn.yaml", "executor.nodes=2")


@pytest.mark.parametrize("name", ["demo.yaml", "cpu_study.yaml", "smoke.yaml"])
def test_cpu_grids_compare_both_methods_on_the_same_configurations(name):
    plan = dry_run(name)
    assert "executor:" in plan
    table = runs_by(name)
    models = {m for _, m in table}
    for model in models:
        assert sorted(table[("clip", model)]) == sorted(table[("drrho", model)])
    if name == "demo.yaml":
        assert len(models) >= 3 and all(len(set(v)) >= 3 for v in table.values())
        (reference,) = load_grid(SWEEPS / name).references  # like the paper: cleaner, other pool, longer
        target = next(s for s in load_grid(SWEEPS / name).runs if s.method == "drrho")
        assert reference.data.seed != target.data.seed
        assert reference.data.caption_noise < target.data.caption_noise
        assert reference.samples_seen > max(max(budgets) for budgets in table.values())


def test_paper_baselines_grid_is_the_tables_eight_methods_on_a_vit_b16_target():
    assert "nothing written" in dry_run("paper_baselines.yaml")
    expansion = load_grid(SWEEPS / "paper_baselines.yaml")
    assert {s.method for s in expansion.runs} == set(METHODS)
    assert {(s.model, s.samples_seen, s.steps) for s in expansion.runs} == {("ViT-B-16", 1_280_000_000, 250_000)}
    references = {(s.reference.model, s.reference.pretrained) for s in expansion.runs if s.reference is not None}
    assert references == {("ViT-B-32", "openai"), ("ViT-B-16", "dfn2b"), ("ViT-L-14", "dfn2b")}  # the 3 columns
    assert len(expansion.runs) == 2 + 6 * 3  # OpenCLIP and FastCLIP read no reference: one run each
    assert sum(task.role == "cache" for task in build_tasks(expansion)) == 3  # one cache per reference
    jest = next(s for s in expansion.runs if s.method == "jest")
    assert (jest.batch_size, jest.loaded_batch_size) == (1024, 5120)  # the code's 640 a GPU loaded, 128 trained


def test_cpu_baselines_grid_runs_every_method_at_matched_samples_and_jest_also_at_matched_compute():
    from scaling.models import model_stats
    from scaling.selection import target_flops

    assert "nothing written" in dry_run("cpu_baselines.yaml")
    expansion = load_grid(SWEEPS / "cpu_baselines.yaml")
    (reference,) = expansion.references
    assert reference.data.seed != expansion.runs[0].data.seed
    table = runs_by("cpu_baselines.yaml")
    assert {method for method, _ in table} == set(METHODS) and {model for _, model in table} == {"w32-l1", "w48-l2"}
    for model in ("w32-l1", "w48-l2"):
        clip = table[("clip", model)]
        assert len(set(clip)) == 2 and len(clip) == 4  # 2 budgets x 2 seeds
        for m in METHODS:  # every method at CLIP's samples seen; JEST at 2 more budgets of matched compute
            assert set(clip) <= set(table[(m, model)]) and len(table[(m, model)]) == (8 if METHODS[m].selects else 4)
    for spec in expansion.runs:
        clip = table[("clip", spec.model)]
        if not METHODS[spec.method].selects or spec.samples_seen in clip:
            continue  # the matched-samples runs; the others must match a CLIP budget's target compute
        train, forward = model_stats(spec.model).flops_train_per_sample, model_stats(spec.model).flops_fwd_per_sample
        jest = target_flops(spec.steps * spec.batch_size, spec.samples_seen, train, forward)
        ratios = [jest / (budget * train) for budget in set(clip)]
        assert min(abs(r - 1) for r in ratios) < 0.03, (spec.method, spec.samples_seen, ratios)


def test_the_data_efficiency_grid_trains_four_references_per_seed_and_steers_only_drrho_with_them():
    expansion = load_grid(SWEEPS / "cpu_data_efficiency.yaml")
    refs = expansion.references
    assert sorted(r.data.pool_size for r in refs) == [256, 256, 1024, 1024, 4096, 4096, 8192, 8192]  # 1.5 decades
    assert {(r.model, r.method, r.data.seed) for r in refs} == {("w32-l1", "clip", 1)}  # the other pool
    assert sorted(r.seed for r in refs) == [0] * 4 + [1] * 4
    table = runs_by("cpu_data_efficiency.yaml")
    pools = 6  # n = 256 - 8,192
    assert len(table[("clip", "w32-l1")]) == len(table[("fastclip", "w32-l1")]) == 2 * pools  # per pool and seed
    assert len(table[("clip", "w16-l1")]) == len(table[("fastclip", "w16-l1")]) == pools
    assert len(table[("drrho", "w32-l1")]) == 2 * 4 * pools  # per seed, reference and pool
    steered = [s for s in expansion.runs if s.method == "drrho"]
    assert all(s.reference.run.seed == s.seed for s in steered)  # each seed's own references
    smaller = [s for s in steered if s.model == "w16-l1"]
    assert {s.reference.run.data.pool_size for s in smaller} == {256, 8192}  # the smallest and largest reference
    assert {s.data.seed for s in expansion.runs} == {0}
    # each pool's length is the length check's (tests/results/test_committed.py), the same for every method
    assert len({(s.data.pool_size, s.samples_seen) for s in (*expansion.runs, *refs)}) == pools
