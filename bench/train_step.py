"""Our training step vs open_clip_train's `train_one_epoch`, same model, batch and data, in one process.

Prints samples/s of each (best of alternating rounds) and their ratio (goal ≥ 1.0), the median of the
per-round ratios (robust to drift of a shared VM), and achieved GFLOP/s against the machine's fp32 matmul peak
measured in the same run (goal ≥ 50 % for models of ≥ 1 M parameters).

    python bench/train_step.py [--models w64-l2 w128-l4 w192-l6] [--batch 256] [--steps 8] [--rounds 3]
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

from scaling.data.loader import StepBatches, batch_indices
from scaling.run import Run, make_optimizer
from scaling.spec import parse_spec

WARMUP = 3


def matmul_peak_gflops(n: int = 2048, repeats: int = 10) -> float:
    """Best-of fp32 GEMM throughput: the ceiling any training step on this machine can reach."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    best = math.inf
    for _ in range(repeats):
        tick = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - tick)
    return 2 * n**3 / best / 1e9


def ours(run: Run, steps: int) -> float:
    """Seconds per step of `Run.train_step` (data fetch included), after warm-up."""
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
    """Seconds per step of open_clip_train.train_one_epoch on the same batches, model copy and optimiser."""
    model = copy.deepcopy(run.model)
    optimizer = make_optimizer(model, run.spec)
    batches = [run.source.batch(batch_indices(run.spec, len(run.source), s)) for s in range(WARMUP + steps)]
    loader = _Loader((b.images, b.tokens) for b in batches)
    data = {"train": SimpleNamespace(dataloader=loader, set_epoch=lambda epoch: None)}
    args = SimpleNamespace(
        device="cpu", precision="fp32", distill=False, accum_freq=1, skip_scheduler=True, grad_clip_norm=None,
        horovod=False, rank=0, local_rank=0, world_size=1, log_every_n_steps=10**9, wandb=False, batch_size=0,
        save_logs=False,
    )
    step_times: list[float] = []
    original = optimizer.step

    def timed_step(*a, **k):
        out = original(*a, **k)
        step_times.append(time.perf_counter())
        return out

    optimizer.step = timed_step
    start = time.perf_counter()
    train_one_epoch(model, data, ClipLoss(), 0, optimizer, None, None, None, args)
    times = [start, *step_times]
    return (times[-1] - times[WARMUP]) / steps


def bench(model: str, batch: int, steps: int, rounds: int, peak: float) -> dict:
    spec = parse_spec({"model": model, "batch_size": batch, "samples_seen": batch * 1000,
                       "data": {"pool_size": batch * 20, "eval_size": 64}})
    with tempfile.TemporaryDirectory() as out:
        run = Run(spec, out, progress=False)
        for s in range(WARMUP + steps):  # generate the pool once: both sides then read the same cached samples
            run.source.batch(batch_indices(spec, len(run.source), s))
        ours_times, peer_times = [], []
        for r in range(rounds):  # alternate which goes first, so drift (heat, memory) does not favour one side
            pair = ((ours, ours_times), (peer, peer_times))
            for fn, times in pair if r % 2 == 0 else pair[::-1]:
                times.append(fn(run, steps))
        ours_s, peer_s = min(ours_times), min(peer_times)  # best-of, like the matmul peak
        paired = sorted(p / o for o, p in zip(ours_times, peer_times, strict=True))  # per-round: drift cancels
    flops = run.stats.flops_train_per_sample * batch
    return {
        "model": model,
        "params": run.stats.params_nonembedding,
        "ours": batch / ours_s,
        "peer": batch / peer_s,
        "round_ratio": paired[len(paired) // 2],
        "gflops": flops / ours_s / 1e9,
        "peak_frac": flops / ours_s / 1e9 / peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["w64-l2", "w128-l4", "w192-l6"])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per side; the best is kept")
    args = parser.parse_args()
    peak = matmul_peak_gflops()
    print(f"fp32 matmul peak (2048², {torch.get_num_threads()} threads): {peak:.1f} GFLOP/s")
    print(f"{'model':<9} {'params':>10} {'ours s/s':>9} {'peer s/s':>9} {'ratio':>6} {'median round ratio':>18} "
          f"{'GFLOP/s':>8} {'% peak':>7}")
    for name in args.models:
        r = bench(name, args.batch, args.steps, args.rounds, peak)
        print(
            f"{r['model']:<9} {r['params']:>10,} {r['ours']:>9.0f} {r['peer']:>9.0f} {r['ours'] / r['peer']:>6.2f} "
            f"{r['round_ratio']:>18.2f} {r['gflops']:>8.1f} {100 * r['peak_frac']:>6.0f}%"
        )


if __name__ == "__main__":
    main()
