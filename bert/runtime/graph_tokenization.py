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
from typing import Dict, Mapping, NamedTuple, Tuple

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


class WordPieces(NamedTuple):
    """The WordPiece tokens of a batch of texts: ragged [batch, None] int64 tensors, one value per token."""

    ids: tf.RaggedTensor
    starts: tf.RaggedTensor  # where in its text (in characters, i.e. code points) the token's characters begin
    ends: tf.RaggedTensor  # one past the last character it came from


class GraphTokenizer:
    """`FullTokenizer(vocab, do_lower_case)` as ops: `ids(texts)` maps a [batch] string tensor to a ragged
    [batch, None] int64 tensor of WordPiece ids; `word_pieces(texts)` adds where each token lies in its text. Build
    it inside the graph that uses it."""

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
        return self.word_pieces(texts).ids

    def word_pieces(self, texts: tf.Tensor) -> WordPieces:
        words, sources = self._basic_tokens(texts)
        ids, begins, widths = self._word_pieces(words.flat_values)
        # A piece covers characters [begin, begin + width) of its word's output; each came from one text character.
        first_output = tf.gather(sources.row_splits, ids.value_rowids()) + begins.flat_values
        starts = tf.gather(sources.flat_values, first_output)
        ends = tf.gather(sources.flat_values, first_output + widths.flat_values - 1) + 1

        def per_text(values: tf.Tensor) -> tf.RaggedTensor:
            return tf.RaggedTensor.from_row_splits(ids.with_flat_values(values), words.row_splits).merge_dims(1, 2)

        return WordPieces(per_text(ids.flat_values), per_text(starts), per_text(ends))

    def _basic_tokens(self, texts: tf.Tensor) -> Tuple[tf.RaggedTensor, tf.RaggedTensor]:
        """BasicTokenizer's tokens of each text, and for each token the position in its text of the character each
        of its characters came from (ragged [num_tokens, None]; lower-casing may make two of one)."""
        codes = tf.strings.unicode_decode(texts, "UTF-8", errors="replace", replacement_char=0xFFFD)
        flat = tf.cast(codes.flat_values, tf.int64)
        mapped = self._outputs.lookup(flat)
        chars = tf.strings.unicode_encode(tf.expand_dims(tf.cast(flat, tf.int32), 1), "UTF-8")
        outputs = tf.where(tf.equal(mapped, _KEEP_MARK), chars, mapped)
        if self._classes is not None:
            outputs = tf.where(self._final_sigmas(flat, codes.value_rowids()), tf.fill(tf.shape(outputs), FINAL_SIGMA),
                               outputs)
        text_rows = codes.value_rowids()
        positions = tf.range(tf.shape(flat, out_type=tf.int64)[0]) - tf.gather(codes.row_splits, text_rows)
        # Every output character with the text character it came from; tokens are the runs of non-spaces.
        output_chars = tf.strings.unicode_decode(outputs, "UTF-8")
        source = output_chars.value_rowids()
        text_of = tf.gather(text_rows, source)
        kept = tf.not_equal(output_chars.flat_values, ord(" "))
        previous_kept = tf.concat([[False], kept[:-1]], axis=0)
        previous_text = tf.concat([[tf.constant(-1, tf.int64)], text_of[:-1]], axis=0)
        starts_token = kept & (tf.logical_not(previous_kept) | tf.not_equal(text_of, previous_text))
        token_of = tf.boolean_mask(tf.cumsum(tf.cast(starts_token, tf.int64)) - 1, kept)
        num_tokens = tf.reduce_sum(tf.cast(starts_token, tf.int64))
        token_chars = tf.RaggedTensor.from_value_rowids(tf.boolean_mask(output_chars.flat_values, kept), token_of,
                                                        nrows=num_tokens)
        token_sources = tf.RaggedTensor.from_value_rowids(tf.boolean_mask(tf.gather(positions, source), kept),
                                                          token_of, nrows=num_tokens)
        tokens = tf.RaggedTensor.from_value_rowids(tf.strings.unicode_encode(token_chars, "UTF-8"),
                                                   tf.boolean_mask(text_of, starts_token),
                                                   nrows=tf.shape(texts, out_type=tf.int64)[0])
        return tokens, token_sources

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

    def _word_pieces(self, words: tf.Tensor) -> Tuple[tf.RaggedTensor, tf.RaggedTensor, tf.RaggedTensor]:
        """WordPiece of each word, greedy longest-match-first ("##" on pieces after the first); a word longer than
        max_input_chars_per_word, or with a part no vocabulary entry matches, is one [UNK]. Each round matches
        one piece of every word not yet done, trying all its remaining lengths at once. Returns ragged
        [num_words, None] ids, and where in its word each piece begins and how many characters it takes."""
        lengths = tf.strings.length(words, unit="UTF8_CHAR")
        too_long = lengths > self.max_input_chars_per_word
        num_words = tf.shape(words)[0]

        def unfinished(start, failed):
            return tf.logical_and(tf.logical_and(start < lengths, tf.logical_not(failed)), tf.logical_not(too_long))

        def step(start, failed, pieces, begins, widths_array, round_index):
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
            column = tf.tensor_scatter_nd_update(-tf.ones([num_words], tf.int64), rows,
                                                 tf.where(found, piece, -tf.ones_like(piece)))
            begin_column = tf.tensor_scatter_nd_update(tf.zeros([num_words], tf.int32), rows, begin)
            width_column = tf.tensor_scatter_nd_update(tf.zeros([num_words], tf.int32), rows, best)
            start = tf.tensor_scatter_nd_add(start, rows, best)
            failed = tf.tensor_scatter_nd_update(failed, rows, tf.logical_not(found))
            return (start, failed, pieces.write(round_index, column), begins.write(round_index, begin_column),
                    widths_array.write(round_index, width_column), round_index + 1)

        def any_unfinished(start, failed, pieces, begins, widths_array, round_index):
            return tf.reduce_any(unfinished(start, failed))

        def columns(dtype):
            return tf.TensorArray(dtype, size=0, dynamic_size=True, element_shape=tf.TensorShape([None]))

        _, failed, pieces, begins, widths, rounds = tf.while_loop(
            any_unfinished, step, [tf.zeros_like(lengths), tf.zeros_like(too_long), columns(tf.int64),
                                   columns(tf.int32), columns(tf.int32), tf.constant(0)])

        def stacked(array, dtype):
            return tf.cond(rounds > 0, lambda: tf.transpose(array.stack()), lambda: tf.zeros([num_words, 0], dtype))

        matrix = stacked(pieces, tf.int64)
        begin_matrix, width_matrix = stacked(begins, tf.int32), stacked(widths, tf.int32)
        unknown = tf.expand_dims(tf.logical_or(failed, too_long), 1)
        first = tf.where(unknown, tf.fill([num_words, 1], tf.constant(self.unk_id, tf.int64)),
                         -tf.ones([num_words, 1], tf.int64))
        matrix = tf.where(tf.broadcast_to(unknown, tf.shape(matrix)), -tf.ones_like(matrix), matrix)
        matrix = tf.concat([first, matrix], axis=1)
        begin_matrix = tf.concat([tf.zeros([num_words, 1], tf.int32), begin_matrix], axis=1)
        width_matrix = tf.concat([tf.expand_dims(lengths, 1), width_matrix], axis=1)  # [UNK]: the whole word
        kept = matrix >= 0
        return (tf.ragged.boolean_mask(matrix, kept), tf.cast(tf.ragged.boolean_mask(begin_matrix, kept), tf.int64),
                tf.cast(tf.ragged.boolean_mask(width_matrix, kept), tf.int64))


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
