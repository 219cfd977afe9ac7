import numpy as np

from scaling.data import grammar
from scaling.data.render import COLOUR_RGB, SHAPE_MASKS, pixel_words, render
from scaling.data.scenes import TRAIN, Scene, random_words


def centred_scene(shapes: list[int], colour: int = 0, size: int = 1) -> Scene:
    """One object per row at the center, no position/size jitter, brightness factor at its minimum."""
    n = len(shapes)
    objects = np.full((n, grammar.MAX_OBJECTS, 4), -1)
    objects[:, 0] = [(s, colour, size, grammar.POSITIONS.index("center")) for s in shapes]
    jitter = np.zeros((n, grammar.MAX_OBJECTS, 4), dtype=np.float32)
    jitter[..., :3] = 0.5
    return Scene(objects, np.ones(n, dtype=np.int64), np.zeros(n, dtype=np.int64), jitter)


def words(n: int, size: int, seed: int = 0) -> np.ndarray:
    return random_words(TRAIN, seed, np.arange(n), pixel_words(size))


def test_one_mask_per_shape_and_one_colour_per_colour_name():
    assert len(SHAPE_MASKS) == len(grammar.SHAPES) and len(COLOUR_RGB) == len(grammar.COLOURS)


def test_shapes_are_drawn_in_their_colour_and_differ_from_each_other():
    shapes = list(range(len(grammar.SHAPES)))
    images = render(centred_scene(shapes), words(8, 32), size=32)
    assert images.shape == (8, 3, 32, 32) and images.dtype == np.uint8
    red = (COLOUR_RGB[0] * 0.75 * 255 + 0.5).astype(np.uint8)
    painted = (images == red[:, None, None]).all(axis=1)
    hollow = grammar.SHAPES.index("ring")
    for shape in shapes:
        assert painted[shape].sum() > 20
        assert painted[shape, 16, 16] == (shape != hollow)
    assert len({painted[s].tobytes() for s in shapes}) == len(shapes)


def test_large_objects_cover_more_pixels_than_small_ones():
    def area(size: int) -> int:
        images = render(centred_scene([0], size=size), words(1, 32), size=32)
        return int((images[0, 0] == int(255 * 0.75 + 0.5)).sum())

    assert area(1) > 2.5 * area(0)


def test_render_is_deterministic_given_the_words():
    scene = centred_scene([0, 3, 5])
    a = render(scene, words(3, 16), size=16)
    b = render(scene, words(3, 16), size=16)
    c = render(scene, words(3, 16, seed=1), size=16)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
