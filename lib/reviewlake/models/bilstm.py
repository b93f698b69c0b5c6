"""The BiLSTM of the LSTM seeds: its own vocabulary, an embedding, stacked bidirectional LSTMs, softmax.

Words are lower-cased runs of letters, digits and apostrophes (:func:`words`, the same rule as the
Spark ``RegexTokenizer`` that builds the vocabulary from the train split). Ids: 0 pads, 1 is a word
outside the vocabulary, the vocabulary's words follow by frequency. The seeds: 166 tokens (3.6M
Amazon polarity) or 100 (14M), embedding 50, dropout 0.2, BiLSTM 48 / 24 / 12, Adam at 0.01,
batch 256, early stopping on validation recall with patience 2.
"""

from __future__ import annotations

import re

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

PAD, UNK = 0, 1
WORD_GAPS = r"[^a-z0-9']+"   # what separates words (RegexTokenizer's pattern, gaps=True)


def words(text: str | None) -> list[str]:
    """The words of ``text`` as the vocabulary counts them."""
    return [w for w in re.split(WORD_GAPS, (text or "").lower()) if w]


def encode_words(tokens: list[str], index: dict[str, int], max_length: int) -> list[int]:
    """Word ids of the first ``max_length`` words (``UNK`` outside the vocabulary)."""
    return [index.get(w, UNK) for w in tokens[:max_length]] or [UNK]


class BiLSTMClassifier(nn.Module):
    """Embedding -> dropout -> stacked bidirectional LSTMs -> the last layer's final states -> logits."""

    def __init__(self, vocab_size: int, embedding: int, hidden: list[int], num_classes: int,
                 dropout: float = 0.2) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        sizes = [embedding] + [2 * h for h in hidden[:-1]]
        self.layers = nn.ModuleList(nn.LSTM(i, h, batch_first=True, bidirectional=True) for i, h in zip(sizes, hidden))
        self.out = nn.Linear(2 * hidden[-1], num_classes)

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.embedding(input_ids))
        lengths = lengths.clamp(min=1).cpu()
        final = None
        for i, lstm in enumerate(self.layers):
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, (h, _) = lstm(packed)
            final = torch.cat([h[0], h[1]], dim=1)  # forward and backward final states
            if i < len(self.layers) - 1:
                x, _ = pad_packed_sequence(out, batch_first=True, total_length=input_ids.shape[1])
                x = self.dropout(x)
        assert final is not None
        return self.out(self.dropout(final))
