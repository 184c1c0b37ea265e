"""run_squad's path from a question and its context to an answer, as graph ops, for a SavedModel that takes raw text.

The windows are `convert_examples_to_features`' (the question cut to max_query_length, the context's WordPiece
tokens in doc_stride windows padded to max_seq_length, each token scored in the window where it has the most
context) and the answer is `compute_predictions`' best candidate: among the n_best_size best starts and ends of
every window, the valid span (inside the context, starting at a token of maximal context, at most
max_answer_length tokens) with the largest start + end logit; in 2.0 mode "" when the null score beats it by more
than null_score_diff_threshold.

The answer's text is cut from the context at the characters its first and last WordPiece tokens came from, where
run_squad re-aligns a normalised text with the original words (`get_final_text`); the two agree except where that
alignment fails and run_squad falls back to whole words (e.g. an answer starting or ending at an [UNK] token
that is only part of a space-delimited word, such as the emoji in "(😀)").
"""

import dataclasses
from typing import Dict, Mapping, NamedTuple, Tuple

import tensorflow.compat.v1 as tf

from bert.runtime.graph_tokenization import GraphTokenizer, WordPieces
from bert.runtime.graph_windows import doc_windows, gather_or_zero, max_context_window

INPUT_NAMES = ("question", "context")


class _WindowedBatch(NamedTuple):
    """What turning a batch's logits back into answers needs to know of its windows."""

    context: tf.Tensor  # [examples] the contexts as given
    pieces: WordPieces  # the contexts' tokens and their characters
    example: tf.Tensor  # [windows] the example of each window
    num_examples: tf.Tensor
    doc_index: tf.Tensor  # [windows, max_seq_length] each position's token among all contexts' tokens
    is_doc: tf.Tensor  # [windows, max_seq_length] whether the position holds a context token
    is_max_context: tf.Tensor  # ... one whose window is the one where it has the most context


@dataclasses.dataclass
class QuestionsInContexts:
    """The text inputs of a SQuAD model's text signature: `features` builds the windows of a batch of (question,
    context) strings, `outputs` turns the model's logits on them into one answer per question."""

    max_seq_length: int
    doc_stride: int
    max_query_length: int
    n_best_size: int
    max_answer_length: int
    version_2_with_negative: bool
    null_score_diff_threshold: float
    input_names: Tuple[str, ...] = INPUT_NAMES

    def features(self, tokenizer: GraphTokenizer, vocab: Mapping[str, int],
                 texts: Mapping[str, tf.Tensor]) -> Tuple[Dict[str, tf.Tensor], _WindowedBatch]:
        query = tokenizer.ids(texts["question"])[:, :self.max_query_length]
        doc = tokenizer.word_pieces(texts["context"])
        num_examples = tf.shape(texts["context"], out_type=tf.int64)[0]
        query_length = query.row_lengths()
        windows = doc_windows(doc.ids.row_lengths(), self.max_seq_length - 3 - query_length, self.doc_stride)
        example = windows.example

        positions = tf.range(self.max_seq_length, dtype=tf.int64)[tf.newaxis, :]  # [1, L]
        doc_first = tf.gather(query_length, example)[:, tf.newaxis] + 2  # where the context begins in the window
        doc_end = doc_first + windows.length[:, tf.newaxis]
        is_query = (positions >= 1) & (positions < doc_first - 1)
        is_doc = (positions >= doc_first) & (positions < doc_end)
        is_sep = tf.equal(positions, doc_first - 1) | tf.equal(positions, doc_end)
        piece = windows.start[:, tf.newaxis] + positions - doc_first  # the position's index among the context's tokens
        query_index = tf.gather(query.row_starts(), example)[:, tf.newaxis] + positions - 1
        query_ids = gather_or_zero(query.flat_values, query_index, is_query)
        doc_index = tf.gather(doc.ids.row_starts(), example)[:, tf.newaxis] + piece
        doc_ids = gather_or_zero(doc.ids.flat_values, doc_index, is_doc)
        input_ids = tf.where_v2(tf.equal(positions, 0), tf.constant(vocab["[CLS]"], tf.int64),
                                tf.where_v2(is_sep, tf.constant(vocab["[SEP]"], tf.int64), query_ids + doc_ids))
        owner = max_context_window(windows, tf.reshape(tf.broadcast_to(example[:, tf.newaxis], tf.shape(piece)), [-1]),
                                   tf.reshape(piece, [-1]))
        is_max_context = is_doc & tf.equal(tf.reshape(owner, tf.shape(piece)), windows.index[:, tf.newaxis])
        features = {"input_ids": tf.cast(input_ids, tf.int32),
                    "input_mask": tf.cast(positions < doc_end + 1, tf.int32),
                    "segment_ids": tf.cast(is_doc | tf.equal(positions, doc_end), tf.int32)}
        return features, _WindowedBatch(texts["context"], doc, example, num_examples, doc_index, is_doc, is_max_context)

    def outputs(self, model_outputs: Mapping[str, tf.Tensor], windows: _WindowedBatch) -> Dict[str, tf.Tensor]:
        """answer (string), start and end (its characters in the context), score (its start + end logit); in 2.0
        mode also null_score_diff. A question with no valid span (or an empty context) gets "" at (0, 0)."""
        start_logits = tf.cast(model_outputs["start_logits"], tf.float64)
        end_logits = tf.cast(model_outputs["end_logits"], tf.float64)
        n_best = min(self.n_best_size, self.max_seq_length)
        best_start_logits, best_starts = tf.nn.top_k(start_logits, n_best)  # ties: the lower position first
        best_end_logits, best_ends = tf.nn.top_k(end_logits, n_best)
        starts = tf.cast(best_starts[:, :, tf.newaxis], tf.int64)  # [windows, n, 1]
        ends = tf.cast(best_ends[:, tf.newaxis, :], tf.int64)  # [windows, 1, n]
        valid = (tf.gather(windows.is_max_context, best_starts, batch_dims=1)[:, :, tf.newaxis]
                 & tf.gather(windows.is_doc, best_ends, batch_dims=1)[:, tf.newaxis, :]
                 & (ends >= starts) & (ends - starts + 1 <= self.max_answer_length))
        scores = best_start_logits[:, :, tf.newaxis] + best_end_logits[:, tf.newaxis, :]
        scores = tf.reshape(tf.where_v2(valid, scores, tf.constant(-float("inf"), tf.float64)),
                            [tf.shape(scores)[0], -1])
        # The first of the best: window order, then start rank, then end rank, as run_squad's stable sort.
        window_best = tf.reduce_max(scores, axis=1)
        window_choice = tf.argmax(tf.cast(tf.equal(scores, window_best[:, tf.newaxis]), tf.int32), axis=1,
                                  output_type=tf.int64)
        example_best = tf.math.unsorted_segment_max(window_best, windows.example, windows.num_examples)
        num_windows = tf.shape(window_best, out_type=tf.int64)[0]
        window_ids = tf.range(num_windows)
        chosen_window = tf.math.unsorted_segment_min(
            tf.where_v2(tf.equal(window_best, tf.gather(example_best, windows.example)), window_ids, num_windows),
            windows.example, windows.num_examples)
        found = (chosen_window < num_windows) & (example_best > -float("inf"))  # some window has a valid span
        window = tf.minimum(chosen_window, tf.maximum(num_windows - 1, 0))
        choice = tf.gather(window_choice, window)
        start_position = tf.gather(starts[:, :, 0], window)
        start_position = tf.gather(start_position, choice // n_best, batch_dims=1)
        end_position = tf.gather(tf.gather(ends[:, 0, :], window), choice % n_best, batch_dims=1)
        doc_index = tf.gather(windows.doc_index, window)
        start_char = gather_or_zero(windows.pieces.starts.flat_values,
                                    tf.gather(doc_index, start_position, batch_dims=1), found)
        end_char = gather_or_zero(windows.pieces.ends.flat_values, tf.gather(doc_index, end_position, batch_dims=1),
                                  found)
        score = tf.where_v2(found, example_best, tf.constant(0.0, tf.float64))
        outputs = {}
        if self.version_2_with_negative:
            null_scores = tf.math.unsorted_segment_min(start_logits[:, 0] + end_logits[:, 0], windows.example,
                                                       windows.num_examples)
            has_windows = tf.math.unsorted_segment_max(tf.ones_like(windows.example), windows.example,
                                                       windows.num_examples) > 0
            null_scores = tf.where_v2(has_windows, null_scores, tf.constant(0.0, tf.float64))  # an empty context
            null_score_diff = null_scores - score
            answered = found & (null_score_diff <= self.null_score_diff_threshold)
            score = tf.where_v2(answered, score, null_scores)  # "" is the null candidate, with its score
            found = answered
            outputs["null_score_diff"] = null_score_diff
        start_char = tf.where_v2(found, start_char, tf.constant(0, tf.int64))
        end_char = tf.where_v2(found, end_char, tf.constant(0, tf.int64))
        outputs.update(answer=tf.strings.substr(windows.context, start_char, end_char - start_char, unit="UTF8_CHAR"),
                       start=start_char, end=end_char, score=score)
        return outputs
