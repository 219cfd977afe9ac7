"""The training methods of the DRRho-CLIP baselines table: our keys, the paper's names, their options.

One table that the trainer (which loss, whether to select, whether a reference is needed), the run spec (the
options of selection and distillation, validated) and the analysis (row labels and order of the paper's
table) all read, so a method is added or renamed in one place. It imports nothing from the toolkit, so
scaling.spec can import it. Names and order: Wei et al., ICML 2025, baselines table
(results/paper/figures/baselines.md); option defaults: the official DRRho-CLIP code (steering-baselines note).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Rule = Literal["sample", "greedy", "independent"]


@dataclass(frozen=True)
class Method:
    """One row of the baselines table.

    ``loss`` is the contrastive loss the learner trains with (``None`` for JEST: ``selection.base_loss``
    chooses it, clip by default); ``rules`` are the JEST later-chunk rules the method allows, the first its
    default (empty: no selection); ``distills`` means a KD term towards the reference joins the loss.
    """

    key: str
    paper_name: str
    loss: str | None
    rules: tuple[Rule, ...] = ()
    distills: bool = False

    @property
    def selects(self) -> bool:
        """The trained batch is chosen by joint example selection from a larger super-batch."""
        return bool(self.rules)

    @property
    def needs_reference(self) -> bool:
        """Steering, selection and distillation all read the reference's embeddings; CLIP and FastCLIP none."""
        return self.loss == "drrho" or self.selects or self.distills


# In the paper's table order.
METHODS: dict[str, Method] = {
    m.key: m
    for m in (
        Method("clip", "OpenCLIP", "clip"),
        Method("fastclip", "FastCLIP", "fastclip"),
        Method("jest", "JEST", None, rules=("sample",)),
        Method("jest_topk", "JEST (Top-k)", None, rules=("greedy", "independent")),
        Method("drrho", "DRRho-CLIP", "drrho"),
        Method("clip_distill", "MobileCLIP (w/ Distill.)", "clip", distills=True),
        Method("fastclip_distill", "FastCLIP (w/ Distill.)", "fastclip", distills=True),
        Method("drrho_distill", "DRRho-CLIP (w/ Distill.)", "drrho", distills=True),
    )
}

PAPER_NAMES: dict[str, str] = {key: m.paper_name for key, m in METHODS.items()}


def method(key: str) -> Method:
    """The method called ``key``; an unknown key is an error that lists the known ones."""
    try:
        return METHODS[key]
    except KeyError:
        raise ValueError(f"unknown method {key!r}; choose one of {', '.join(METHODS)}") from None


def paper_name(key: str) -> str:
    """The name the paper's table gives method ``key`` (e.g. 'clip_distill' → 'MobileCLIP (w/ Distill.)')."""
    return method(key).paper_name


class SelectionSpec(BaseModel):
    """JEST options (note §1–2); defaults are the official DRRho code's (`src/training/params.py`).

    The paper's own f, K, super-batch size, base loss and samples-seen convention for its JEST rows are
    unverified (note §8).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    filter_ratio: float = Field(0.8, ge=0, lt=1, description="f: fraction of each loaded super-batch dropped")
    chunks: int = Field(2, ge=1, description="K: chunks the trained batch is drawn in (the JEST paper: 16)")
    first_chunk: Literal["linear", "exp", "uniform"] = Field(
        "linear", description="law of chunk 1: d − min d (DRRho code), exp(d) (JEST paper), uniform (ACID port)"
    )
    rule: Rule | None = Field(
        None, description="chunks 2..K: sample ∝ exp ℓ, greedy top-m, or independent top-b; None = method's"
    )
    reference_scale: float = Field(100.0, gt=0, description="t̂ of the reference's logits (the code's 100)")
    base_loss: Literal["clip", "fastclip"] = Field("clip", description="the loss the learner trains with")
    samples_seen_counts: Literal["loaded", "trained"] = Field(
        "loaded", description="what samples_seen counts: loaded super-batch examples (the code) or trained ones"
    )


def resolve_selection(key: str, selection: SelectionSpec) -> SelectionSpec:
    """``selection`` with its rule set from method ``key`` (jest: sample; jest_topk: greedy), or an error."""
    rules = method(key).rules
    if not rules:
        selecting = ", ".join(k for k, m in METHODS.items() if m.selects)
        raise ValueError(f"selection: method {key!r} does not select examples; use one of {selecting}")
    if selection.rule is None:
        return selection.model_copy(update={"rule": rules[0]})
    if selection.rule not in rules:
        raise ValueError(f"selection.rule: method {key} takes {' or '.join(rules)}, not {selection.rule!r}")
    return selection


def super_batch_size(trained: int, selection: SelectionSpec) -> int:
    """n = b/(1 − f) loaded examples for b trained ones; fails unless both are whole and K chunks divide b
    (note §1.2; the independent rule has no chunks).

    The official code sizes FastCLIP's diagonal offsets with ⌊n(1 − f)⌋; a silent shortfall would corrupt them.
    """
    loaded = round(trained / (1 - selection.filter_ratio))
    if abs(loaded * (1 - selection.filter_ratio) - trained) > 1e-6 * trained:
        raise ValueError(
            f"selection.filter_ratio: a batch of {trained} is not (1 - {selection.filter_ratio}) of a whole "
            "super-batch; choose a batch_size that makes batch_size / (1 - filter_ratio) an integer"
        )
    if selection.rule != "independent" and trained % selection.chunks:
        raise ValueError(f"selection.chunks: {selection.chunks} chunks do not divide the per-rank batch {trained}")
    return loaded


class DistillSpec(BaseModel):
    """KD options (note §3–6); defaults are the DRRho code's (--distill_weight 1, --distill_logit_scale 100,
    --loss_weight 1, --multiply_tau). The λ (and w_c) the paper used per row and reference is unverified
    (note §8; its equal B/32 numbers suggest λ = 0 there): sweep ``weight``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    weight: float = Field(1.0, ge=0, description="λ: clip (1−λ)·CLIP + λ·KD; fastclip/drrho w_c·L + λ·τ·KD")
    teacher_scale: float = Field(100.0, gt=0, description="t_T: the teacher's logit scale")
    loss_weight: float = Field(1.0, ge=0, description="w_c: fastclip/drrho weight of the contrastive part")
    multiply_tau: bool = Field(True, description="fastclip/drrho: KD times the detached τ, as the code's recipes")
    fastclip_kd_subtracts_reference: bool = Field(
        False, description="fastclip_distill: replay the code's quirk that also subtracts the reference"
    )
    ref_logit_scale: float = Field(
        0.0, ge=0, description="drrho_distill: constant scale of the DRRho part (0 = the student's t)"
    )
