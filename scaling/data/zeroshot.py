"""Zero-shot classification tasks on the synthetic eval set, with prompt ensembles over the other attributes.

Each class is scored by the mean text embedding of the caption form the model was trained on, with the
class's words filled in and the remaining attributes enumerated, so no class is favoured by one particular
size, colour or position. The eval set has one object per image, so every label is unambiguous.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import product

from scaling.data.base import ZeroShotTask
from scaling.data.grammar import COLOURS, POSITIONS, PROMPT, SHAPES, SIZES
from scaling.data.synthetic import eval_labels


def prompts(blank: str, fills: Iterable[dict[str, str]]) -> tuple[str, ...]:
    """PROMPT with `blank` (e.g. "{shape}") left as open_clip's "{}" and the other fields from each fill."""
    base = PROMPT.replace(blank, "{{}}")
    return tuple(base.format(**fill) for fill in fills)


def grid(**values: Sequence[str]) -> list[dict[str, str]]:
    """Every combination of the given field values."""
    return [dict(zip(values, combo, strict=True)) for combo in product(*values.values())]


def alternating_sizes() -> list[dict[str, str]]:
    """Every colour x shape with the size alternating: 64 prompts instead of all 128 size x colour x shape."""
    return [
        {"size": SIZES[(i + j) % len(SIZES)], "colour": c, "shape": h}
        for i, c in enumerate(COLOURS)
        for j, h in enumerate(SHAPES)
    ]


def synthetic_tasks(eval_size: int) -> list[ZeroShotTask]:
    """shape (8-way, 80 prompts), colour (8, 80), position (5, 64) and colour_shape (64, 10)."""
    shape, colour, _, position = eval_labels(eval_size).T
    pairs = tuple(f"{c} {h}" for c in COLOURS for h in SHAPES)
    return [
        ZeroShotTask("shape", SHAPES, prompts("{shape}", grid(size=SIZES, colour=COLOURS, position=POSITIONS)), shape),
        ZeroShotTask(
            "colour", COLOURS, prompts("{colour}", grid(size=SIZES, shape=SHAPES, position=POSITIONS)), colour
        ),
        ZeroShotTask("position", POSITIONS, prompts("{position}", alternating_sizes()), position),
        ZeroShotTask(
            "colour_shape",
            pairs,
            prompts("{colour} {shape}", grid(size=SIZES, position=POSITIONS)),
            colour * len(SHAPES) + shape,
        ),
    ]
