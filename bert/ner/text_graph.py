"""run_ner's path from raw text to a tag per word, as graph ops, for a SavedModel that takes raw text.

The words are `bert.ner.data.split_words`' (runs of non-space characters, each punctuation character and CJK
ideograph a word of its own), each word's WordPiece tokens go into `doc_stride` windows of max_seq_length
(`[CLS] tokens [SEP]`), and each word takes the most probable label at its first token, in the window where that
token has the most context: what the Predictor's `tag` and run_ner's test_predictions.txt give.
"""

import dataclasses
import functools
import sys
from typing import Dict, Mapping, NamedTuple, Sequence, Tuple

import tensorflow.compat.v1 as tf

from bert import tokenization
from bert.runtime.graph_tokenization import GraphTokenizer
from bert.runtime.graph_windows import doc_windows, gather_or_zero, max_context_window

INPUT_NAMES = ("text",)
_INSIDE, _SPACE, _ALONE = 0, 1, 2  # how split_words treats a character


@functools.lru_cache(maxsize=1)
def _word_character_classes() -> Dict[int, int]:
    """{code point: _SPACE or _ALONE} over all of Unicode, from split_words' own tests (the rest is _INSIDE)."""
    classes = {}
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        if tokenization.is_punctuation(char) or tokenization.is_chinese_char(char):
            classes[code] = _ALONE
        elif tokenization.is_whitespace(char):
            classes[code] = _SPACE
    return classes


class _WordBatch(NamedTuple):
    """What turning a batch's label probabilities back into tags needs to know of its words and windows."""

    words: tf.RaggedTensor  # [texts, None] the words' strings
    starts: tf.RaggedTensor  # [texts, None] each word's first character in its text
    ends: tf.RaggedTensor  # ... one past its last
    window: tf.Tensor  # [words] the window labelling each word
    position: tf.Tensor  # [words] its first token's position in that window


@dataclasses.dataclass
class TextsToTag:
    """The text inputs of a NER model's text signature: `features` builds the windows of a batch of texts,
    `outputs` gives each word its tag."""

    max_seq_length: int
    doc_stride: int
    labels: Sequence[str]
    input_names: Tuple[str, ...] = INPUT_NAMES

    def features(self, tokenizer: GraphTokenizer, vocab: Mapping[str, int],
                 texts: Mapping[str, tf.Tensor]) -> Tuple[Dict[str, tf.Tensor], _WordBatch]:
        words, word_starts, word_ends = self._split_words(texts["text"])
        pieces = tokenizer.ids(words.flat_values)
        # A word the tokenizer drops entirely (control characters) is one [UNK], as run_ner's word_pieces has it.
        dropped = tf.cast(tf.equal(pieces.row_lengths(), 0), tf.int64)
        pieces = tf.concat([pieces, tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(dropped)], tf.constant(tokenizer.unk_id, tf.int64)), dropped)], axis=1)
        text_pieces = tf.RaggedTensor.from_row_splits(pieces, words.row_splits).merge_dims(1, 2)
        word_text = words.value_rowids()
        first_piece = (tf.cumsum(pieces.row_lengths(), exclusive=True)
                       - tf.gather(text_pieces.row_starts(), word_text))  # among its text's tokens

        windows = doc_windows(text_pieces.row_lengths(), self.max_seq_length - 2, self.doc_stride)
        positions = tf.range(self.max_seq_length, dtype=tf.int64)[tf.newaxis, :]
        length = windows.length[:, tf.newaxis]
        is_piece = (positions >= 1) & (positions <= length)
        piece_index = (tf.gather(text_pieces.row_starts(), windows.example)[:, tf.newaxis]
                       + windows.start[:, tf.newaxis] + positions - 1)
        input_ids = tf.where_v2(tf.equal(positions, 0), tf.constant(vocab["[CLS]"], tf.int64),
                                tf.where_v2(tf.equal(positions, length + 1), tf.constant(vocab["[SEP]"], tf.int64),
                                            gather_or_zero(text_pieces.flat_values, piece_index, is_piece)))
        features = {"input_ids": tf.cast(input_ids, tf.int32),
                    "input_mask": tf.cast(positions <= length + 1, tf.int32),
                    "segment_ids": tf.zeros_like(input_ids, tf.int32)}
        first_window = tf.cumsum(windows.num_windows, exclusive=True)  # each text's first among all windows
        window = tf.gather(first_window, word_text) + max_context_window(windows, word_text, first_piece)
        position = first_piece - tf.gather(windows.start, window) + 1  # +1 for [CLS]
        return features, _WordBatch(words, word_starts, word_ends, window, position)

    def outputs(self, model_outputs: Mapping[str, tf.Tensor], batch: _WordBatch) -> Dict[str, tf.Tensor]:
        """Per text, padded with "" (tags, words) and 0 (starts, ends) to the batch's most words: `tags` (each
        word's label), `words`, and `starts`, `ends` (each word's characters in its text)."""
        probabilities = tf.gather_nd(model_outputs["probabilities"], tf.stack([batch.window, batch.position], axis=1))
        tags = tf.gather(tf.constant(list(self.labels)), tf.argmax(probabilities, axis=-1))
        return {"tags": batch.words.with_flat_values(tags).to_tensor(""), "words": batch.words.to_tensor(""),
                "starts": batch.starts.to_tensor(0), "ends": batch.ends.to_tensor(0)}

    @staticmethod
    def _split_words(texts: tf.Tensor) -> Tuple[tf.RaggedTensor, tf.RaggedTensor, tf.RaggedTensor]:
        """split_words of each text: the words ([texts, None] strings) and their character offsets."""
        classes = _word_character_classes()
        table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(classes), tf.int64), tf.constant(list(classes.values()), tf.int64)), _INSIDE)
        codes = tf.strings.unicode_decode(texts, "UTF-8", errors="replace", replacement_char=0xFFFD)
        flat = codes.flat_values
        kind = table.lookup(tf.cast(flat, tf.int64))
        rows = codes.value_rowids()
        positions = tf.range(tf.shape(flat, out_type=tf.int64)[0]) - tf.gather(codes.row_splits, rows)
        previous = tf.concat([[tf.constant(_SPACE, tf.int64)], kind[:-1]], axis=0)
        previous = tf.where_v2(tf.equal(positions, 0), tf.constant(_SPACE, tf.int64), previous)  # a text's start
        starts_word = tf.equal(kind, _ALONE) | (tf.equal(kind, _INSIDE) & tf.not_equal(previous, _INSIDE))
        in_word = tf.not_equal(kind, _SPACE)
        word_of = tf.boolean_mask(tf.cumsum(tf.cast(starts_word, tf.int64)) - 1, in_word)
        num_words = tf.reduce_sum(tf.cast(starts_word, tf.int64))
        chars = tf.RaggedTensor.from_value_rowids(tf.boolean_mask(flat, in_word), word_of, nrows=num_words)
        ends = tf.math.unsorted_segment_max(tf.boolean_mask(positions, in_word), word_of, num_words) + 1
        word_text = tf.boolean_mask(rows, starts_word)

        def per_text(values: tf.Tensor) -> tf.RaggedTensor:
            return tf.RaggedTensor.from_value_rowids(values, word_text, nrows=tf.shape(texts, out_type=tf.int64)[0])

        return (per_text(tf.strings.unicode_encode(chars, "UTF-8")), per_text(tf.boolean_mask(positions, starts_word)),
                per_text(ends))
