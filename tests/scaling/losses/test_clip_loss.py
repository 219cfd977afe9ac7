"""method 'clip': open_clip's ClipLoss behind the common interface, checked against plain cross-entropy."""

from __future__ import annotations

import pytest
import torch

from scaling.losses import build_loss
from scaling.spec import LossSpec

from .formulas import clip_loss
from .harness import assert_two_ranks_match_single_process, make_steps

DATA_SIZE = 12
STEPS = {"indices": [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]], "epochs": [0, 1], "scales": [1 / 0.07, 25.0]}


def test_value_and_gradients_match_the_cross_entropy_formula() -> None:
    loss = build_loss("clip", LossSpec(), DATA_SIZE).double()
    for step in make_steps(seed=0, **STEPS):
        scale = torch.tensor(step.logit_scale, dtype=torch.float64)
        leaves = [t.clone().requires_grad_() for t in (step.image, step.text, scale)]
        value = loss(*leaves, step.index, step.epoch)
        expected = clip_loss(*leaves)
        torch.testing.assert_close(value, expected)
        for got, want in zip(torch.autograd.grad(value, leaves), torch.autograd.grad(expected, leaves), strict=True):
            torch.testing.assert_close(got, want)


def test_has_no_state_and_rejects_reference_features() -> None:
    loss = build_loss("clip", LossSpec(), DATA_SIZE)
    assert not loss.needs_reference
    assert loss.state_dict() == {}
    assert loss.tau_lr_factor(0.001) == 1.0
    step = make_steps(seed=1, **STEPS)[0]
    with pytest.raises(ValueError, match="no reference"):
        loss(step.image, step.text, torch.tensor(10.0), step.index, 0, step.ref_image, step.ref_text)


def test_two_ranks_match_the_single_process_loss() -> None:
    assert_two_ranks_match_single_process("clip", LossSpec(), DATA_SIZE, make_steps(seed=2, **STEPS))
