import numpy as np

from scaling.data import grammar
from scaling.data.scenes import (
    EVAL,
    NOISE_WORDS,
    SCENE_WORDS,
    TRAIN,
    corrupt,
    draw_scene,
    random_words,
    uniforms,
)

N = 1024


def scene_uniforms(seed: int = 0, domain: int = TRAIN, n: int = N) -> np.ndarray:
    return uniforms(random_words(domain, seed, np.arange(n), SCENE_WORDS))


def noise_uniforms(seed: int = 0, n: int = N) -> np.ndarray:
    words = random_words(TRAIN, seed, np.arange(n), SCENE_WORDS + NOISE_WORDS)
    return uniforms(words[:, SCENE_WORDS:])


def test_each_sample_has_its_own_stream_keyed_by_domain_seed_and_index():
    words = random_words(TRAIN, 3, np.array([5, 9, 5]), 8)
    assert np.array_equal(words[0], words[2]) and not np.array_equal(words[0], words[1])
    assert np.array_equal(random_words(TRAIN, 3, np.array([9]), 8)[0], words[1])
    assert np.array_equal(random_words(TRAIN, 3, np.array([9]), 4)[0], words[1, :4])  # prefixes agree
    for other in (random_words(TRAIN, 4, np.array([5]), 8), random_words(EVAL, 3, np.array([5]), 8)):
        assert not np.array_equal(other[0], words[0])


def test_uniforms_cover_zero_to_one():
    u = uniforms(random_words(TRAIN, 0, np.arange(100), 100))
    assert 0 <= u.min() < 0.001 and 0.999 < u.max() < 1 and abs(u.mean() - 0.5) < 0.01


def test_objects_are_between_one_and_max_and_at_distinct_positions():
    scene = draw_scene(scene_uniforms(), max_objects=3)
    assert set(np.unique(scene.n_objects)) == {1, 2, 3}
    for objects, n in zip(scene.objects, scene.n_objects, strict=True):
        assert (objects[:n] >= 0).all() and (objects[n:] == -1).all()
        assert len(set(objects[:n, 3])) == n
    assert (draw_scene(scene_uniforms(), max_objects=1).n_objects == 1).all()


def test_attributes_and_templates_are_roughly_uniform():
    scene = draw_scene(scene_uniforms(), max_objects=1)
    for column, k in enumerate(grammar.CARDINALITY):
        counts = np.bincount(scene.objects[:, 0, column], minlength=k)
        assert counts.min() > N / k * 0.7
    assert set(np.unique(scene.template)) == set(range(len(grammar.SINGLE_TEMPLATES)))


def test_corrupt_marks_the_fraction_half_fully_and_half_partly_wrong():
    scene = draw_scene(scene_uniforms(), max_objects=3)
    described, noisy = corrupt(scene, noise_uniforms(), fraction=0.5)
    assert abs(noisy.mean() - 0.5) < 0.06
    assert np.array_equal(described[~noisy], scene.objects[~noisy])
    changed = (described != scene.objects).sum(axis=(1, 2))
    present = scene.objects[..., 0] >= 0
    full = noisy & (changed > 1)
    shapes_and_colours_all_wrong = ((described[..., :2] != scene.objects[..., :2]).all(-1) | ~present).all(-1)
    assert shapes_and_colours_all_wrong[full].all()
    assert (changed[noisy & ~full] == 1).all()
    assert 0.35 < full.sum() / noisy.sum() < 0.65


def test_noisy_samples_nest_as_the_fraction_grows():
    scene, u = draw_scene(scene_uniforms(), max_objects=1), noise_uniforms()
    _, low = corrupt(scene, u, fraction=0.1)
    _, high = corrupt(scene, u, fraction=0.3)
    assert low.sum() > 0 and high[low].all() and high.sum() > low.sum()
