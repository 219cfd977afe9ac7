"""scaling.methods: the paper's names for our method keys, and the validated JEST and KD options."""

from __future__ import annotations

import pydantic
import pytest

from scaling.methods import (
    METHODS,
    PAPER_NAMES,
    DistillSpec,
    SelectionSpec,
    paper_name,
    resolve_selection,
    super_batch_size,
)


def test_every_method_of_the_baselines_table_in_its_order() -> None:
    assert list(PAPER_NAMES.values()) == [
        "OpenCLIP",
        "FastCLIP",
        "JEST",
        "JEST (Top-k)",
        "DRRho-CLIP",
        "MobileCLIP (w/ Distill.)",
        "FastCLIP (w/ Distill.)",
        "DRRho-CLIP (w/ Distill.)",
    ]
    assert paper_name("clip_distill") == "MobileCLIP (w/ Distill.)"
    with pytest.raises(ValueError, match="unknown method 'siglip'; choose one of clip, fastclip, jest"):
        paper_name("siglip")


def test_only_the_plain_baselines_train_without_a_reference() -> None:
    assert [key for key, m in METHODS.items() if not m.needs_reference] == ["clip", "fastclip"]
    assert [key for key, m in METHODS.items() if m.selects] == ["jest", "jest_topk"]
    assert [key for key, m in METHODS.items() if m.distills] == ["clip_distill", "fastclip_distill", "drrho_distill"]


def test_selection_rule_follows_the_method() -> None:
    assert resolve_selection("jest", SelectionSpec()).rule == "sample"
    assert resolve_selection("jest_topk", SelectionSpec()).rule == "greedy"
    assert resolve_selection("jest_topk", SelectionSpec(rule="independent")).rule == "independent"
    with pytest.raises(ValueError, match=r"selection\.rule: method jest takes sample, not 'greedy'"):
        resolve_selection("jest", SelectionSpec(rule="greedy"))
    with pytest.raises(ValueError, match="does not select examples; use one of jest, jest_topk"):
        resolve_selection("drrho", SelectionSpec())


def test_super_batch_is_whole_and_splits_into_chunks() -> None:
    assert super_batch_size(128, SelectionSpec()) == 640  # f = 0.8: 5×, the DRRho code's 640 → 128 per GPU
    assert super_batch_size(7, SelectionSpec(filter_ratio=0.0, chunks=7)) == 7
    with pytest.raises(ValueError, match=r"selection\.filter_ratio: a batch of 100 is not"):
        super_batch_size(100, SelectionSpec(filter_ratio=0.7))
    with pytest.raises(ValueError, match=r"selection\.chunks: 3 chunks do not divide the per-rank batch 128"):
        super_batch_size(128, SelectionSpec(chunks=3))
    assert super_batch_size(5, SelectionSpec(rule="independent", filter_ratio=0.75)) == 20


@pytest.mark.parametrize(
    ("spec", "raw"),
    [
        (SelectionSpec, {"filter_ratio": 1.0}),
        (SelectionSpec, {"chunks": 0}),
        (SelectionSpec, {"first_chunk": "softmax"}),
        (SelectionSpec, {"ratio": 0.5}),
        (DistillSpec, {"weight": -0.1}),
        (DistillSpec, {"teacher_scale": 0}),
        (DistillSpec, {"lambda": 0.5}),
    ],
)
def test_options_reject_bad_values_and_unknown_keys(spec, raw) -> None:
    with pytest.raises(pydantic.ValidationError, match=next(iter(raw))):
        spec.model_validate(raw)
