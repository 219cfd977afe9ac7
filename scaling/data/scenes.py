"""Random scenes (objects, template, jitter) and caption noise, drawn per sample from its own Philox stream.

Sample i of (domain, seed) reads the first words of the counter-based Philox stream with key (seed, domain)
and counter (0, 0, i, 0): a pure function of (domain, seed, i), whatever else is generated with it, and
jumping to any i costs nothing. Only raw 64-bit words are used (uniforms are computed from them here), so
the values depend on the Philox algorithm alone, not on numpy's sampling code, and every machine draws the
same. The words are laid out as [scene | noise | pixels]: the scene does not depend on the image size, and
the noise words are always drawn, so the noisy samples at a lower caption_noise are a subset of those at a
higher one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling.data import grammar

TRAIN, EVAL = 1, 2  # domains: training pools and the fixed held-out set never share a stream

_K = grammar.MAX_OBJECTS
_NPOS = len(grammar.POSITIONS)
OBJECT_WORDS = 3 * _K + _NPOS  # shape, colour, size per slot; one sort key per position
SCENE_WORDS = 2 + OBJECT_WORDS + 4 * _K  # n_objects, template, objects, jitter
NOISE_WORDS = 5 + OBJECT_WORDS  # noisy?, fully?, which object, which attribute, new value, other objects


@dataclass(frozen=True)
class Scene:
    """What n samples show; objects are (shape, colour, size, position) ids, -1 if absent."""

    objects: np.ndarray  # int64 [n, MAX_OBJECTS, 4]
    n_objects: np.ndarray  # int64 [n]
    template: np.ndarray  # int64 [n], index into grammar.templates_for(n_objects)
    jitter: np.ndarray  # float32 [n, MAX_OBJECTS, 4] in [0, 1]: dy, dx, radius scale, brightness


def random_words(domain: int, seed: int, indices: np.ndarray, n_words: int) -> np.ndarray:
    """uint64 [len(indices), n_words]: the first n_words of each sample's stream."""
    key = np.array([seed, domain], dtype=np.uint64)
    out = np.empty((len(indices), n_words), dtype=np.uint64)
    for row, i in enumerate(indices):
        out[row] = np.random.Philox(key=key, counter=[0, 0, int(i), 0]).random_raw(n_words)
    return out


def uniforms(words: np.ndarray) -> np.ndarray:
    """float64 uniforms in [0, 1) from the top 53 bits of each word (what numpy's `random()` does)."""
    return (words >> np.uint64(11)).astype(np.float64) * 2.0**-53


def floor_ints(u: np.ndarray, k: np.ndarray | int) -> np.ndarray:
    """Uniform integers in [0, k) from uniforms in [0, 1)."""
    return np.minimum((u * k).astype(np.int64), np.asarray(k) - 1)


def random_objects(u: np.ndarray) -> np.ndarray:
    """[n, MAX_OBJECTS, 4] attribute ids from OBJECT_WORDS uniforms per row; positions all distinct."""
    shape, colour, size = (floor_ints(u[:, i * _K : (i + 1) * _K], k) for i, k in enumerate(grammar.CARDINALITY[:3]))
    position = np.argsort(u[:, 3 * _K : OBJECT_WORDS], axis=1, kind="stable")[:, :_K]
    return np.stack([shape, colour, size, position], axis=-1)


def draw_scene(u: np.ndarray, max_objects: int) -> Scene:
    """Scenes from SCENE_WORDS uniforms per sample; each has 1..max_objects objects."""
    n_objects = 1 + floor_ints(u[:, 0], max_objects)
    objects = random_objects(u[:, 2 : 2 + OBJECT_WORDS])
    objects[np.arange(_K)[None, :] >= n_objects[:, None]] = -1
    n_templates = np.where(n_objects == 1, len(grammar.SINGLE_TEMPLATES), len(grammar.MULTI_TEMPLATES))
    jitter = u[:, 2 + OBJECT_WORDS : SCENE_WORDS].reshape(-1, _K, 4).astype(np.float32)
    return Scene(objects, n_objects, floor_ints(u[:, 1], n_templates), jitter)


def corrupt(scene: Scene, u: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Objects the captions describe and which samples are noisy, like mismatched pairs in web data.

    From NOISE_WORDS uniforms per sample, a `fraction` of samples is noisy; half of them get a fully wrong
    caption (every object a different shape and colour, random size and position), half a partly wrong one
    (one attribute of one object changed; a changed position may coincide with another object's).
    """
    noisy = u[:, 0] < fraction
    full = noisy & (u[:, 1] < 0.5)
    described = scene.objects.copy()
    other = random_objects(u[:, 5:])
    for column in (0, 1):  # redraw shape and colour as the true value shifted by 1..k-1: certainly wrong
        k = grammar.CARDINALITY[column]
        shift = floor_ints(u[:, 5 + column * _K : 5 + (column + 1) * _K], k - 1)
        other[..., column] = (scene.objects[..., column] + 1 + shift) % k
    present = scene.objects >= 0
    described[full] = np.where(present[full], other[full], -1)
    rows = np.flatnonzero(noisy & ~full)
    obj = floor_ints(u[rows, 2], scene.n_objects[rows])
    attr = floor_ints(u[rows, 3], 4)
    k = np.asarray(grammar.CARDINALITY)[attr]
    described[rows, obj, attr] = (described[rows, obj, attr] + 1 + floor_ints(u[rows, 4], k - 1)) % k
    return described, noisy
