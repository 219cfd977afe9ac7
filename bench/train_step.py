"""Our training step vs open_clip_train's `train_one_epoch`, same model, batch, data and setting, in one process.

A setting is a precision (open_clip_train's names) and torch.compile on or off. For each model the bench times,
in alternating rounds: our step in fp32, our step under the setting, and open_clip_train's under the same
setting. It prints samples/s (best of rounds), ours / open_clip_train (goal ≥ 1.0) with the median of the
per-round ratios (robust to drift of a shared VM), the setting's speed-up over fp32 (goal ≥ 1.5x for amp_bf16),
and achieved GFLOP/s against the machine's matmul peak in the setting's dtype, measured in the same run.

    python bench/train_step.py [--models w128-l4 w192-l6] [--precision amp_bf16] [--compile]
                               [--batch 256] [--steps 8] [--rounds 3] [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import math
import tempfile
import time
from types import SimpleNamespace

import torch
from open_clip.loss import ClipLoss
from open_clip_train.train import train_one_epoch

from scaling.data.loader import StepBatches
from scaling.run import Run, make_optimizer
from scaling.spec import RunSpec, parse_spec

WARMUP = 3


def matmul_peak_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """Best-of GEMM throughput in `dtype`: the ceiling any training step in that dtype can reach here."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    best = math.inf
    for _ in range(repeats):
        tick = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - tick)
    return 2 * n**3 / best / 1e9


def ours(run: Run, steps: int) -> float:
    """Seconds per step of `Run.train_step` (batch preparation included), after warm-up."""
    batches = StepBatches(run.source, run.spec, run.world)
    for s in range(WARMUP):
        run.train_step(s, batches[s])
    tick = time.perf_counter()
    for s in range(WARMUP, WARMUP + steps):
        run.train_step(s, batches[s])
    return (time.perf_counter() - tick) / steps


class _Loader(list):
    """The minimum `train_one_epoch` asks of a dataloader."""

    num_batches = property(len)
    num_samples = property(lambda self: sum(len(b[0]) for b in self))


def peer(run: Run, steps: int) -> float:
    """Seconds per step of open_clip_train.train_one_epoch on the same batches, a model copy and optimiser,
    with its own --precision and --torchcompile handling of the same setting."""
    model = copy.deepcopy(run.model)
    optimizer = make_optimizer(model, run.spec)
    if run.spec.compile:
        model = torch.compile(model)  # what open_clip_train's main does with --torchcompile
    batches = StepBatches(run.source, run.spec, run.world)
    loader = _Loader((b.images, b.tokens) for b in (batches[s] for s in range(WARMUP + steps)))
    data = {"train": SimpleNamespace(dataloader=loader, set_epoch=lambda epoch: None)}
    args = SimpleNamespace(
        device="cpu",
        precision=run.spec.precision,
        distill=False,
        accum_freq=1,
        skip_scheduler=True,
        grad_clip_norm=None,
        horovod=False,
        rank=0,
        local_rank=0,
        world_size=1,
        log_every_n_steps=10**9,
        wandb=False,
        batch_size=0,
        save_logs=False,
    )
    scaler = torch.amp.GradScaler("cpu") if run.spec.precision == "amp_fp16" else None
    step_times: list[float] = []
    original = optimizer.step

    def timed_step(*a, **k):
        out = original(*a, **k)
        step_times.append(time.perf_counter())
        return out

    optimizer.step = timed_step
    start = time.perf_counter()
    train_one_epoch(model, data, ClipLoss(), 0, optimizer, scaler, None, None, args)
    times = [start, *step_times]
    return (times[-1] - times[WARMUP]) / steps


def bench(model: str, setting: dict, args: argparse.Namespace, peaks: dict[str, float]) -> dict:
    base = {
        "model": model,
        "batch_size": args.batch,
        "samples_seen": args.batch * 1000,
        "data": {"pool_size": args.batch * 20, "eval_size": 64, "workers": 0},
    }
    specs = {"fp32": parse_spec(base), "setting": parse_spec({**base, **setting})}
    times: dict[str, list[float]] = {"fp32": [], "setting": [], "peer": []}
    with tempfile.TemporaryDirectory() as out:
        runs = {name: Run(spec, out, progress=False) for name, spec in specs.items()}
        for run in runs.values():  # generate the pool once per run: every side then reads cached samples
            for s in range(WARMUP + args.steps):
                StepBatches(run.source, run.spec, run.world)[s]
        sides = [
            ("fp32", lambda: ours(runs["fp32"], args.steps)),
            ("setting", lambda: ours(runs["setting"], args.steps)),
            ("peer", lambda: peer(runs["setting"], args.steps)),
        ]
        for r in range(args.rounds):  # alternate the order, so drift (heat, neighbours) does not favour one side
            for name, fn in sides if r % 2 == 0 else sides[::-1]:
                times[name].append(fn())
    stats = runs["fp32"].stats
    best = {name: args.batch / min(t) for name, t in times.items()}
    vs_peer = sorted(p / s for s, p in zip(times["setting"], times["peer"], strict=True))
    flops = stats.flops_train_per_sample * best["setting"] / 1e9
    return {
        "model": model,
        "params": stats.params_nonembedding,
        **best,
        "vs_peer": best["setting"] / best["peer"],
        "median_round_vs_peer": vs_peer[len(vs_peer) // 2],
        "vs_fp32": best["setting"] / best["fp32"],
        "gflops": flops,
        "peak_frac": flops / peaks[specs["setting"].precision],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["w128-l4", "w192-l6"])
    parser.add_argument("--precision", default="fp32", choices=RunSpec.model_fields["precision"].annotation.__args__)
    parser.add_argument("--compile", action="store_true", help="torch.compile both sides")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per side; the best is kept")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads (default: torch's); 1 gives per-core figures that a busy machine distorts far less, "
        "since a descheduled OpenMP thread stalls every parallel region of the others",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    setting = {"precision": args.precision, "compile": args.compile}
    dtype = {"fp32": torch.float32, "amp_fp16": torch.float16}.get(args.precision, torch.bfloat16)
    peaks = {"fp32": matmul_peak_gflops(torch.float32)}
    peaks[args.precision] = matmul_peak_gflops(dtype)  # fp16 GEMMs are emulated, hence very slow, on most CPUs
    shown = ", ".join(f"{k} {v:.1f}" for k, v in peaks.items())
    print(f"matmul peak (2048², {torch.get_num_threads()} threads): {shown} GFLOP/s")
    name = f"{args.precision}{' +compile' if args.compile else ''}"
    print(f"setting: {name}; ours = our step under it, peer = open_clip_train's under it, fp32 = our plain step")
    print(
        f"{'model':<9} {'params':>10} {'fp32 s/s':>9} {'ours s/s':>9} {'peer s/s':>9} {'ours/peer':>9} "
        f"{'median round':>12} {'ours/fp32':>9} {'GFLOP/s':>8} {'% peak':>7}"
    )
    for model in args.models:
        r = bench(model, setting, args, peaks)
        print(
            f"{r['model']:<9} {r['params']:>10,} {r['fp32']:>9.0f} {r['setting']:>9.0f} {r['peer']:>9.0f} "
            f"{r['vs_peer']:>9.2f} {r['median_round_vs_peer']:>12.2f} {r['vs_fp32']:>9.2f} {r['gflops']:>8.1f} "
            f"{100 * r['peak_frac']:>6.0f}%"
        )


if __name__ == "__main__":
    main()
