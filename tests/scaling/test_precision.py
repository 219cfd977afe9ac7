"""precision, grad_checkpointing and compile: the same training within each precision's tolerance, exact resume."""

import pytest
import torch

from scaling.data.loader import step_loader
from scaling.run import Run, run
from scaling.spec import parse_spec

from .test_distributed import _without_key_bias

TINY = {
    "model": "w32-l1",
    "samples_seen": 32 * 12,
    "batch_size": 32,
    "data": {"pool_size": 256, "eval_size": 128, "workers": 0},
    "eval": {"points": 2},
}
# Relative tolerance of the first steps' losses against fp32: bf16 keeps 8 mantissa bits, fp16 11.
OPTIONS = [
    pytest.param({"precision": "amp_bf16"}, 2e-2, id="amp_bf16"),
    pytest.param({"precision": "amp_fp16"}, 5e-3, id="amp_fp16"),
    pytest.param({"precision": "pure_bf16"}, 3e-2, id="pure_bf16"),
    pytest.param({"grad_checkpointing": True}, 0.0, id="grad_checkpointing"),  # the same arithmetic, redone
    pytest.param({"compile": True}, 1e-5, id="compile", marks=pytest.mark.slow),
]


def first_losses(options: dict, steps: int = 3) -> list[float]:
    spec = parse_spec({**TINY, **options})
    trainer = Run(spec, "unused", progress=False)
    batches = step_loader(trainer.source, spec, trainer.world)
    return [trainer.train_step(step, batch) for step, batch in zip(range(steps), batches, strict=False)]


@pytest.mark.parametrize(("options", "rel"), OPTIONS)
def test_first_steps_match_fp32_within_the_precision_tolerance(options, rel):
    assert first_losses(options) == pytest.approx(first_losses({}), rel=rel, abs=0)


def test_the_defaults_keep_earlier_run_ids_and_other_settings_get_their_own():
    plain = parse_spec(TINY)
    assert "precision" not in plain.canonical_json() and "workers" not in plain.canonical_json()
    assert parse_spec({**TINY, "precision": "amp_bf16"}).run_id != plain.run_id
    assert parse_spec({**TINY, "grad_checkpointing": True}).run_id == plain.run_id


@pytest.mark.slow
def test_a_short_amp_bf16_run_ends_within_the_seed_noise_of_fp32(tmp_path):
    base = {**TINY, "samples_seen": 64 * 60, "batch_size": 64, "data": {"pool_size": 2000, "eval_size": 256}}
    final = {}
    for name, options in {"fp32": {}, "fp32 seed 1": {"seed": 1}, "amp_bf16": {"precision": "amp_bf16"}}.items():
        final[name] = run(parse_spec({**base, **options}), tmp_path, progress=False).model_dump()["evals"][-1]
    for metric in ("val_loss", "colour"):
        value = {k: e["val_loss"] if metric == "val_loss" else e["zeroshot_error"]["colour"] for k, e in final.items()}
        noise = max(abs(value["fp32"] - value["fp32 seed 1"]), 0.02 * abs(value["fp32"]))
        assert abs(value["amp_bf16"] - value["fp32"]) <= 2 * noise, (metric, value)


class Interrupted(Run):
    """A run killed (KeyboardInterrupt: no record is written) when it reaches `stop`, after a checkpoint."""

    stop = 7

    def train_step(self, step, batch):
        if step == self.stop:
            raise KeyboardInterrupt
        return super().train_step(step, batch)


@pytest.mark.parametrize(
    "options",
    [
        {"precision": "amp_bf16"},
        {"precision": "amp_fp16"},
        {"precision": "pure_bf16"},
        {"grad_checkpointing": True},
        pytest.param({"compile": True}, marks=pytest.mark.slow),
    ],
    ids=lambda o: next(iter(o)) if "precision" not in o else o["precision"],
)
def test_each_option_resumes_exactly(tmp_path, options):
    spec = parse_spec({**TINY, **options})
    torch._dynamo.reset()  # each run compiles afresh, as a new process would (a reused graph may be a dynamic one)
    whole = run(spec, tmp_path / "whole", progress=False).model_dump()
    torch._dynamo.reset()
    with pytest.raises(KeyboardInterrupt):
        Interrupted(spec, tmp_path / "resumed", checkpoint_every_steps=1, progress=False).train()
    torch._dynamo.reset()
    resumed = run(spec, tmp_path / "resumed", progress=False).model_dump()
    a, b = (
        torch.load(tmp_path / d / "runs" / spec.run_id / "model.pt", weights_only=True) for d in ("whole", "resumed")
    )
    if spec.compile:  # two fresh compilations of one run already differ in the last bits (measured): close
        assert resumed["evals"][-1]["val_loss"] == pytest.approx(whole["evals"][-1]["val_loss"], rel=1e-5)
        far = [k for k in a if not torch.allclose(_without_key_bias(k, a[k]), _without_key_bias(k, b[k]), atol=1e-6)]
        assert not far, far
        return
    strip = lambda r: [{k: v for k, v in e.items() if k != "wall_s"} for e in r["evals"]]  # noqa: E731
    assert strip(resumed) == strip(whole)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_amp_fp16_scaler_state_travels_in_the_checkpoint(tmp_path):
    spec = parse_spec({**TINY, "precision": "amp_fp16"})
    with pytest.raises(KeyboardInterrupt):
        Interrupted(spec, tmp_path, checkpoint_every_steps=1, progress=False).train()
    blob = torch.load(tmp_path / "runs" / spec.run_id / "checkpoint.pt", weights_only=True)
    assert blob["scaler"]["_growth_tracker"] == Interrupted.stop  # steps without overflow: it resumes from there


def test_pure_bf16_keeps_bf16_weights():
    trainer = Run(parse_spec({**TINY, "precision": "pure_bf16"}), "unused", progress=False)
    assert {p.dtype for p in trainer.model.parameters()} == {torch.bfloat16}
