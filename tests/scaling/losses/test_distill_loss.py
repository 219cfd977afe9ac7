"""The "w/ Distill." methods: KD from the reference added to CLIP, FastCLIP or DRRho (steering-baselines §3–6)."""

from __future__ import annotations

import pytest
import torch

from scaling.losses import build_loss
from scaling.losses.distill import KnowledgeDistillation
from scaling.methods import DistillSpec
from scaling.spec import LossSpec

from .formulas import SlowGlobalContrastive, clip_loss, distill_loss
from .harness import assert_two_ranks_match_single_process, make_steps, run_steps, unit_rows

DATA_SIZE = 10
STEPS = {
    "indices": [[0, 1, 2, 3, 4, 5], [3, 4, 5, 6, 7, 8], [6, 7, 8, 9, 0, 1]],
    "epochs": [0, 1, 2],
    "scales": [14.0, 30.0, 100.0],
}
FASTCLIP = LossSpec(tau=0.07, learn_tau=True, eps=1e-14, rho=6.5, gamma=0.6, gamma_decay_epochs=2)
DRRHO = LossSpec(tau=0.01, learn_tau=False, eps=1e-4, rho=11.0, gamma=0.6, gamma_decay_epochs=2)
PARAMS = {"clip": LossSpec(), "fastclip": FASTCLIP, "drrho": DRRHO}
GAMMAS = [1.0, 0.8, 0.6]  # spec §2d for γ_final 0.6 over 2 epochs
DISTILL = DistillSpec(weight=0.4, loss_weight=0.7, teacher_scale=50.0)


def leaves(step) -> list[torch.Tensor]:
    """Fresh float64 leaves (image, text, logit_scale)."""
    scale = torch.tensor(step.logit_scale, dtype=torch.float64)
    return [t.clone().requires_grad_() for t in (step.image, step.text, scale)]


def grads(value: torch.Tensor, inputs: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return torch.autograd.grad(value, inputs, retain_graph=True)


def assert_same_value_and_gradients(got, ours, want, theirs, **tolerance) -> None:
    torch.testing.assert_close(got, want, **tolerance)
    for a, b in zip(grads(got, ours), grads(want, theirs), strict=True):
        torch.testing.assert_close(a, b, **tolerance)


def test_mobileclip_value_and_gradients_match_the_formula() -> None:
    """(1 − λ)·CLIP + λ·KD, with the student scale differentiated through both parts."""
    loss = build_loss("clip_distill", LossSpec(), DATA_SIZE, distill=DISTILL).double()
    for step in make_steps(seed=0, **STEPS):
        ours, theirs = leaves(step), leaves(step)
        value = loss(*ours, step.index, step.epoch, step.ref_image, step.ref_text)
        kd = distill_loss(*theirs, step.ref_image, step.ref_text, DISTILL.teacher_scale)
        expected = (1 - DISTILL.weight) * clip_loss(*theirs) + DISTILL.weight * kd
        assert_same_value_and_gradients(value, ours, expected, theirs)


@pytest.mark.parametrize("base", ["fastclip", "drrho"])
def test_global_contrastive_distill_matches_the_formula_over_steps_with_memory(base: str) -> None:
    """w_c·L + λ·τ·KD, τ detached: L from the slow FastCLIP/DRRho formula, its u tables unchanged by KD."""
    loss = build_loss(f"{base}_distill", PARAMS[base], DATA_SIZE, distill=DISTILL).double()
    slow = SlowGlobalContrastive(eps=PARAMS[base].eps, rho=PARAMS[base].rho)
    for step, gamma in zip(make_steps(seed=1, **STEPS), GAMMAS, strict=True):
        ours, theirs = leaves(step), leaves(step)
        value = loss(*ours, step.index, step.epoch, step.ref_image, step.ref_text)
        reference = (step.ref_image, step.ref_text) if base == "drrho" else (None, None)
        contrastive = slow.step(*theirs, step.index, gamma, *reference)
        kd = distill_loss(*theirs, step.ref_image, step.ref_text, DISTILL.teacher_scale)
        expected = DISTILL.loss_weight * contrastive + DISTILL.weight * kd / theirs[2].detach()
        assert_same_value_and_gradients(value, ours, expected, theirs, rtol=1e-9, atol=1e-12)
        expected_table = torch.tensor([slow.u_image.get(k, 0.0) for k in range(DATA_SIZE)], dtype=torch.float64)
        torch.testing.assert_close(loss.base.estimator.u_image, expected_table, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("base", ["clip", "fastclip", "drrho"])
def test_zero_weight_is_the_base_method_bit_for_bit(base: str) -> None:
    """λ = 0 (and w_c = 1): losses, gradients and u tables over several steps equal the base method's exactly."""
    steps = make_steps(seed=2, **STEPS)
    plain = run_steps(build_loss(base, PARAMS[base], DATA_SIZE).double(), steps)
    distilled = run_steps(
        build_loss(f"{base}_distill", PARAMS[base], DATA_SIZE, distill=DistillSpec(weight=0.0)).double(), steps
    )
    for key in ("loss", "image_grad", "text_grad", "scale_grad", "tables"):
        for got, want in zip(distilled[key], plain[key], strict=True):
            assert torch.equal(got, want), key


def test_mobileclip_with_full_weight_is_pure_kd_and_ignores_the_pairing() -> None:
    """λ = 1: the loss is KD alone, so re-pairing the texts (student and teacher alike) changes nothing,
    while the same re-pairing does change the loss at λ = 0.5 (the CLIP labels are the pairing)."""
    step = make_steps(seed=3, **STEPS)[0]
    order = torch.tensor([1, 2, 0, 4, 5, 3])
    image, text, scale = leaves(step)

    def value(weight: float, permute: bool) -> torch.Tensor:
        loss = build_loss("clip_distill", LossSpec(), DATA_SIZE, distill=DistillSpec(weight=weight)).double()
        texts = (text[order], step.ref_text[order]) if permute else (text, step.ref_text)
        return loss(image, texts[0], scale, step.index, 0, step.ref_image, texts[1])

    pure = value(1.0, permute=False)
    torch.testing.assert_close(pure, distill_loss(image, text, scale, step.ref_image, step.ref_text, 100.0))
    torch.testing.assert_close(value(1.0, permute=True), pure, rtol=1e-12, atol=0)
    assert not torch.isclose(value(0.5, permute=True), value(0.5, permute=False))


def test_a_teacher_equal_to_the_detached_student_gives_zero_gradient() -> None:
    """t_T = t and teacher = student.detach(): KD is the student softmaxes' mean entropy, and its gradient is 0
    (that of an undetached teacher, the entropy's, is not)."""
    kd = KnowledgeDistillation(teacher_scale=20.0).double()
    step = make_steps(seed=4, **STEPS)[0]
    image, text, scale = leaves(step)
    scale = scale.detach().fill_(20.0).requires_grad_()
    value = kd(image, text, scale, image.detach(), text.detach())
    entropy = distill_loss(image, text, scale, image, text, scale)
    torch.testing.assert_close(value, entropy)
    for grad in torch.autograd.grad(value, [image, text, scale]):
        torch.testing.assert_close(grad, torch.zeros_like(grad), rtol=0, atol=1e-12)
    assert max(g.abs().max() for g in torch.autograd.grad(entropy, [image, text, scale])) > 1e-3


def test_a_sharp_orthonormal_teacher_turns_kd_into_clip() -> None:
    """Orthonormal x̂ᵢ = ŷᵢ at t_T = 1e4: the teacher's softmax is the one-hot label, so KD = CLIP."""
    kd = KnowledgeDistillation(teacher_scale=1e4).double()
    step = make_steps(seed=5, **STEPS)[0]
    image, text, scale = leaves(step)
    teacher = torch.eye(len(image), dtype=torch.float64)
    torch.testing.assert_close(
        kd(image, text, scale, teacher, teacher), clip_loss(image, text, scale), rtol=0, atol=1e-4
    )


def test_kd_tau_factor_is_detached() -> None:
    """∂(λ·τ·KD)/∂t is λ/t·∂KD_raw/∂t (a finite difference of KD_raw alone): τ's own derivative is not in it."""
    distill = DistillSpec(weight=0.5, loss_weight=0.0)
    loss = build_loss("fastclip_distill", FASTCLIP, DATA_SIZE, distill=distill).double()
    step = make_steps(seed=6, **STEPS)[1]
    image, text, scale = leaves(step)
    value = loss(image, text, scale, step.index, step.epoch, step.ref_image, step.ref_text)
    (grad,) = torch.autograd.grad(value, [scale])
    h = 1e-5

    def raw(t: float) -> float:
        return distill_loss(step.image, step.text, t, step.ref_image, step.ref_text, 100.0).item()

    slope = (raw(step.logit_scale + h) - raw(step.logit_scale - h)) / (2 * h)
    torch.testing.assert_close(grad.item(), distill.weight / step.logit_scale * slope, rtol=1e-6, atol=0)


def test_the_teacher_does_not_move_u() -> None:
    """KD reads no u and writes none: other teacher features leave FastCLIP's tables where they were."""
    steps = make_steps(seed=7, **STEPS)
    other_teacher = make_steps(seed=8, **STEPS)
    tables = []
    for teachers in (steps, other_teacher):
        loss = build_loss("fastclip_distill", FASTCLIP, DATA_SIZE, distill=DISTILL).double()
        for step, teacher in zip(steps, teachers, strict=True):
            loss(*leaves(step), step.index, step.epoch, teacher.ref_image, teacher.ref_text)
        tables.append(loss.base.estimator.u_image.clone())
    assert torch.equal(*tables)


def test_drrho_and_kd_read_the_same_reference_tensors() -> None:
    """One cache read serves both terms: the DRRho part and KD receive the very same tensors."""
    loss = build_loss("drrho_distill", DRRHO, DATA_SIZE).double()
    seen = []
    for part in (loss.base, loss.kd):
        part.register_forward_pre_hook(lambda _, args: seen.append(args[-2:]))
    step = make_steps(seed=9, **STEPS)[0]
    loss(*leaves(step), step.index, 0, step.ref_image, step.ref_text)
    assert all(a is b for a, b in zip(seen[0], seen[1], strict=True))
    assert seen[0][0] is step.ref_image


def test_ref_logit_scale_fixes_the_drrho_part_only() -> None:
    """--distill_ref_logit_scale s: DRRho at scale s with KD times 1/s, while KD's student scale stays t."""
    s = 50.0
    distill = DistillSpec(weight=0.3, ref_logit_scale=s)
    loss = build_loss("drrho_distill", DRRHO, DATA_SIZE, distill=distill).double()
    drrho = build_loss("drrho", DRRHO, DATA_SIZE).double()
    step = make_steps(seed=10, **STEPS)[0]
    image, text, scale = leaves(step)
    value = loss(image, text, scale, step.index, 0, step.ref_image, step.ref_text)
    base = drrho(image, text, torch.tensor(s, dtype=torch.float64), step.index, 0, step.ref_image, step.ref_text)
    kd = distill_loss(image, text, scale, step.ref_image, step.ref_text, 100.0)
    torch.testing.assert_close(value, base + distill.weight * kd / s)


def test_fastclip_quirk_subtracts_the_reference() -> None:
    """fastclip_kd_subtracts_reference replays the official loop: at λ = 0 it is DRRho with FastCLIP's τ."""
    quirk = DistillSpec(weight=0.0, fastclip_kd_subtracts_reference=True)
    steps = make_steps(seed=11, **STEPS)
    replayed = run_steps(build_loss("fastclip_distill", FASTCLIP, DATA_SIZE, distill=quirk).double(), steps)
    drrho = run_steps(build_loss("drrho", FASTCLIP, DATA_SIZE).double(), steps)
    for got, want in zip(replayed["loss"], drrho["loss"], strict=True):
        assert torch.equal(got, want)


def test_bad_options_and_inputs_are_named() -> None:
    step = make_steps(seed=12, **STEPS)[0]
    with pytest.raises(ValueError, match=r"distill\.weight"):
        build_loss("clip_distill", LossSpec(), DATA_SIZE, distill=DistillSpec(weight=1.5))
    with pytest.raises(ValueError, match=r"distill\.ref_logit_scale"):
        build_loss("fastclip_distill", FASTCLIP, DATA_SIZE, distill=DistillSpec(ref_logit_scale=50.0))
    loss = build_loss("clip_distill", LossSpec(), DATA_SIZE)
    assert loss.needs_reference
    with pytest.raises(ValueError, match="needs ref_image_features"):
        loss(step.image, step.text, torch.tensor(10.0), step.index)
    with pytest.raises(ValueError, match="must not require grad"):
        loss(*leaves(step), step.index, 0, step.ref_image.requires_grad_(), step.ref_text)


@pytest.mark.parametrize("method", ["clip_distill", "drrho_distill"])
def test_two_ranks_match_the_single_process_loss(method: str) -> None:
    """Teacher dimension (3) differs from the student's (5): only within-model similarities are formed."""
    params = PARAMS[method.removesuffix("_distill")]
    steps = make_steps(seed=13, **STEPS)
    assert_two_ranks_match_single_process(method, params, DATA_SIZE, steps, distill=DISTILL)


def test_float32_stays_close_to_float64() -> None:
    """Teacher logits at t_T = 100 and student logits at t = 100: log-softmax keeps float32 near float64."""
    generator = torch.Generator().manual_seed(14)
    features = [unit_rows(generator, 64, 16) for _ in range(2)] + [unit_rows(generator, 64, 8) for _ in range(2)]
    results = []
    for dtype in (torch.float32, torch.float64):
        loss = build_loss("drrho_distill", DRRHO, 64, distill=DISTILL).to(dtype)
        image, text, ref_image, ref_text = (f.to(dtype) for f in features)
        image.requires_grad_()
        value = loss(image, text, torch.tensor(100.0, dtype=dtype), torch.arange(64), 0, ref_image, ref_text)
        results.append([value, *torch.autograd.grad(value, [image])])
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-6)
