"""`python -m scaling.train run.yaml [key=value ...]`: train one run and print where its record went."""

from __future__ import annotations

import argparse
import signal
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
    return parser.parse_intermixed_args(argv)  # overrides may come after the flags


def summary(record: Record) -> str:
    last = record.evals[-1]
    errors = ", ".join(f"{k} {v:.3f}" for k, v in last.zeroshot_error.items())
    return (
        f"val_loss {last.val_loss:.4f} | zero-shot error: {errors or 'n/a'} | "
        f"R@1 i2t {last.retrieval_r1['i2t']:.3f} | {last.compute_target:.3g} FLOPs | "
        f"{record.throughput['samples_per_s']:.0f} samples/s"
    )


def _interrupted(signum: int, frame: object) -> None:
    """SIGTERM and SIGHUP stop a run like Ctrl-C does: its record says failed (interrupted), never running."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


@exits_cleanly
def main(argv: list[str] | None = None) -> Path:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    spec = load_spec(args.spec, args.overrides)
    from scaling.errors import ConfigError
    from scaling.grid import out_problem
    from scaling.runtime import check_memory, machine_memory_gb

    if problem := out_problem(Path(args.out)):
        raise ConfigError(f"--out: {problem}")

    check_memory([spec], lambda model: machine_memory_gb(), "this machine's memory")
    from scaling.records import run_dir
    from scaling.run import Diverged, run

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupted)

    options = {"checkpoint_every_s": args.checkpoint_every_s, "checkpoint_every_steps": args.checkpoint_every_steps}
    steps = [(spec, options)]
    if spec.reference is not None and spec.reference.run is not None:
        steps.insert(0, (spec.reference.run, {}))  # a reference defined in the spec is trained first, once
    for one, extra in steps:
        role = "run" if one is spec else "reference"
        print(f"{role} {one.run_id}: {one.describe()} ({one.steps} steps)", flush=True)
        path = run_dir(args.out, one.run_id) / "record.json"
        try:
            record = run(one, args.out, progress=not args.no_progress, **extra)
        except (Diverged, KeyboardInterrupt) as err:  # expected ends: one line; the record says failed
            why = f"interrupted ({err or 'SIGINT'})" if isinstance(err, KeyboardInterrupt) else str(err)
            print(f"run {one.run_id} failed: {why}; record: {path}", file=sys.stderr)
            raise SystemExit(130 if isinstance(err, KeyboardInterrupt) else 1) from None
    print(summary(record))
    print(f"record: {path}")
    return path


if __name__ == "__main__":
    main()
