"""JEST selection (scaling.selection) checked against the steering-baselines note §1–2: the learnability formula
term by term, the sampler's law by enumerating every draw, the Top-k rules, f = 0, and two gloo ranks."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest
import torch
from scipy import stats

from scaling.losses import build_loss
from scaling.methods import SelectionSpec
from scaling.models import build_model
from scaling.selection import (
    Embeddings,
    first_chunk_log_weights,
    gumbel_top_k,
    learnability,
    scaled_logits,
    score_and_select,
    select,
    selection_generator,
    target_flops,
    top_k,
)
from scaling.spec import LossSpec

from .losses.formulas import dot, per_example_loss
from .losses.formulas import learnability as slow_learnability
from .losses.harness import WORLD_SIZE, spawn_two_ranks, unit_rows

P_REJECT = 1e-6  # a chi-square test at this level fails a correct sampler once in a million seeds


def models(seed: int, n: int, scale: float = 1.5, ref_scale: float = 2.5, dim: int = 4) -> tuple[Embeddings, ...]:
    """Random learner and reference embeddings of a super-batch of n (the reference in its own dimension)."""
    generator = torch.Generator().manual_seed(seed)
    learner = Embeddings(unit_rows(generator, n, dim), unit_rows(generator, n, dim), scale)
    reference = Embeddings(unit_rows(generator, n, dim + 1), unit_rows(generator, n, dim + 1), ref_scale)
    return learner, reference


def mask(n: int, members) -> torch.Tensor:
    out = torch.zeros(n, dtype=torch.bool)
    out[list(members)] = True
    return out


def chi_square_p(counts: Counter, probabilities: dict) -> float:
    """p-value of observed outcome counts under the given law; outcomes expected fewer than 5 times are pooled
    into one cell (the chi-square approximation needs it), and an outcome of probability 0 gives p = 0."""
    draws = sum(counts.values())
    if not set(counts) <= {k for k, p in probabilities.items() if p > 0}:
        return 0.0
    large = [k for k, p in probabilities.items() if p * draws >= 5]
    observed = [counts[k] for k in large]
    expected = [probabilities[k] * draws for k in large]
    if len(large) < len(probabilities):
        observed.append(draws - sum(observed))
        expected.append(draws - sum(expected))
    return stats.chisquare(observed, expected).pvalue


# -- the score ------------------------------------------------------------------------------------------
def test_learnability_matches_the_term_by_term_formula() -> None:
    """ℓᵢ(S) vectorised equals Lᵢ(S) − L̂ᵢ(S) looped over i and j ∈ S; S = None means every column."""
    learner, reference = models(seed=0, n=6, scale=13.7, ref_scale=100.0)
    ours = scaled_logits(learner), scaled_logits(reference)
    for members in ([2], [0, 3, 5], range(6)):
        got = learnability(*ours, mask(6, members))
        want = [slow_learnability(learner, reference, i, list(members)) for i in range(6)]
        torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), rtol=0, atol=1e-10)
    torch.testing.assert_close(learnability(*ours, None), learnability(*ours, mask(6, range(6))), rtol=0, atol=0)


# -- the sampler's law ----------------------------------------------------------------------------------
def plackett_luce(log_weights: dict[int, float], draws: int) -> dict[tuple[int, ...], float]:
    """P of every ordered sequence of ``draws`` distinct items drawn one by one ∝ exp(log-weight)."""
    out = {}
    for sequence in itertools.permutations(log_weights, draws):
        p, left = 1.0, dict(log_weights)
        for item in sequence:
            norm = sum(math.exp(w) for w in left.values())
            p *= math.exp(left.pop(item)) / norm
        out[sequence] = p
    return out


def enumerated_law(learner, reference, n: int, m: int, first_chunk: str) -> dict[frozenset, float]:
    """P(selected set) for K = 2 by brute force: every ordered first chunk (linear, exp or uniform weights of
    the slow dᵢ), then every ordered second chunk ∝ exp ℓᵢ(S) of the slow formula over the rest."""
    d = {i: diagonal_term(learner, reference, i) for i in range(n)}
    if first_chunk == "linear":
        low = min(d.values())
        first = {i: math.log(v - low) for i, v in d.items() if v > low}
    else:
        first = {i: (v if first_chunk == "exp" else 0.0) for i, v in d.items()}
    law: dict[frozenset, float] = {}
    for chunk, p_chunk in plackett_luce(first, m).items():
        rest = {i: slow_learnability(learner, reference, i, list(chunk)) for i in range(n) if i not in chunk}
        for second, p_second in plackett_luce(rest, m).items():
            key = frozenset(chunk + second)
            law[key] = law.get(key, 0.0) + p_chunk * p_second
    return law


def diagonal_term(learner, reference, i: int) -> float:
    """dᵢ = −t·sᵢᵢ + t̂·ŝᵢᵢ, the candidate's own term (note §1.5)."""
    own = (model.scale * dot(model.image[i], model.text[i]) for model in (learner, reference))
    return (-next(own) + next(own)).item()


@pytest.mark.parametrize(
    ("n", "trained", "first_chunk", "draws"),
    [(4, 2, "linear", 6000), (4, 2, "exp", 6000), (6, 4, "linear", 12000), (6, 4, "uniform", 6000)],
)
def test_selected_sets_follow_the_enumerated_law(n: int, trained: int, first_chunk: str, draws: int) -> None:
    """Frequencies of the selected set over many draws match the brute-forced law (K = 2, m = trained/2), and
    the same counts reject the law of a sampler whose first chunk is uniform (or linear, for the uniform
    case): the test has the power to catch the wrong first-chunk rule, so it cannot pass by accident."""
    learner, reference = models(seed=1, n=n)
    selection = SelectionSpec(filter_ratio=1 - trained / n, chunks=2, first_chunk=first_chunk, rule="sample")
    law = enumerated_law(learner, reference, n, trained // 2, first_chunk)
    assert sum(law.values()) == pytest.approx(1.0, abs=1e-12)
    generator = torch.Generator().manual_seed(2)
    counts = Counter(
        frozenset(select(learner, reference, selection, trained, generator).tolist()) for _ in range(draws)
    )
    assert chi_square_p(counts, law) > P_REJECT
    wrong = enumerated_law(learner, reference, n, trained // 2, "linear" if first_chunk == "uniform" else "uniform")
    assert chi_square_p(counts, wrong) < P_REJECT


def test_gumbel_top_k_draws_pairs_with_the_plackett_luce_law() -> None:
    """Unordered pairs from 4 weights: P({a, b}) = pₐp_b/(1 − pₐ) + p_bpₐ/(1 − p_b); weight 0 is never drawn."""
    log_weights = torch.tensor([0.3, -1.0, 1.2, -math.inf, 0.0], dtype=torch.float64)
    p = torch.softmax(log_weights, 0).tolist()
    law = {
        frozenset((a, b)): p[a] * p[b] / (1 - p[a]) + p[b] * p[a] / (1 - p[b])
        for a, b in itertools.combinations(range(5), 2)
        if p[a] > 0 and p[b] > 0
    }
    assert sum(law.values()) == pytest.approx(1.0, abs=1e-12)
    generator = torch.Generator().manual_seed(3)
    counts = Counter(frozenset(gumbel_top_k(log_weights, 2, generator).tolist()) for _ in range(20000))
    assert chi_square_p(counts, law) > P_REJECT
    assert chi_square_p(counts, dict.fromkeys(law, 1 / len(law))) < P_REJECT


# -- invariants -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("rule", ["sample", "greedy", "independent"])
def test_returns_distinct_local_indices_reproducibly(rule: str) -> None:
    learner, reference = models(seed=4, n=40)
    selection = SelectionSpec(filter_ratio=0.8, chunks=4, rule=rule)
    picks = [select(learner, reference, selection, 8, selection_generator(7, 3, 0)) for _ in range(2)]
    assert torch.equal(*picks)
    assert len(set(picks[0].tolist())) == 8
    assert int(picks[0].min()) >= 0 and int(picks[0].max()) < 40


def test_extreme_scores_stay_finite() -> None:
    """Scales of 1e4 put ℓ near ±1e4: no exp is taken, so no NaN or overflow."""
    learner, reference = models(seed=5, n=20, scale=1e4, ref_scale=1e4)
    learner32 = Embeddings(learner.image.float(), learner.text.float(), 1e4)
    logits = scaled_logits(learner32), scaled_logits(reference)
    assert torch.isfinite(learnability(*logits, mask(20, [0, 1]))).all()
    for rule in ("sample", "greedy"):
        for first_chunk in ("linear", "exp"):
            selection = SelectionSpec(filter_ratio=0.5, chunks=2, rule=rule, first_chunk=first_chunk)
            chosen = select(learner32, reference, selection, 10, torch.Generator().manual_seed(0))
            assert len(set(chosen.tolist())) == 10


def test_non_finite_embeddings_are_an_error_not_a_selection() -> None:
    learner, reference = models(seed=17, n=10)
    learner.image[3, 0] = math.nan
    with pytest.raises(FloatingPointError, match="not finite"):
        select(learner, reference, SelectionSpec(filter_ratio=0.6, rule="independent"), 4, torch.Generator())


def test_a_learner_equal_to_its_reference_selects_uniformly() -> None:
    """Learner ≡ reference: every ℓ is 0 and every linear weight 0, so the first chunk falls back to uniform
    (with a warning) and the whole set is uniform over the C(6, 2) subsets."""
    learner, _ = models(seed=6, n=6)
    selection = SelectionSpec(filter_ratio=2 / 3, chunks=2, rule="sample")
    generator = torch.Generator().manual_seed(8)
    with pytest.warns(RuntimeWarning, match="uniformly"):
        counts = Counter(frozenset(select(learner, learner, selection, 2, generator).tolist()) for _ in range(3000))
    assert chi_square_p(counts, {frozenset(s): 1 / 15 for s in itertools.combinations(range(6), 2)}) > P_REJECT


def test_the_first_linear_chunk_never_takes_the_minimum() -> None:
    """Linear weights dᵢ − min d give the arg-min weight 0 (log-weight −inf), as the official code."""
    d = torch.tensor([3.0, -2.0, 5.0, 0.5])
    log_weights = first_chunk_log_weights(d, "linear", 3)
    assert log_weights[1] == -math.inf and torch.isfinite(log_weights[[0, 2, 3]]).all()
    generator = torch.Generator().manual_seed(9)
    assert all(1 not in gumbel_top_k(log_weights, 3, generator).tolist() for _ in range(200))


def test_top_k_breaks_ties_towards_the_lower_index() -> None:
    assert top_k(torch.tensor([1.0, 2.0, 2.0, 0.0, 2.0]), 2).tolist() == [1, 2]


# -- JEST (Top-k) ---------------------------------------------------------------------------------------
def constant_reference(n: int) -> Embeddings:
    """Every reference embedding the same unit vector: its terms are equal for all candidates."""
    one = torch.nn.functional.normalize(torch.ones(n, 3, dtype=torch.float64), dim=1)
    return Embeddings(one, one, 100.0)


def test_independent_top_k_with_a_constant_reference_takes_the_largest_learner_losses() -> None:
    learner, _ = models(seed=10, n=20, scale=9.0)
    selection = SelectionSpec(filter_ratio=0.75, rule="independent")
    chosen = select(learner, constant_reference(20), selection, 5, torch.Generator())
    losses = torch.tensor([per_example_loss(*learner, i, list(range(20))).item() for i in range(20)])
    assert set(chosen.tolist()) == set(torch.topk(losses, 5).indices.tolist())


def test_greedy_chunks_with_a_constant_reference_take_the_top_learner_losses_given_s() -> None:
    learner, _ = models(seed=11, n=24, scale=9.0)
    selection = SelectionSpec(filter_ratio=0.75, chunks=3, rule="greedy")
    chosen = select(learner, constant_reference(24), selection, 6, torch.Generator().manual_seed(1)).tolist()
    for start in (2, 4):
        prefix = chosen[:start]
        losses = {i: per_example_loss(*learner, i, prefix).item() for i in range(24) if i not in prefix}
        assert chosen[start : start + 2] == sorted(losses, key=losses.get, reverse=True)[:2]


def test_greedy_chunks_take_the_largest_conditional_learnability() -> None:
    """In every chunk ≥ 2, each chosen ℓ is ≥ that of every candidate neither chosen then nor before."""
    learner, reference = models(seed=12, n=30)
    selection = SelectionSpec(filter_ratio=0.8, chunks=3, rule="greedy")
    chosen = select(learner, reference, selection, 6, torch.Generator().manual_seed(2)).tolist()
    logits = scaled_logits(learner), scaled_logits(reference)
    for start in (2, 4):
        scores = learnability(*logits, mask(30, chosen[:start]))
        taken = chosen[start : start + 2]
        left = [i for i in range(30) if i not in chosen[: start + 2]]
        assert scores[taken].min() >= scores[left].max()


def test_greedy_chunks_depend_on_the_rng_only_through_the_first_chunk() -> None:
    learner, reference = models(seed=13, n=8)
    selection = SelectionSpec(filter_ratio=0.5, chunks=2, rule="greedy")
    later: dict[tuple, set] = {}
    for seed in range(60):
        chosen = select(learner, reference, selection, 4, torch.Generator().manual_seed(seed)).tolist()
        later.setdefault(tuple(sorted(chosen[:2])), set()).add(tuple(chosen[2:]))
    assert len(later) > 1
    assert all(len(outcomes) == 1 for outcomes in later.values())


# -- f = 0 and the step around it -----------------------------------------------------------------------
class CountingModel(torch.nn.Module):
    """A real open_clip model that counts its forward calls."""

    def __init__(self) -> None:
        super().__init__()
        self.model, self.calls = build_model("w32-l1", vocab_size=64).double(), 0

    def forward(self, images, tokens):
        self.calls += 1
        return self.model(images, tokens)


@pytest.mark.parametrize("base", ["clip", "fastclip"])
def test_no_filtering_is_the_base_method_bit_for_bit(base: str) -> None:
    """f = 0: identity selection, no scoring forward, and the loss, gradients and u of the step equal the
    base method's exactly."""
    model = CountingModel()
    generator = torch.Generator().manual_seed(14)
    images = torch.randn(8, 3, 32, 32, generator=generator, dtype=torch.float64)
    tokens = torch.randint(1, 64, (8, model.model.context_length), generator=generator)
    ref = (unit_rows(generator, 8, 3), unit_rows(generator, 8, 3))
    selection = SelectionSpec(filter_ratio=0.0, rule="sample", base_loss=base)
    chosen = score_and_select(model, images, tokens, ref, selection, 8, selection_generator(0, 0, 0))
    assert model.calls == 0
    assert torch.equal(chosen, torch.arange(8))
    params = LossSpec(tau=0.07, learn_tau=True, eps=1e-14, gamma=0.5)
    records = []
    for loss, rows in (
        (build_loss("jest", params, 8, selection=selection), chosen),
        (build_loss(base, params, 8), None),
    ):
        out = model(images if rows is None else images[rows], tokens if rows is None else tokens[rows])
        value = loss.double()(out["image_features"], out["text_features"], out["logit_scale"], torch.arange(8), 1)
        records.append([value, *torch.autograd.grad(value, list(model.parameters())), *loss.state_dict().values()])
    for got, want in zip(*records, strict=True):
        assert torch.equal(got, want)


def test_scoring_runs_the_learner_once_without_gradient() -> None:
    model = CountingModel()
    generator = torch.Generator().manual_seed(15)
    images = torch.randn(10, 3, 32, 32, generator=generator, dtype=torch.float64)
    tokens = torch.randint(1, 64, (10, model.model.context_length), generator=generator)
    ref = (unit_rows(generator, 10, 3), unit_rows(generator, 10, 3))
    selection = SelectionSpec(filter_ratio=0.6, rule="sample")
    chosen = score_and_select(model, images, tokens, ref, selection, 4, selection_generator(0, 0, 0))
    assert model.calls == 1 and len(set(chosen.tolist())) == 4
    assert all(p.grad is None for p in model.parameters())


def test_selection_rng_is_a_pure_function_of_seed_step_and_rank() -> None:
    def draw(seed: int, step: int, rank: int) -> torch.Tensor:
        return torch.rand(4, generator=selection_generator(seed, step, rank))

    assert torch.equal(draw(1, 2, 3), draw(1, 2, 3))
    assert len({tuple(draw(*key).tolist()) for key in [(1, 2, 3), (1, 2, 0), (1, 0, 3), (0, 2, 3)]}) == 4


def test_target_flops_add_a_scoring_forward_of_every_loaded_example() -> None:
    """At f = 0.8 with a train step of 3F: 3F + 5F = 8F per trained example, 2.67× CLIP (note §1.11)."""
    assert target_flops(trained=1, loaded=5, flops_train=3.0, flops_fwd=1.0) / 3.0 == pytest.approx(8 / 3)
    assert target_flops(trained=4, loaded=4, flops_train=3.0, flops_fwd=1.0) == 12.0


# -- two ranks --------------------------------------------------------------------------------------------
N_PER_RANK, TRAINED, FIXED_S = 10, 4, [1, 12, 17]
RULES = ("sample", "greedy", "independent")


def _on_rank(rank: int) -> dict:
    """One rank: ℓ of its rows for a fixed global S, and its selection under each rule with its own RNG."""
    learner, reference = models(seed=16, n=WORLD_SIZE * N_PER_RANK)
    mine = slice(rank * N_PER_RANK, (rank + 1) * N_PER_RANK)
    local = [Embeddings(e.image[mine], e.text[mine], e.scale) for e in (learner, reference)]
    logits = [scaled_logits(e, WORLD_SIZE) for e in local]
    out = {"learnability": learnability(*logits, mask(WORLD_SIZE * N_PER_RANK, FIXED_S))}
    for rule in RULES:
        selection = SelectionSpec(filter_ratio=0.6, chunks=2, rule=rule)
        generator = selection_generator(0, 5, rank)
        out[rule] = select(*local, selection, TRAINED, generator, WORLD_SIZE)
    return out


def simulate_ranks(rule: str) -> list[torch.Tensor]:
    """What each rank must choose, computed in one process on the global rows (the note's per-rank sampler
    with global conditioning: chunk 1 per rank, then ℓ against the union of all ranks' chunks)."""
    learner, reference = models(seed=16, n=WORLD_SIZE * N_PER_RANK)
    global_logits = scaled_logits(learner), scaled_logits(reference)
    rows = [
        [type(g)(*(part[r * N_PER_RANK : (r + 1) * N_PER_RANK] for part in g)) for g in global_logits]
        for r in range(WORLD_SIZE)
    ]
    generators = [selection_generator(0, 5, r) for r in range(WORLD_SIZE)]
    if rule == "independent":
        return [top_k(learnability(*rows[r], None), TRAINED) for r in range(WORLD_SIZE)]
    m = TRAINED // 2
    chosen = [
        gumbel_top_k(first_chunk_log_weights(ref.diagonal - own.diagonal, "linear", m), m, generators[r])
        for r, (own, ref) in enumerate(rows)
    ]
    union = mask(WORLD_SIZE * N_PER_RANK, [r * N_PER_RANK + i for r in range(WORLD_SIZE) for i in chosen[r].tolist()])
    for r in range(WORLD_SIZE):
        score = learnability(*rows[r], union).masked_fill(mask(N_PER_RANK, chosen[r].tolist()), -math.inf)
        new = top_k(score, m) if rule == "greedy" else gumbel_top_k(score, m, generators[r])
        chosen[r] = torch.cat([chosen[r], new])
    return chosen


def test_two_ranks_select_as_one_process_with_global_conditioning() -> None:
    ranks = spawn_two_ranks(_on_rank)
    learner, reference = models(seed=16, n=WORLD_SIZE * N_PER_RANK)
    single = learnability(scaled_logits(learner), scaled_logits(reference), mask(WORLD_SIZE * N_PER_RANK, FIXED_S))
    torch.testing.assert_close(torch.cat([r["learnability"] for r in ranks]), single, rtol=0, atol=1e-12)
    for rule in RULES:
        expected = simulate_ranks(rule)
        for rank, want in zip(ranks, expected, strict=True):
            assert len(rank[rule]) == TRAINED
            assert torch.equal(rank[rule], want), rule
    assert not np.array_equal(ranks[0]["sample"].numpy(), ranks[1]["sample"].numpy())
