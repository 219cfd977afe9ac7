"""A small synthetic sweep written as run records (the schema `scaling.run` writes), whose errors follow known
power laws per method, so tests can check what `figures study` recovers, and notebooks can be run on it.

Layout as a real sweep: `<root>/runs/<run_id>/record.json` written as `scaling.records.Record`, run ids from the
real `RunSpec`, an in-sweep DRRho reference run (CLIP on another data seed) beside the grid, one failed run.
Final errors lie on E = a·C^b in the target's training compute C (lognormal noise); mid-run checkpoints lie
above the law, as cosine checkpoints do. No torch, no training: writing the sweep takes well under a second.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scaling.methods import METHODS
from scaling.records import Record, ReferenceInfo, run_dir
from scaling.spec import ReferenceSpec, RunSpec

# name: (params_total, params_nonembedding, flops_fwd_per_sample, flops_train_per_sample), from
# scaling/model_stats.json (vocab 64, the synthetic tokenizer).
MODELS = {
    "w32-l1": (34369, 32321, 3256448.0, 9575808.0),
    "w48-l2": (128065, 124993, 13047168.0, 38851200.0),
    "w64-l2": (221953, 217857, 22168064.0, 66117120.0),
    "w96-l3": (710209, 704065, 71038080.0, 212533632.0),
}
SAMPLES = (25_600, 51_200, 102_400)
POOL, BATCH = 20_000, 256
LAWS = {"clip": (8.0, -0.10), "drrho": (16.0, -0.13)}  # E = a·C^b on compute_target: drrho steeper, lower
EVAL_FRACTIONS = (0.1, 0.25, 0.5, 1.0)
MIDRUN_PENALTY = 0.25  # checkpoint at fraction f of a cosine run: law(C_f)·(1 + penalty·(1 − f))
TASK_SCALE = {"shape": 0.6, "colour": 0.5, "position": 0.8, "colour_shape": 1.0}
REFERENCE_MODEL, REFERENCE_SAMPLES = "w32-l1", 51_200


@dataclass(frozen=True)
class SyntheticSweep:
    """Where the sweep was written and what a correct analysis should find in it."""

    root: Path
    laws: dict[str, tuple[float, float]]
    reference_run_id: str | None
    runs: int  # finished runs of the grid (the reference and failed runs excluded)

    def multiplier(self, target: float, baseline: str = "clip", treatment: str = "drrho") -> float:
        """True k(E*) = C_baseline(E*) / C_treatment(E*) on target-only compute."""
        (a0, b0), (a1, b1) = self.laws[baseline], self.laws[treatment]
        return (target / a0) ** (1 / b0) / (target / a1) ** (1 / b1)


def _spec(method: str, model: str, samples: int, seed: int, reference: ReferenceSpec | None) -> RunSpec:
    lr = 1e-3 if model == "w96-l3" else 2e-3  # a per-model override, as sweeps/smoke.yaml has
    return RunSpec(
        method=method,
        model=model,
        data={"pool_size": POOL},
        samples_seen=samples,
        batch_size=BATCH,
        optim={"lr": lr},
        eval={"points": len(EVAL_FRACTIONS)},
        seed=seed,
        reference=reference,
    )


def _metrics(error: float) -> dict:
    """The evaluation's metrics around one colour_shape error."""
    return {
        "val_loss": 1.0 + 3.0 * error,
        "zeroshot_error": {task: min(0.99, scale * error) for task, scale in TASK_SCALE.items()},
        "retrieval_r1": {"i2t": 1.0 - error, "t2i": 1.0 - 0.9 * error},
    }


def _evals(spec: RunSpec, law: tuple[float, float], noise: float, ref_flops: float) -> list[dict]:
    """Evaluations at EVAL_FRACTIONS of training; the last lies on the law (times noise)."""
    flops = MODELS[spec.model][3]
    a, b = law
    out = []
    for f in EVAL_FRACTIONS:
        step = round(f * spec.steps)
        samples = step * spec.batch_size
        compute = samples * flops
        error = a * compute**b * (1 + MIDRUN_PENALTY * (1 - f)) * noise
        out.append(
            {
                "step": step,
                "samples_seen": samples,
                "epoch": samples / POOL,
                "compute_target": compute,
                "compute_reference": ref_flops,
                "wall_s": round(compute / 2e9, 3),
                "logit_scale": 14.0,
                **_metrics(error),
            }
        )
    return out


def _record(spec: RunSpec, evals: list[dict], reference: ReferenceInfo | None, status: str = "done") -> Record:
    return _record_of(spec.run_id, spec.model_dump(mode="json"), evals, reference, status)


def _record_of(
    run_id: str, spec: dict, evals: list[dict], reference: ReferenceInfo | None, status: str = "done"
) -> Record:
    params_total, params_nonembedding, fwd, train = MODELS[spec["model"]]
    return Record(
        run_id=run_id,
        spec=spec,
        status=status,
        error=None if status != "failed" else "RuntimeError: synthetic failure",
        model={
            "name": spec["model"],
            "params_total": params_total,
            "params_nonembedding": params_nonembedding,
            "flops_fwd_per_sample": fwd,
            "flops_train_per_sample": train,
        },
        reference=reference,
        evals=evals,
        env={"device": "cpu", "git_commit": None},
        throughput={"samples_per_s": 1000.0, "train_wall_s": evals[-1]["wall_s"] if evals else 0.0},
    )


def _write(root: Path, record: Record) -> None:
    directory = run_dir(root, record.run_id)
    directory.mkdir(parents=True, exist_ok=True)
    record.write(directory)


def _reference(root: Path, rng: np.random.Generator) -> tuple[ReferenceSpec, ReferenceInfo]:
    """Train-in-sweep reference: CLIP on another data seed; written as its own run, described for steering."""
    spec = RunSpec(
        model=REFERENCE_MODEL,
        data={"pool_size": POOL, "seed": 1},
        samples_seen=REFERENCE_SAMPLES,
        batch_size=BATCH,
        eval={"points": len(EVAL_FRACTIONS)},
    )
    evals = _evals(spec, LAWS["clip"], float(np.exp(rng.normal(0, 0.01))), 0.0)
    _write(root, _record(spec, evals, None))
    _, _, fwd, _ = MODELS[REFERENCE_MODEL]
    info = ReferenceInfo(
        name=f"run:{spec.run_id} ({REFERENCE_MODEL})",
        run_id=spec.run_id,
        arch=REFERENCE_MODEL,
        checksum="0123456789abcdef",
        params_total=MODELS[REFERENCE_MODEL][0],
        flops_fwd_per_sample=fwd,
        mode="cache",
        cache=str(root / "cache" / "0123456789abcdef"),
        metrics={k: evals[-1][k] for k in ("val_loss", "zeroshot_error", "retrieval_r1")},
    )
    return ReferenceSpec(run=spec), info


def write_sweep(
    root: str | Path,
    *,
    methods: tuple[str, ...] = ("clip", "drrho"),
    noise: float = 0.01,
    seed: int = 0,
    models: tuple[str, ...] = tuple(MODELS),
) -> SyntheticSweep:
    """Write the sweep under `root` and return what it holds. Two seeds at the smallest model (notes §3.1),
    one failed drrho run (status failed, ignored by the analysis)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    ref_spec, ref_info = _reference(root, rng) if "drrho" in methods else (None, None)
    ref_compute = MODELS[REFERENCE_MODEL][2] * POOL  # cache mode: the pool is embedded once
    runs = 0
    for method in methods:
        steered = method == "drrho"
        for model in models:
            for samples in SAMPLES:
                for run_seed in (0, 1) if model == models[0] else (0,):
                    spec = _spec(method, model, samples, run_seed, ref_spec if steered else None)
                    jitter = float(np.exp(rng.normal(0.0, noise)))
                    evals = _evals(spec, LAWS[method], jitter, ref_compute if steered else 0.0)
                    _write(root, _record(spec, evals, ref_info if steered else None))
                    runs += 1
    if "drrho" in methods:
        failed = _spec("drrho", models[-1], 2 * SAMPLES[-1], 0, ref_spec)
        _write(root, _record(failed, _evals(failed, LAWS["drrho"], 1.0, ref_compute)[:2], ref_info, "failed"))
    return SyntheticSweep(root, dict(LAWS), ref_spec.run.run_id if ref_spec else None, runs)


POOL_SWEEP = {
    "pools": (2_000, 4_000, 8_000, 16_000, 32_000),  # the targets' unique pools n
    "references": (4_000, 16_000, 64_000),  # the references' pools m (CLIP, data seed 1)
    "clip": (2.0, -0.3),  # E = a·n^b for CLIP targets and the references alike: CLIP's n*(m) = m
    "drrho": (-0.4, 30.0),  # steered by the reference of pool m: E = E_ref·(n / (30·√m))^-0.4, n* = 30·√m
}


def write_pool_sweep(root: str | Path, *, models: tuple[str, ...] = (REFERENCE_MODEL,)) -> Path:
    """A data-axis sweep as records: CLIP references (of the first model) on pools m, CLIP targets and DRRho
    targets (one per reference) on pools n, errors exactly on the laws of POOL_SWEEP (no noise) at the first
    model, so n*(m) is known there; each further model's targets err 10% less than the previous one's."""
    root = Path(root)
    (a, b), (b_drrho, c_drrho) = POOL_SWEEP["clip"], POOL_SWEEP["drrho"]

    def spec(
        method: str, pool: int, data_seed: int = 0, reference: ReferenceSpec | None = None, model: str = models[0]
    ) -> RunSpec:
        return RunSpec(
            method=method,
            model=model,
            data={"pool_size": pool, "seed": data_seed},
            samples_seen=SAMPLES[0],
            batch_size=BATCH,
            eval={"points": 1},
            reference=reference,
        )

    def write(run: RunSpec, error: float, info: ReferenceInfo | None) -> None:
        ev = {"step": run.steps, "samples_seen": SAMPLES[0], "compute_target": 1e12, "compute_reference": 0.0}
        ev["wall_s"] = 1.0
        _write(root, _record(run, [{**ev, **_metrics(error)}], info))

    refs = []
    for m in POOL_SWEEP["references"]:
        ref = spec("clip", m, data_seed=1)
        write(ref, a * m**b, None)
        info = ReferenceInfo(name=f"run:{ref.run_id} ({models[0]})", run_id=ref.run_id, arch=models[0], mode="cache")
        refs.append((m, a * m**b, ReferenceSpec(run=ref), info))
    for i, model in enumerate(models):
        for n in POOL_SWEEP["pools"]:
            write(spec("clip", n, model=model), 0.9**i * a * n**b, None)
            for m, e_ref, ref, info in refs:
                error = 0.9**i * e_ref * (n / (c_drrho * m**0.5)) ** b_drrho
                write(spec("drrho", n, reference=ref, model=model), error, info)
    return root


# The baselines sweep: every method's final error is its factor times CLIP's on the same configuration and seed,
# (at matched target compute, at matched samples seen); only the selecting methods' two differ (JEST trains on a
# fifth of what it loads). Not the paper's numbers: chosen so each comparison has a known answer.
BASELINE_FACTORS = {
    "clip": (1.0, 1.0),
    "fastclip": (1.0, 1.0),
    "jest": (1.10, 1.30),
    "jest_topk": (1.05, 1.25),
    "drrho": (0.90, 0.90),
    "clip_distill": (0.97, 0.97),
    "fastclip_distill": (0.96, 0.96),
    "drrho_distill": (0.88, 0.88),
}
BASELINE_MODELS, BASELINE_SAMPLES = ("w32-l1", "w48-l2"), (25_600, 51_200)
SELECTING = ("jest", "jest_topk")
FILTER_RATIO = 0.8  # JEST loads batch/(1 − f) examples per step and trains on batch


@dataclass(frozen=True)
class BaselinesSweep:
    """Where the baselines sweep was written and the error factors (vs CLIP) it was built with."""

    root: Path
    factors: dict[str, tuple[float, float]]
    reference_name: str | None


def _baseline_spec(key: str, model: str, samples: int, seed: int, reference: ReferenceSpec | None) -> dict:
    """A run spec as JSON with method `key`. Written from a clip or drrho spec with the method field set, so the
    generator does not depend on which methods the trainer's RunSpec accepts; JEST's spec says it counts loaded
    examples as samples seen, as the official code does."""
    base = RunSpec(
        method="drrho" if reference else "clip",
        model=model,
        data={"pool_size": POOL},
        samples_seen=samples,
        batch_size=BATCH,
        eval={"points": 1},
        seed=seed,
        reference=reference,
    ).model_dump(mode="json")
    base["method"] = key
    if key in SELECTING:
        base["selection"] = {"filter_ratio": FILTER_RATIO, "samples_seen_counts": "loaded"}
    return base


def _baseline_run(spec: dict, error: float, info: ReferenceInfo | None, ref_compute: float) -> Record:
    """A finished run with one (final) evaluation at `error`; JEST's compute includes its scoring forwards."""
    _, _, fwd, train = MODELS[spec["model"]]
    loaded = spec["samples_seen"]
    trained = loaded * (1 - FILTER_RATIO) if spec.get("selection") else loaded
    compute = trained * train + (loaded * fwd if spec.get("selection") else 0.0)
    evaluation = {
        "step": round(trained / BATCH),
        "samples_seen": loaded,
        "samples_loaded": loaded,
        "samples_trained": round(trained),
        "compute_target": compute,
        "compute_reference": ref_compute,
        "wall_s": round(compute / 2e9, 3),
        **_metrics(error),
    }
    run_id = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    return _record_of(run_id, spec, [evaluation], info)


def matched_compute_samples(model: str, samples: int) -> int:
    """Samples JEST loads (whole super-batches) for the target compute of CLIP seeing `samples`."""
    _, _, fwd, train = MODELS[model]
    super_batch = round(BATCH / (1 - FILTER_RATIO))
    return super_batch * round(samples * train / ((1 - FILTER_RATIO) * train + fwd) / super_batch)


def write_baselines_sweep(
    root: str | Path,
    *,
    factors: dict[str, tuple[float, float]] = BASELINE_FACTORS,
    seed_noise: float = 0.05,
    noise: float = 0.002,
    seed: int = 0,
) -> BaselinesSweep:
    """Every method of `factors` on BASELINE_MODELS × BASELINE_SAMPLES × seeds 0 and 1, steered ones by one
    in-sweep reference. CLIP's error lies on LAWS["clip"]; a seed shares a lognormal effect (`seed_noise`) across
    methods (same initialisation and data order), so pairing by seed removes it; each run adds its own `noise`.
    Selecting methods run twice: at matched target compute and at matched samples seen (loaded)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    steering = any(METHODS[key].needs_reference for key in factors)
    ref_spec, ref_info = _reference(root, rng) if steering else (None, None)
    ref_compute = MODELS[REFERENCE_MODEL][2] * POOL
    a, b = LAWS["clip"]
    for model, samples, run_seed in itertools.product(BASELINE_MODELS, BASELINE_SAMPLES, (0, 1)):
        clip_error = a * (samples * MODELS[model][3]) ** b * float(np.exp(rng.normal(0.0, seed_noise)))
        for key, (at_compute, at_samples) in factors.items():
            steered = METHODS[key].needs_reference
            views = {matched_compute_samples(model, samples): at_compute, samples: at_samples}
            for seen, factor in views.items() if key in SELECTING else [(samples, at_samples)]:
                spec = _baseline_spec(key, model, seen, run_seed, ref_spec if steered else None)
                error = factor * clip_error * float(np.exp(rng.normal(0.0, noise)))
                _write(root, _baseline_run(spec, error, ref_info if steered else None, ref_compute * steered))
    return BaselinesSweep(root, dict(factors), ref_info.name if ref_info else None)
