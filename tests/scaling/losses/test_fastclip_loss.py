"""method 'fastclip': global contrastive loss with the u estimator, checked against the spec's formulas."""

from __future__ import annotations

import io
import math

import pytest
import torch

from scaling.losses import build_loss, gamma_at
from scaling.spec import LossSpec

from .formulas import SlowGlobalContrastive
from .harness import assert_two_ranks_match_single_process, make_steps, run_steps

DATA_SIZE = 10
# Four steps over epochs 0–3; batches overlap, so later steps read u written earlier and some indices are new.
STEPS = {
    "indices": [[0, 1, 2, 3, 4, 5], [3, 4, 5, 6, 7, 8], [6, 7, 8, 9, 0, 1], [2, 4, 6, 8, 9, 1]],
    "epochs": [0, 1, 2, 3],
    "scales": [1 / 0.07, 1 / 0.05, 1 / 0.03, 1 / 0.02],
}
PARAMS = LossSpec(tau=0.07, learn_tau=True, eps=1e-2, rho=2.0, gamma=0.4, gamma_decay_epochs=2)
# γ of epochs 0..3 by spec §2d: 1 at epoch 0, ½(1 + cos(π·1/2))·(1 − 0.4) + 0.4 = 0.7, then γ_final.
GAMMAS = [1.0, 0.7, 0.4, 0.4]


def leaves(step) -> list[torch.Tensor]:
    """Fresh float64 leaves (image, text, logit_scale) of a step: each implementation gets its own graph."""
    scale = torch.tensor(step.logit_scale, dtype=torch.float64)
    return [t.clone().requires_grad_() for t in (step.image, step.text, scale)]


def test_value_gradients_and_tables_match_the_formulas_over_steps_with_memory() -> None:
    loss = build_loss("fastclip", PARAMS, DATA_SIZE).double()
    slow = SlowGlobalContrastive(eps=PARAMS.eps, rho=PARAMS.rho)
    for step, gamma in zip(make_steps(seed=0, **STEPS), GAMMAS, strict=True):
        ours, theirs = leaves(step), leaves(step)
        value = loss(*ours, step.index, step.epoch)
        expected = slow.step(*theirs, step.index, gamma)
        torch.testing.assert_close(value, expected, rtol=1e-10, atol=1e-12)
        for got, want in zip(torch.autograd.grad(value, ours), torch.autograd.grad(expected, theirs), strict=True):
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
        for table, slow_table in (
            (loss.estimator.u_image, slow.u_image),
            (loss.estimator.u_text, slow.u_text),
        ):
            expected_table = torch.tensor([slow_table.get(k, 0.0) for k in range(DATA_SIZE)], dtype=torch.float64)
            torch.testing.assert_close(table, expected_table, rtol=1e-12, atol=1e-12)


def test_gamma_one_is_the_plain_mini_batch_estimate() -> None:
    """With γ = 1 whatever the tables hold is ignored: every step equals a fresh loss on that batch alone."""
    params = PARAMS.model_copy(update={"gamma": 1.0})
    loss = build_loss("fastclip", params, DATA_SIZE).double()
    torch.nn.init.uniform_(loss.estimator.u_image, -3.0, 3.0)
    torch.nn.init.uniform_(loss.estimator.u_text, -3.0, 3.0)
    for step in make_steps(seed=1, **STEPS):
        ours, theirs = leaves(step), leaves(step)
        value = loss(*ours, step.index, step.epoch)
        fresh = SlowGlobalContrastive(eps=params.eps, rho=params.rho)
        expected = fresh.step(*theirs, step.index, gamma=1.0)
        torch.testing.assert_close(value, expected, rtol=1e-10, atol=1e-12)
        for got, want in zip(torch.autograd.grad(value, ours), torch.autograd.grad(expected, theirs), strict=True):
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
        batch_only = torch.tensor([fresh.u_image[int(k)] for k in step.index], dtype=torch.float64)
        torch.testing.assert_close(loss.estimator.u_image[step.index], batch_only)


@pytest.mark.parametrize("stale", [0.0, math.inf, -math.inf, math.nan])
def test_uninitialised_entries_take_the_current_estimate(stale: float) -> None:
    """Entries that are 0/inf/NaN are reset to this batch's log(ε + g) even though γ < 1 (spec §2b step 5)."""
    step = make_steps(seed=2, **STEPS)[-1]
    loss = build_loss("fastclip", PARAMS, DATA_SIZE).double()
    loss.estimator.u_image.fill_(stale)
    loss.estimator.u_text.fill_(stale)
    ours, theirs = leaves(step), leaves(step)
    value = loss(*ours, step.index, step.epoch)
    expected = SlowGlobalContrastive(eps=PARAMS.eps, rho=PARAMS.rho).step(*theirs, step.index, GAMMAS[-1])
    torch.testing.assert_close(value, expected, rtol=1e-10, atol=1e-12)
    assert torch.isfinite(loss.estimator.u_image[step.index]).all()


def test_resume_from_state_dict_continues_identically() -> None:
    steps = make_steps(seed=3, **STEPS)
    uninterrupted = run_steps(build_loss("fastclip", PARAMS, DATA_SIZE).double(), steps)
    first = build_loss("fastclip", PARAMS, DATA_SIZE).double()
    run_steps(first, steps[:2])
    checkpoint = io.BytesIO()
    torch.save(first.state_dict(), checkpoint)
    checkpoint.seek(0)
    resumed = build_loss("fastclip", PARAMS, DATA_SIZE).double()
    resumed.load_state_dict(torch.load(checkpoint))
    continued = run_steps(resumed, steps[2:])
    for key in ("loss", "image_grad", "text_grad", "scale_grad"):
        for got, want in zip(continued[key], uninterrupted[key][2:], strict=True):
            assert torch.equal(got, want)
    for got, want in zip(continued["tables"], uninterrupted["tables"], strict=True):
        assert torch.equal(got, want)


def test_tables_are_checkpointed_float32_buffers_one_entry_per_index() -> None:
    state = build_loss("fastclip", PARAMS, DATA_SIZE).state_dict()
    assert set(state) == {"estimator.u_image", "estimator.u_text", "tau_below_threshold"}
    assert state["estimator.u_image"].shape == (DATA_SIZE,)
    assert state["estimator.u_image"].dtype == torch.float32


def test_gamma_schedule_is_one_then_cosine_then_final() -> None:
    assert [gamma_at(e, 0.4, 2) for e in range(4)] == pytest.approx(GAMMAS)
    assert gamma_at(1, 0.2, 4) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)) * 0.8 + 0.2)
    assert gamma_at(3, 0.2, 2.5) == 0.2
    with pytest.raises(ValueError):
        gamma_at(-1, 0.2, 2)


def test_tau_lr_factor_drops_to_a_third_at_the_threshold_and_stays_there() -> None:
    loss = build_loss("fastclip", PARAMS.model_copy(update={"tau_threshold": 0.03}), DATA_SIZE)
    assert loss.tau_lr_factor(0.07) == 1.0
    assert loss.tau_lr_factor(0.0300001) == 1.0
    assert loss.tau_lr_factor(0.03) == pytest.approx(1 / 3)
    assert loss.tau_lr_factor(0.05) == pytest.approx(1 / 3)
    resumed = build_loss("fastclip", PARAMS, DATA_SIZE)
    resumed.load_state_dict(loss.state_dict())
    assert resumed.tau_lr_factor(0.07) == pytest.approx(1 / 3)


def test_rejects_reference_features() -> None:
    step = make_steps(seed=4, **STEPS)[0]
    with pytest.raises(ValueError, match="no reference"):
        build_loss("fastclip", PARAMS, DATA_SIZE)(
            step.image, step.text, torch.tensor(10.0), step.index, 0, step.ref_image, step.ref_text
        )


def test_two_ranks_match_the_single_process_loss() -> None:
    assert_two_ranks_match_single_process("fastclip", PARAMS, DATA_SIZE, make_steps(seed=5, **STEPS))


def test_build_loss_rejects_unknown_methods_and_unresolved_specs() -> None:
    with pytest.raises(ValueError, match="unknown method"):
        build_loss("siglip", PARAMS, DATA_SIZE)
    with pytest.raises(ValueError, match="unresolved"):
        build_loss("fastclip", LossSpec(), DATA_SIZE)
