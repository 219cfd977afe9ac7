"""method 'drrho': FastCLIP's loss on target-minus-reference margins, checked against the spec's formulas."""

from __future__ import annotations

import math

import pytest
import torch

from scaling.losses import build_loss
from scaling.spec import LossSpec

from .formulas import SlowGlobalContrastive, dot
from .harness import assert_two_ranks_match_single_process, make_steps, run_steps, unit_rows

DATA_SIZE = 10
STEPS = {
    "indices": [[0, 1, 2, 3, 4, 5], [3, 4, 5, 6, 7, 8], [6, 7, 8, 9, 0, 1], [2, 4, 6, 8, 9, 1]],
    "epochs": [0, 1, 2, 3],
    "scales": [100.0, 100.0, 80.0, 120.0],
}
# The official recipe's ε and τ (spec §2g) with γ < 1 so the memory is exercised.
PARAMS = LossSpec(tau=0.01, learn_tau=False, eps=1e-4, rho=11.0, gamma=0.4, gamma_decay_epochs=2)
GAMMAS = [1.0, 0.7, 0.4, 0.4]  # spec §2d for γ_final 0.4 over 2 epochs


def leaves(step) -> list[torch.Tensor]:
    """Fresh float64 leaves (image, text, logit_scale); the scale takes a gradient to test learnable τ."""
    scale = torch.tensor(step.logit_scale, dtype=torch.float64)
    return [t.clone().requires_grad_() for t in (step.image, step.text, scale)]


def test_value_gradients_and_tables_match_the_formulas_over_steps_with_memory() -> None:
    """Reference features have their own dimension (3 vs 5): only reference-reference similarities count."""
    loss = build_loss("drrho", PARAMS, DATA_SIZE).double()
    slow = SlowGlobalContrastive(eps=PARAMS.eps, rho=PARAMS.rho)
    for step, gamma in zip(make_steps(seed=0, **STEPS), GAMMAS, strict=True):
        ours, theirs = leaves(step), leaves(step)
        value = loss(*ours, step.index, step.epoch, step.ref_image, step.ref_text)
        expected = slow.step(*theirs, step.index, gamma, step.ref_image, step.ref_text)
        torch.testing.assert_close(value, expected, rtol=1e-10, atol=1e-12)
        for got, want in zip(torch.autograd.grad(value, ours), torch.autograd.grad(expected, theirs), strict=True):
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
        for table, slow_table in (
            (loss.estimator.u_image, slow.u_image),
            (loss.estimator.u_text, slow.u_text),
        ):
            expected_table = torch.tensor([slow_table.get(k, 0.0) for k in range(DATA_SIZE)], dtype=torch.float64)
            torch.testing.assert_close(table, expected_table, rtol=1e-12, atol=1e-12)


def test_a_reference_equal_to_the_target_cancels_every_difference() -> None:
    """ref = target.detach() makes every diff_ij exactly 0 in value (not in gradient). Then, with n = B:

    u = log(ε + (n − 1)/n) at every γ (the moving average of a constant), every weight is 1/(ε + (n − 1)/n),
      loss       = ρτ + τ·log(ε + (n − 1)/n)                         (the surrogate's value is 0)
      ∇_features = ∇ c·mean_i Σ_{j≠i} [(s_ij − s_ii) + (s_ji − s_ii)], c = 1 / ((n − 1)(ε + (n − 1)/n)),
    a uniform-weight ("infinite temperature") contrastive gradient, independent of τ;
      ∂loss/∂τ   = ρ + log(ε + (n − 1)/n).
    """
    loss = build_loss("drrho", PARAMS, DATA_SIZE).double()
    for step in make_steps(seed=1, **STEPS):
        image, text, scale = leaves(step)
        value = loss(image, text, scale, step.index, step.epoch, image.detach(), text.detach())
        n = len(step.index)
        tau = 1 / step.logit_scale
        log_u = math.log(PARAMS.eps + (n - 1) / n)
        torch.testing.assert_close(value.item(), PARAMS.rho * tau + tau * log_u, rtol=1e-13, atol=0)
        torch.testing.assert_close(loss.estimator.u_image[step.index], torch.full((n,), log_u, dtype=torch.float64))
        c = 1 / ((n - 1) * (PARAMS.eps + (n - 1) / n))
        uniform = (
            c
            * sum(
                dot(image[i], text[j]) + dot(text[i], image[j]) - 2 * dot(image[i], text[i])
                for i in range(n)
                for j in range(n)
                if j != i
            )
            / n
        )
        grad_image, grad_text, grad_scale = torch.autograd.grad(value, [image, text, scale])
        for got, want in zip((grad_image, grad_text), torch.autograd.grad(uniform, [image, text]), strict=True):
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
        # τ = 1/scale, so ∂loss/∂scale = −τ²·(ρ + log(ε + (n − 1)/n)).
        torch.testing.assert_close(grad_scale.item(), -(tau**2) * (PARAMS.rho + log_u), rtol=1e-12, atol=0)


def test_default_recipe_in_float32_matches_float64_with_memory() -> None:
    """τ = 0.01 puts diffs at ±400, exp(diff) far outside float32; log space keeps float32 near float64."""
    params = PARAMS.model_copy(update={"gamma": 0.1})
    single, double = build_loss("drrho", params, data_size=96), build_loss("drrho", params, 96).double()
    generator = torch.Generator().manual_seed(7)
    for epoch in range(4):
        index = torch.randperm(96, generator=generator)[:64]
        features = [unit_rows(generator, 64, 16) for _ in range(2)] + [unit_rows(generator, 64, 8) for _ in range(2)]
        results = []
        for loss, dtype in ((single, torch.float32), (double, torch.float64)):
            image, text, ref_image, ref_text = (f.to(dtype) for f in features)
            image.requires_grad_()
            text.requires_grad_()
            value = loss(image, text, torch.tensor(100.0, dtype=dtype), index, epoch, ref_image, ref_text)
            results.append([value, *torch.autograd.grad(value, [image, text])])
        for got, want in zip(*results, strict=True):
            assert torch.isfinite(got).all()
            torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(single.estimator.u_image.double(), double.estimator.u_image, rtol=1e-5, atol=0)


def test_requires_reference_features() -> None:
    step = make_steps(seed=2, **STEPS)[0]
    loss = build_loss("drrho", PARAMS, DATA_SIZE)
    assert loss.needs_reference
    with pytest.raises(ValueError, match="needs ref_image_features"):
        loss(step.image, step.text, torch.tensor(100.0), step.index)


def test_resume_from_state_dict_continues_identically() -> None:
    steps = make_steps(seed=3, **STEPS)
    uninterrupted = run_steps(build_loss("drrho", PARAMS, DATA_SIZE).double(), steps)
    first = build_loss("drrho", PARAMS, DATA_SIZE).double()
    run_steps(first, steps[:2])
    resumed = build_loss("drrho", PARAMS, DATA_SIZE).double()
    resumed.load_state_dict(first.state_dict())
    continued = run_steps(resumed, steps[2:])
    for key in ("loss", "image_grad", "text_grad", "scale_grad"):
        for got, want in zip(continued[key], uninterrupted[key][2:], strict=True):
            assert torch.equal(got, want)
    for got, want in zip(continued["tables"], uninterrupted["tables"], strict=True):
        assert torch.equal(got, want)


def test_two_ranks_match_the_single_process_loss() -> None:
    assert_two_ranks_match_single_process("drrho", PARAMS, DATA_SIZE, make_steps(seed=4, **STEPS))
