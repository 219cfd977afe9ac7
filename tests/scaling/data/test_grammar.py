from scaling.data import grammar
from scaling.data.tokenizer import synthetic_tokenizer


def longest_caption(template: int, n_objects: int) -> str:
    """The longest caption of a template: 'cyan' is two BPE tokens, and three positions have two words."""
    objects = [(0, grammar.COLOURS.index("cyan"), 0, p) for p in range(n_objects)]
    return grammar.caption(objects, template)


def test_every_caption_fits_32_tokens_with_start_and_end():
    tok = synthetic_tokenizer(context_length=64)
    for n_objects in (1, 2, 3):
        for template in range(len(grammar.templates_for(n_objects))):
            ids = tok([longest_caption(template, n_objects)])[0]
            assert int((ids != 0).sum()) <= 32, (n_objects, template)


def test_caption_reads_like_the_examples():
    red, cross, large, top_left = 0, 4, 1, 0
    blue, ring, small, bottom_right = 2, 5, 0, 3
    assert grammar.caption([(cross, red, large, top_left)], 1) == (
        "there is a large red cross in the top left of the image"
    )
    assert grammar.caption([(ring, blue, small, bottom_right), (cross, red, large, top_left)], 0) == (
        "a small blue ring in the bottom right and a large red cross in the top left"
    )


def test_words_cover_every_attribute_and_template_word():
    words = grammar.words()
    for name in grammar.SHAPES + grammar.COLOURS + grammar.SIZES + grammar.POSITIONS:
        assert set(grammar.split_words(name)) <= words
    assert {"there", "is", "of", "image", "at", "and", ","} <= words
    assert "{" not in "".join(words)


def test_split_words_separates_commas_like_the_bpe_pre_tokenizer():
    assert grammar.split_words("A Red X, large") == ["a", "red", "x", ",", "large"]
