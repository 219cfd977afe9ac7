"""The synthetic caption grammar: attribute names, caption templates and zero-shot prompts.

Everything that produces words lives here, so the compact tokenizer's vocabulary is derived from the same
constants the captions and prompts are built from and can never miss a word.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

SHAPES = ("circle", "square", "triangle", "diamond", "cross", "ring", "x", "bar")
COLOURS = ("red", "green", "blue", "yellow", "cyan", "magenta", "white", "orange")
SIZES = ("small", "large")
POSITIONS = ("top left", "top right", "bottom left", "bottom right", "center")

# Column order of attribute labels ([..., 4] int arrays) and the number of values of each attribute.
LABEL_COLUMNS = ("shape", "colour", "size", "position")
CARDINALITY = (len(SHAPES), len(COLOURS), len(SIZES), len(POSITIONS))
MAX_OBJECTS = 3

# One phrase per object; a caption is one template applied to every object, joined with " and ".
# The longest single-object template would not fit three objects in 32 tokens, so several objects use
# the shorter ones (worst case 3 x 9 + 2 + 2 = 31 tokens, checked by the tests).
SINGLE_TEMPLATES = (
    "a {size} {colour} {shape} in the {position}",
    "there is a {size} {colour} {shape} in the {position} of the image",
    "a {colour} {shape}, {size}, at the {position}",
    "{size} {colour} {shape} {position}",
)
MULTI_TEMPLATES = (
    "a {size} {colour} {shape} in the {position}",
    "a {size} {colour} {shape} at the {position}",
    "{size} {colour} {shape} {position}",
)
JOIN = " and "
_WORD = re.compile(r"[a-z]+|[0-9]|[^\sa-z0-9]+")

# Zero-shot prompts reuse the most common caption form, so classification asks the model what it was taught.
PROMPT = SINGLE_TEMPLATES[0]


def templates_for(n_objects: int) -> tuple[str, ...]:
    """The templates a caption with `n_objects` objects is drawn from."""
    return SINGLE_TEMPLATES if n_objects == 1 else MULTI_TEMPLATES


def phrase(template: str, obj: Sequence[int]) -> str:
    """Fill one template with one object's (shape, colour, size, position) ids."""
    shape, colour, size, position = (int(v) for v in obj)
    return template.format(shape=SHAPES[shape], colour=COLOURS[colour], size=SIZES[size], position=POSITIONS[position])


def caption(objects: Sequence[Sequence[int]], template: int) -> str:
    """The caption of a scene: template number `template` of the list for this many objects."""
    chosen = templates_for(len(objects))[template]
    return JOIN.join(phrase(chosen, obj) for obj in objects)


def words() -> set[str]:
    """Every word (and comma) a caption or a zero-shot prompt can contain."""
    text = " ".join([*SHAPES, *COLOURS, *SIZES, *POSITIONS, *SINGLE_TEMPLATES, *MULTI_TEMPLATES, JOIN, PROMPT])
    return set(split_words(re.sub(r"\{\w*\}", " ", text)))


def split_words(text: str) -> list[str]:
    """Lower-cased words and punctuation marks, split the way open_clip's BPE pre-tokenizer splits them."""
    return _WORD.findall(text.lower())
