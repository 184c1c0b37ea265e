"""FullTokenizer as TensorFlow ops, so that a SavedModel takes raw text: core ops only (no tensorflow-text), so the
model loads in any TensorFlow 2.15-2.21 process and in TensorFlow Serving.

Equality with `bert.tokenization.FullTokenizer` comes by construction: every per-character decision of the
Python tokenizer (cleaning, CJK spacing, lower-casing and accent stripping, punctuation splitting) is computed at
export time by the Python tokenizer's own functions over all of Unicode and stored as a table, so the graph only
looks characters up. The one context-dependent step, Python's lower-casing of a final capital sigma, is computed
in the graph from two character classes (cased, case-ignorable) that are themselves read off `str.lower`. WordPiece
is the original's greedy longest-match-first, run for all words of a batch at once.
"""

import functools
import sys
import unicodedata
from typing import Dict, Mapping, Tuple

import tensorflow.compat.v1 as tf

from bert import tokenization

CAPITAL_SIGMA, FINAL_SIGMA = 0x3A3, "ς"
_REMOVED, _OTHER, _CASED, _IGNORABLE = 0, 1, 2, 3  # character classes for the final-sigma rule


def _basic_output(char: str, do_lower_case: bool) -> str:
    """What BasicTokenizer turns one character into, spaces marking where it splits (a capital sigma as if it were
    not final)."""
    code = ord(char)
    if code == 0 or code == 0xFFFD or tokenization._is_control(char):
        return ""
    if tokenization.is_whitespace(char) or char.isspace():  # str.split() also splits at U+2028, U+2029
        return " "
    text = char
    if do_lower_case:
        text = "".join(c for c in unicodedata.normalize("NFD", text.lower()) if unicodedata.category(c) != "Mn")
    text = "".join(f" {c} " if tokenization.is_punctuation(c) else c for c in text)
    return f" {text} " if tokenization.is_chinese_char(char) else text


def _sigma_class(char: str) -> int:
    """Whether `char` counts as cased or is skipped as case-ignorable by Python's final-sigma rule, read off
    `str.lower` itself: "cΣ" ends in ς only after a cased character, "AcΣ" also after an ignorable one."""
    if (char + "Σ").lower().endswith(FINAL_SIGMA):
        return _CASED
    if ("A" + char + "Σ").lower().endswith(FINAL_SIGMA):
        return _IGNORABLE
    return _OTHER


@functools.lru_cache(maxsize=2)
def character_tables(do_lower_case: bool) -> Tuple[Dict[int, str], Dict[int, int]]:
    """({code point: its basic-tokenizer output} for every character not kept as it is, {code point: class} for
    the characters the final-sigma rule treats specially); computed over all of Unicode, a few seconds."""
    outputs, classes = {}, {}
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue  # surrogates: never in valid UTF-8
        char = chr(code)
        output = _basic_output(char, do_lower_case)
        if output != char:
            outputs[code] = output
        if do_lower_case:
            sigma_class = _REMOVED if output == "" else _sigma_class(char)
            if sigma_class != _OTHER:
                classes[code] = sigma_class
    return outputs, classes


_KEEP_MARK = "\x01"  # the table's default: a control character, whose own output is "", so never an output


class GraphTokenizer:
    """`FullTokenizer(vocab, do_lower_case)` as ops: `ids(texts)` maps a [batch] string tensor to a ragged
    [batch, None] int64 tensor of WordPiece ids. Build it inside the graph that uses it."""

    def __init__(self, vocab: Mapping[str, int], do_lower_case: bool, unk_token: str = "[UNK]",
                 max_input_chars_per_word: int = 200):
        self.do_lower_case = do_lower_case
        self.max_input_chars_per_word = max_input_chars_per_word
        self.unk_id = vocab[unk_token]
        outputs, classes = character_tables(do_lower_case)
        self._outputs = _table(list(outputs), list(outputs.values()), _KEEP_MARK, tf.string)
        self._classes = _table(list(classes), list(classes.values()), _OTHER, tf.int64) if classes else None
        self._vocab = _table(list(vocab), list(vocab.values()), -1, tf.int64, key_dtype=tf.string)

    def ids(self, texts: tf.Tensor) -> tf.RaggedTensor:
        words = self.basic_tokens(texts)
        pieces = self._word_pieces(words.flat_values)
        return tf.RaggedTensor.from_row_splits(pieces, words.row_splits).merge_dims(1, 2)

    def basic_tokens(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """BasicTokenizer's tokens of each text: ragged [batch, None] strings."""
        codes = tf.strings.unicode_decode(texts, "UTF-8", errors="replace", replacement_char=0xFFFD)
        flat = tf.cast(codes.flat_values, tf.int64)
        mapped = self._outputs.lookup(flat)
        chars = tf.strings.unicode_encode(tf.expand_dims(tf.cast(flat, tf.int32), 1), "UTF-8")
        outputs = tf.where(tf.equal(mapped, _KEEP_MARK), chars, mapped)
        if self._classes is not None:
            outputs = tf.where(self._final_sigmas(flat, codes.value_rowids()), tf.fill(tf.shape(outputs), FINAL_SIGMA),
                               outputs)
        texts = tf.strings.reduce_join(tf.RaggedTensor.from_row_splits(outputs, codes.row_splits), axis=1)
        words = tf.strings.split(texts, sep=" ", result_type="RaggedTensor")
        return tf.ragged.boolean_mask(words, tf.not_equal(words, ""))

    def _final_sigmas(self, codes: tf.Tensor, rows: tf.Tensor) -> tf.Tensor:
        """Where a capital sigma lowers to a final sigma: after a cased character and not before one, skipping
        case-ignorable (and removed) characters, within its text (spaces and other characters stop the search)."""
        classes = self._classes.lookup(codes)
        counted = tf.logical_not(tf.logical_or(tf.equal(classes, _IGNORABLE), tf.equal(classes, _REMOVED)))
        positions = tf.where(counted)[:, 0]
        num_counted = tf.shape(positions, out_type=tf.int64)[0]
        before = tf.cumsum(tf.cast(counted, tf.int64), exclusive=True)
        through = before + tf.cast(counted, tf.int64)

        def cased_at(index: tf.Tensor, exists: tf.Tensor) -> tf.Tensor:
            position = tf.gather(positions, tf.clip_by_value(index, 0, tf.maximum(num_counted - 1, 0)))
            same_text = tf.equal(tf.gather(rows, position), rows)
            return exists & same_text & tf.equal(tf.gather(classes, position), _CASED)

        cased_before = cased_at(before - 1, before > 0)
        cased_after = cased_at(through, through < num_counted)
        return tf.equal(codes, CAPITAL_SIGMA) & cased_before & tf.logical_not(cased_after)

    def _word_pieces(self, words: tf.Tensor) -> tf.RaggedTensor:
        """WordPiece of each word, greedy longest-match-first ("##" on pieces after the first); a word longer than
        max_input_chars_per_word, or with a part no vocabulary entry matches, is one [UNK]. Each round matches
        one piece of every word not yet done, trying all its remaining lengths at once."""
        lengths = tf.strings.length(words, unit="UTF8_CHAR")
        too_long = lengths > self.max_input_chars_per_word
        num_words = tf.shape(words)[0]

        def unfinished(start, failed):
            return tf.logical_and(tf.logical_and(start < lengths, tf.logical_not(failed)), tf.logical_not(too_long))

        def step(start, failed, pieces, round_index):
            index = tf.where(unfinished(start, failed))[:, 0]
            word, begin = tf.gather(words, index), tf.gather(start, index)
            remaining = tf.gather(lengths, index) - begin
            widths = tf.range(1, tf.reduce_max(remaining) + 1)  # [K]
            shape = [tf.shape(index)[0], tf.shape(widths)[0]]
            width_grid = tf.broadcast_to(tf.expand_dims(widths, 0), shape)
            candidates = tf.strings.substr(tf.broadcast_to(tf.expand_dims(word, 1), shape),
                                           tf.broadcast_to(tf.expand_dims(begin, 1), shape), width_grid,
                                           unit="UTF8_CHAR")
            candidates = tf.where(tf.broadcast_to(tf.expand_dims(begin > 0, 1), shape),
                                  tf.strings.join(["##", candidates]), candidates)
            ids = self._vocab.lookup(candidates)
            matches = tf.logical_and(ids >= 0, width_grid <= tf.expand_dims(remaining, 1))
            best = tf.reduce_max(tf.where(matches, width_grid, tf.zeros_like(width_grid)), axis=1)  # 0: none
            piece = tf.gather(ids, tf.maximum(best - 1, 0), batch_dims=1)
            found = best > 0
            rows = tf.expand_dims(index, 1)
            start = tf.tensor_scatter_nd_add(start, rows, best)
            failed = tf.tensor_scatter_nd_update(failed, rows, tf.logical_not(found))
            column = tf.tensor_scatter_nd_update(-tf.ones([num_words], tf.int64), rows,
                                                 tf.where(found, piece, -tf.ones_like(piece)))
            return start, failed, pieces.write(round_index, column), round_index + 1

        def any_unfinished(start, failed, pieces, round_index):
            return tf.reduce_any(unfinished(start, failed))

        pieces = tf.TensorArray(tf.int64, size=0, dynamic_size=True, element_shape=tf.TensorShape([None]))
        _, failed, pieces, rounds = tf.while_loop(
            any_unfinished, step, [tf.zeros_like(lengths), tf.zeros_like(too_long), pieces, tf.constant(0)])
        matrix = tf.cond(rounds > 0, lambda: tf.transpose(pieces.stack()), lambda: tf.zeros([num_words, 0], tf.int64))
        unknown = tf.expand_dims(tf.logical_or(failed, too_long), 1)
        first = tf.where(unknown, tf.fill([num_words, 1], tf.constant(self.unk_id, tf.int64)),
                         -tf.ones([num_words, 1], tf.int64))
        matrix = tf.where(tf.broadcast_to(unknown, tf.shape(matrix)), -tf.ones_like(matrix), matrix)
        matrix = tf.concat([first, matrix], axis=1)
        return tf.ragged.boolean_mask(matrix, matrix >= 0)


def _table(keys, values, default, value_dtype, key_dtype=tf.int64) -> tf.lookup.StaticHashTable:
    initializer = tf.lookup.KeyValueTensorInitializer(tf.constant(keys, key_dtype), tf.constant(values, value_dtype))
    return tf.lookup.StaticHashTable(initializer, tf.constant(default, value_dtype))


def pack_pairs(ids_a: tf.RaggedTensor, ids_b: tf.RaggedTensor, max_seq_length: int, cls_id: int,
               sep_id: int) -> Dict[str, tf.Tensor]:
    """`encode_text` for a batch of id sequences: `[CLS] a [SEP] (b [SEP])` with its segment ids and mask, a pair
    truncated as `truncate_seq_pair` does (from the longer side, b on ties), a text without b to max_seq_length - 2.
    The int32 [batch, length] features are padded to the batch's longest input, not to max_seq_length."""
    length_a, length_b = ids_a.row_lengths(), ids_b.row_lengths()
    has_b = length_b > 0
    room = max_seq_length - 3  # a pair's tokens besides [CLS] and two [SEP]
    # truncate_seq_pair, solved: the longer side gives way until both meet at half of the room, b first on ties.
    kept_a_pair = tf.where(length_a + length_b <= room, length_a,
                           tf.minimum(length_a, tf.maximum(tf.constant((room + 1) // 2, tf.int64), room - length_b)))
    kept_a = tf.where(has_b, kept_a_pair, tf.minimum(length_a, tf.constant(max_seq_length - 2, tf.int64)))
    kept_b = tf.where(has_b, tf.minimum(length_b, room - kept_a_pair), tf.zeros_like(length_b))
    cut_a = tf.ragged.boolean_mask(ids_a, tf.ragged.range(length_a) < tf.expand_dims(kept_a, 1))
    cut_b = tf.ragged.boolean_mask(ids_b, tf.ragged.range(length_b) < tf.expand_dims(kept_b, 1))
    batch = tf.shape(length_a, out_type=tf.int64)[0]

    def marker(token_id: int, present: tf.Tensor) -> tf.RaggedTensor:
        counts = tf.cast(present, tf.int64)
        return tf.RaggedTensor.from_row_lengths(tf.fill([tf.reduce_sum(counts)], tf.constant(token_id, tf.int64)),
                                                counts)

    always = tf.ones([batch], tf.bool)
    parts = [marker(cls_id, always), cut_a, marker(sep_id, always), cut_b, marker(sep_id, has_b)]
    segments = [0, 0, 0, 1, 1]
    input_ids = tf.concat(parts, axis=1)
    segment_ids = tf.concat([tf.ones_like(part) * segment for part, segment in zip(parts, segments)], axis=1)
    return {"input_ids": tf.cast(input_ids.to_tensor(0), tf.int32),
            "input_mask": tf.cast(tf.ones_like(input_ids).to_tensor(0), tf.int32),
            "segment_ids": tf.cast(segment_ids.to_tensor(0), tf.int32)}
