"""`bert.runtime.windows` as graph ops, for SavedModels that take raw text: the doc-stride windows over each
example's tokens and the window where a token has the most context, for a whole batch of examples at once."""

from typing import NamedTuple

import tensorflow.compat.v1 as tf


class DocWindows(NamedTuple):
    """The windows `make_doc_spans` cuts for each example of a batch: per example ([examples] int64) and per window
    ([windows] int64, the windows of example 0 first)."""

    num_tokens: tf.Tensor  # per example: how many tokens the windows cover
    max_tokens: tf.Tensor  # per example: the most a window holds
    stride: tf.Tensor  # per example: how far each window starts after the previous one
    num_windows: tf.Tensor  # per example
    example: tf.Tensor  # per window: its example
    index: tf.Tensor  # per window: its place among its example's windows
    start: tf.Tensor  # per window: its first token
    length: tf.Tensor  # per window: how many tokens it holds


def doc_windows(num_tokens: tf.Tensor, max_tokens: tf.Tensor, doc_stride: int) -> DocWindows:
    """Windows of at most `max_tokens` of each example's `num_tokens` tokens (int64 [examples]), each `doc_stride`
    after the previous, until one reaches the end; none for an example without tokens."""
    max_tokens = tf.broadcast_to(tf.cast(max_tokens, tf.int64), tf.shape(num_tokens))
    stride = tf.minimum(max_tokens, doc_stride)  # only the last window is shorter than max_tokens
    num_windows = tf.where(num_tokens > 0, 1 + (tf.maximum(num_tokens - max_tokens, 0) + stride - 1) // stride,
                           tf.zeros_like(num_tokens))
    windows = tf.ragged.range(num_windows)
    example = windows.value_rowids()
    start = windows.flat_values * tf.gather(stride, example)
    length = tf.minimum(tf.gather(max_tokens, example), tf.gather(num_tokens, example) - start)
    return DocWindows(num_tokens, max_tokens, stride, num_windows, example, windows.flat_values, start, length)


def max_context_window(windows: DocWindows, example: tf.Tensor, position: tf.Tensor) -> tf.Tensor:
    """For tokens given by `example` and `position` (int64 [N], the position among the example's tokens): the index
    among the example's windows of the one `is_max_context` picks, the largest min(left, right context) + 0.01 *
    length, the first of equals; -1 for a position no window holds."""
    max_windows = tf.reduce_max(tf.concat([windows.num_windows, [0]], axis=0))
    candidates = tf.range(max_windows)[tf.newaxis, :]  # [1, K]: each example's windows
    position = position[:, tf.newaxis]
    start = candidates * tf.gather(windows.stride, example)[:, tf.newaxis]
    length = tf.minimum(tf.gather(windows.max_tokens, example)[:, tf.newaxis],
                        tf.gather(windows.num_tokens, example)[:, tf.newaxis] - start)
    holds = ((candidates < tf.gather(windows.num_windows, example)[:, tf.newaxis])
             & (position >= start) & (position < start + length))
    score = (tf.cast(tf.minimum(position - start, start + length - 1 - position), tf.float64)
             + 0.01 * tf.cast(length, tf.float64))  # float64, the original's Python arithmetic
    score = tf.where_v2(holds, score, tf.constant(-1.0, tf.float64))
    best = tf.reduce_max(score, axis=1, keepdims=True)
    first_best = tf.reduce_min(tf.where_v2(tf.equal(score, best) & holds, candidates, max_windows), axis=1)
    return tf.where_v2(first_best < max_windows, first_best, tf.constant(-1, tf.int64))


def gather_or_zero(values: tf.Tensor, index: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """values[index] where `valid`, else 0 (also when `values` is empty): a window's tokens, zero-padded."""
    padded = tf.concat([values, tf.zeros([1], values.dtype)], axis=0)
    return tf.gather(padded, tf.where_v2(valid, index, tf.size(values, out_type=index.dtype)))
