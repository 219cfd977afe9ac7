"""Pixels of synthetic scenes: a noisy tinted background with flat-coloured shapes, vectorised in numpy.

Geometry is in units of the image side, so the same scene renders at any image size. Only IEEE-exact float32
operations are used (+, -, *, comparisons), so the uint8 result is bitwise identical on every machine.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from scaling.data import grammar
from scaling.data.scenes import Scene, uniforms

COLOUR_RGB = np.array(
    [
        (1.00, 0.10, 0.10),  # red
        (0.10, 0.80, 0.10),  # green
        (0.15, 0.25, 1.00),  # blue
        (1.00, 0.95, 0.10),  # yellow
        (0.10, 0.90, 0.90),  # cyan
        (0.90, 0.10, 0.90),  # magenta
        (1.00, 1.00, 1.00),  # white
        (1.00, 0.55, 0.00),  # orange
    ],
    dtype=np.float32,
)
POSITION_YX = np.array([(0.27, 0.27), (0.27, 0.73), (0.73, 0.27), (0.73, 0.73), (0.5, 0.5)], dtype=np.float32)
RADIUS = np.array([0.10, 0.18], dtype=np.float32)  # small, large (half the object's extent)
POSITION_JITTER = 0.04  # ± fraction of the image side
RADIUS_JITTER = 0.15  # ± relative
BRIGHTNESS = (0.75, 1.0)  # the object's colour is scaled by a factor in this range
TINT = 0.3  # background: uniform per-channel tint in [0, TINT) ...
NOISE = 0.1  # ... plus uniform per-pixel noise in [-NOISE, NOISE)

Mask = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _ring(dy: np.ndarray, dx: np.ndarray, r: np.ndarray) -> np.ndarray:
    d2 = dy * dy + dx * dx
    return (d2 < r * r) & (d2 > 0.3 * r * r)


def _cross(dy: np.ndarray, dx: np.ndarray, r: np.ndarray, arm: float = 0.3) -> np.ndarray:
    ay, ax = np.abs(dy), np.abs(dx)
    return ((ay < arm * r) & (ax < r)) | ((ax < arm * r) & (ay < r))


# Pixel masks by shape id (grammar.SHAPES order): dy, dx are offsets from the centre, r the radius.
SHAPE_MASKS: tuple[Mask, ...] = (
    lambda dy, dx, r: dy * dy + dx * dx < r * r,  # circle
    lambda dy, dx, r: (np.abs(dy) < 0.8 * r) & (np.abs(dx) < 0.8 * r),  # square
    lambda dy, dx, r: (dy > -r) & (dy < 0.75 * r) & (np.abs(dx) < 0.6 * (dy + r)),  # triangle, apex up
    lambda dy, dx, r: np.abs(dy) + np.abs(dx) < r,  # diamond
    _cross,  # cross
    _ring,  # ring
    lambda dy, dx, r: _cross(dy + dx, dy - dx, 1.4 * r, arm=0.2),  # x: the cross turned by 45 degrees
    lambda dy, dx, r: (np.abs(dy) < 0.3 * r) & (np.abs(dx) < r),  # bar
)


def pixel_words(size: int) -> int:
    """Random 64-bit words one image needs: 3 for the tint, one byte of noise per channel and pixel."""
    return 3 + -(-3 * size * size // 8)


def render(scene: Scene, words: np.ndarray, size: int) -> np.ndarray:
    """uint8 [n, 3, size, size] images of n scenes from [n, pixel_words(size)] random words.

    Later objects are drawn over earlier ones.
    """
    image = _background(words, size)
    grid = (np.arange(size, dtype=np.float32) + np.float32(0.5)) / np.float32(size)
    for slot in range(grammar.MAX_OBJECTS):
        obj, jitter = scene.objects[:, slot], scene.jitter[:, slot]
        mask = np.zeros((len(obj), size, size), dtype=bool)
        for shape, mask_of in enumerate(SHAPE_MASKS):
            rows = np.flatnonzero(obj[:, 0] == shape)  # absent objects (-1) match no shape
            if rows.size:
                mask[rows] = _mask(obj[rows], jitter[rows], grid, mask_of)
        brightness = np.float32(BRIGHTNESS[0]) + jitter[:, 3] * np.float32(BRIGHTNESS[1] - BRIGHTNESS[0])
        colour = COLOUR_RGB[obj[:, 1]] * brightness[:, None]
        np.copyto(image, colour[:, :, None, None], where=mask[:, None])
    np.clip(image, 0, 1, out=image)
    image *= np.float32(255)
    image += np.float32(0.5)
    return image.astype(np.uint8)


def _background(words: np.ndarray, size: int) -> np.ndarray:
    """float32 [n, 3, size, size]: a random tint plus per-pixel noise, one little-endian byte per value."""
    n = len(words)
    tint = uniforms(words[:, :3]).astype(np.float32)[:, :, None, None] * np.float32(TINT)
    noise = np.ascontiguousarray(words[:, 3:]).astype("<u8").view(np.uint8)[:, : 3 * size * size]
    image = noise.reshape(n, 3, size, size).astype(np.float32)
    image *= np.float32(2 * NOISE / 255)
    image += tint - np.float32(NOISE)  # in place: a temporary of a whole batch costs page faults
    return image


def _mask(obj: np.ndarray, jitter: np.ndarray, grid: np.ndarray, mask_of: Mask) -> np.ndarray:
    """bool [m, size, size] pixels of m objects of one shape; obj, jitter: their [m, 4] ids and uniforms."""
    centre = POSITION_YX[obj[:, 3]] + (jitter[:, :2] - np.float32(0.5)) * np.float32(2 * POSITION_JITTER)
    radius = RADIUS[obj[:, 2]] * (np.float32(1 - RADIUS_JITTER) + jitter[:, 2] * np.float32(2 * RADIUS_JITTER))
    dy = grid[None, :, None] - centre[:, 0, None, None]
    dx = grid[None, None, :] - centre[:, 1, None, None]
    return np.broadcast_to(mask_of(dy, dx, radius[:, None, None]), (len(obj), len(grid), len(grid)))
