import pytest
import torch
from open_clip.tokenizer import SimpleTokenizer

from scaling.data import grammar
from scaling.data.tokenizer import CompactTokenizer, bpe_tokenizer, synthetic_tokenizer
from scaling.data.zeroshot import synthetic_tasks


def test_end_of_text_is_the_largest_id_and_everything_fits_64():
    tok = synthetic_tokenizer(32)
    ids = tok(sorted(grammar.words()))
    assert tok.vocab_size == 64 and tok.context_length == 32
    assert ids.dtype == torch.int64 and ids.shape == (len(grammar.words()), 32)
    assert int(ids.max()) == tok.eot_token_id < 64
    assert tok.sot_token_id == tok.eot_token_id - 1
    assert (ids[:, 0] == tok.sot_token_id).all()


def test_padding_is_zero_after_end_of_text():
    tok = synthetic_tokenizer(32)
    row = tok(["a small red circle in the center"])[0]
    end = int((row == tok.eot_token_id).nonzero())
    assert end == 8 and (row[end + 1 :] == 0).all() and (row[:end] > 0).all()


def test_compact_ids_are_the_bpe_ids_remapped_in_order():
    tok = synthetic_tokenizer(32)
    caption = "there is a large cyan x in the bottom right of the image"
    bpe = SimpleTokenizer(context_length=32)([caption])[0]
    compact = tok([caption])[0]
    remap = torch.tensor([0, *tok.bpe_ids])
    assert torch.equal(remap[compact], bpe)


def test_every_zero_shot_prompt_is_encodable():
    tok = synthetic_tokenizer(32)
    for task in synthetic_tasks(eval_size=10):
        texts = [t.format(c) for c in task.classnames for t in task.templates]
        assert (tok(texts) == tok.eot_token_id).sum() == len(texts)


def test_unknown_word_raises_naming_it():
    with pytest.raises(ValueError, match="'dog'"):
        synthetic_tokenizer(32)(["a small red dog"])


def test_too_long_text_is_cut_and_keeps_end_of_text():
    tok = CompactTokenizer(["a", "red"], context_length=5)
    row = tok(["a red a red a red"])[0]
    assert row.tolist() == [tok.sot_token_id, 1, 2, 1, tok.eot_token_id]


def test_too_large_a_vocabulary_is_refused():
    with pytest.raises(ValueError, match="more than 3"):
        CompactTokenizer(["a", "red", "blue"], vocab_size=3)


def test_real_data_uses_open_clip_bpe():
    tok = bpe_tokenizer(context_length=20)
    assert tok.vocab_size == 49408 and tok(["a photo"]).shape == (1, 20)
