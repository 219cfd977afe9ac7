"""Tokenizers: a compact-vocabulary one for the synthetic grammar, open_clip's BPE for real captions.

With open_clip's 49,408-token vocabulary the embedding table of a tiny model holds most of its parameters,
so synthetic runs remap the few BPE ids the grammar uses onto 1..K. The remap preserves the BPE order, so
end-of-text stays the largest id and open_clip's argmax text pooling still finds it.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import torch
from open_clip.tokenizer import SimpleTokenizer

from scaling.data import grammar

COMPACT_VOCAB_SIZE = 64  # the tiny model configs' text vocab_size
PAD_ID = 0


@lru_cache(maxsize=1)
def _bpe() -> SimpleTokenizer:
    """Loading the BPE merges takes ~0.1 s; every tokenizer shares one instance."""
    return SimpleTokenizer()


class CompactTokenizer:
    """Tokenize sentences of a closed vocabulary into compact ids (pad 0, start/end of text the largest)."""

    def __init__(
        self, vocabulary: Iterable[str], context_length: int = 32, vocab_size: int = COMPACT_VOCAB_SIZE
    ) -> None:
        bpe = _bpe()
        pieces = {word: bpe.encode(word) for word in vocabulary}
        used = sorted({i for ids in pieces.values() for i in ids} | {bpe.sot_token_id, bpe.eot_token_id})
        if len(used) >= vocab_size:
            raise ValueError(f"vocabulary needs {len(used) + 1} ids with padding, more than {vocab_size}")
        compact = {bpe_id: k for k, bpe_id in enumerate(used, start=PAD_ID + 1)}
        self._ids = {word: [compact[i] for i in ids] for word, ids in pieces.items()}
        self.bpe_ids = tuple(used)  # compact id k + 1 is BPE id bpe_ids[k]
        self.sot_token_id = compact[bpe.sot_token_id]
        self.eot_token_id = compact[bpe.eot_token_id]
        self.vocab_size = vocab_size
        self.context_length = context_length

    def encode(self, text: str) -> list[int]:
        """Compact ids of a sentence, without start/end of text; an unknown word is an error, not a guess."""
        ids: list[int] = []
        for word in grammar.split_words(text):
            if word not in self._ids:
                raise ValueError(f"word {word!r} in {text!r} is not in the synthetic caption vocabulary")
            ids.extend(self._ids[word])
        return ids

    def __call__(self, texts: str | list[str], context_length: int | None = None) -> torch.Tensor:
        """LongTensor [n, context_length]; longer texts are cut, ending with end-of-text as in open_clip."""
        texts = [texts] if isinstance(texts, str) else texts
        length = context_length or self.context_length
        out = np.full((len(texts), length), PAD_ID, dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.sot_token_id, *self.encode(text)][: length - 1]
            ids.append(self.eot_token_id)
            out[row, : len(ids)] = ids
        return torch.from_numpy(out)


@lru_cache(maxsize=8)
def synthetic_tokenizer(context_length: int = 32) -> CompactTokenizer:
    """The tokenizer of every synthetic source: the grammar's words in a 64-id vocabulary."""
    return CompactTokenizer(sorted(grammar.words()), context_length)


def bpe_tokenizer(context_length: int = 32) -> SimpleTokenizer:
    """open_clip's own tokenizer (vocab 49,408) for free-form captions of real data."""
    return SimpleTokenizer(context_length=context_length)
