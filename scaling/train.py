"""`python -m scaling.train run.yaml [key=value ...]`: train one run and print where its record went."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scaling.errors import exits_cleanly
from scaling.records import Record
from scaling.spec import load_spec


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scaling.train", description=__doc__)
    parser.add_argument("spec", type=Path, help="run YAML (fields of scaling.spec.RunSpec)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. optim.lr=1e-3 samples_seen=50000")
    parser.add_argument("--out", type=Path, default=Path("outputs"), help="output root (default: outputs/)")
    parser.add_argument("--checkpoint-every-steps", type=int, default=None, help="also checkpoint every N steps")
    parser.add_argument("--checkpoint-every-s", type=float, default=300.0, help="checkpoint every S seconds")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def summary(record: Record) -> str:
    last = record.evals[-1]
    errors = ", ".join(f"{k} {v:.3f}" for k, v in last.zeroshot_error.items())
    return (
        f"val_loss {last.val_loss:.4f} | zero-shot error: {errors or 'n/a'} | "
        f"R@1 i2t {last.retrieval_r1['i2t']:.3f} | {last.compute_target:.3g} FLOPs | "
        f"{record.throughput['samples_per_s']:.0f} samples/s"
    )


@exits_cleanly
def main(argv: list[str] | None = None) -> Path:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    spec = load_spec(args.spec, args.overrides)
    from scaling.records import run_dir
    from scaling.run import Diverged, run

    if spec.reference is not None and spec.reference.run is not None:
        ref = spec.reference.run  # a reference defined in the spec is trained first, once, under the same root
        print(f"reference {ref.run_id}: {ref.describe()} ({ref.steps} steps)", flush=True)
        run(ref, args.out, progress=not args.no_progress)
    print(f"run {spec.run_id}: {spec.describe()} ({spec.steps} steps)", flush=True)
    path = run_dir(args.out, spec.run_id) / "record.json"
    try:
        record = run(
            spec,
            args.out,
            checkpoint_every_s=args.checkpoint_every_s,
            checkpoint_every_steps=args.checkpoint_every_steps,
            progress=not args.no_progress,
        )
    except Diverged as err:  # an expected way for a run to fail: one line, the record says failed
        print(f"run {spec.run_id} failed: {err}\nrecord: {path}", file=sys.stderr)
        raise SystemExit(1) from None
    print(summary(record))
    print(f"record: {path}")
    return path


if __name__ == "__main__":
    main()
