"""Opt-in dynamic sequence length: batches cut to their longest example instead of padded to max_seq_length.

The TFRecord files keep the original's layout (every example padded to max_seq_length); the input_fn cuts each
batch after batching, so a model that attends only to real tokens gives the same results on fewer positions:

- `LengthSettings.cut_batch`: each batch keeps its longest example's length, rounded up to a multiple of 8 (or, for
  XLA, to one of a few fixed bucket lengths, so that only a few programs compile). TPUs need static shapes and are
  refused.
- `group_batches_by_length`: training batches of examples of similar length, in shuffled order.
- `order_by_length` / `order_for_evaluation` / `restore_order`: eval and predict sets run shortest first, results
  go back in input order.
"""

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple, TypeVar

import tensorflow.compat.v1 as tf

from bert.common.errors import UserError

LENGTH_MULTIPLE = 8  # cut lengths are multiples of this: few distinct shapes, aligned matrix sizes
BUCKET_STEP = 32  # with XLA, cut lengths come from multiples of this (plus max_seq_length)
BATCHES_PER_GROUP = 10  # group_by_length sorts windows of this many batches
MASK_FEATURE = "input_mask"  # 1 for real tokens: the batch's lengths are its row sums
TOKEN_FEATURES = ("input_ids", "input_mask", "segment_ids")  # the features holding one value per token

T = TypeVar("T")


def bucket_lengths(max_seq_length: int, step: int = BUCKET_STEP) -> Tuple[int, ...]:
    """The lengths an XLA run may cut to: multiples of `step` below max_seq_length, and max_seq_length."""
    return tuple(range(step, max_seq_length, step)) + (max_seq_length,)


@dataclasses.dataclass(frozen=True)
class LengthSettings:
    """How the input_fn shapes batches; the defaults are the original's static max_seq_length."""

    max_seq_length: int
    dynamic_padding: bool = False
    group_by_length: bool = False  # training only
    buckets: Optional[Tuple[int, ...]] = None  # None: round up to LENGTH_MULTIPLE
    token_features: Tuple[str, ...] = TOKEN_FEATURES  # the features cut with the tokens (e.g. per-token labels)

    @classmethod
    def for_run(cls, max_seq_length: int, dynamic_padding: bool, group_by_length: bool = False,
                use_tpu: bool = False, use_xla: bool = False,
                token_features: Tuple[str, ...] = TOKEN_FEATURES) -> "LengthSettings":
        """Checks the flags go together; XLA gets the bucket lengths, TPUs (static shapes only) are refused."""
        if group_by_length and not dynamic_padding:
            raise UserError("--group_by_length needs --dynamic_padding: batches of similar length only save work "
                            "when they are cut to their length; add --dynamic_padding=true")
        if dynamic_padding and use_tpu:
            raise UserError("--dynamic_padding does not work with --use_tpu: TPU programs need one static sequence "
                            "length; drop --dynamic_padding (or lower --max_seq_length)")
        buckets = bucket_lengths(max_seq_length) if dynamic_padding and use_xla else None
        return cls(max_seq_length, dynamic_padding, group_by_length, buckets, tuple(token_features))

    @classmethod
    def for_options(cls, options, token_features: Tuple[str, ...] = TOKEN_FEATURES) -> "LengthSettings":
        """`for_run` from a task's options (their max_seq_length, dynamic_padding, group_by_length and run)."""
        return cls.for_run(options.max_seq_length, options.dynamic_padding, options.group_by_length,
                           use_tpu=options.run.use_tpu, use_xla=options.run.performance.use_xla,
                           token_features=token_features)

    def cut_length(self, longest: tf.Tensor) -> tf.Tensor:
        """int32 scalar: the length a batch whose longest example has `longest` tokens is cut to."""
        longest = tf.maximum(longest, 1)
        if self.buckets is None:
            rounded = (longest + LENGTH_MULTIPLE - 1) // LENGTH_MULTIPLE * LENGTH_MULTIPLE
            return tf.minimum(rounded, self.max_seq_length)
        buckets = tf.constant(self.buckets, tf.int32)
        return tf.reduce_min(tf.boolean_mask(buckets, buckets >= longest))

    def cut_batch(self, batch: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        """`batch` with its per-token features [B, max_seq_length] cut to [B, cut_length]; others unchanged."""
        lengths = tf.reduce_sum(batch[MASK_FEATURE], axis=1)  # [B]
        length = self.cut_length(tf.reduce_max(lengths))
        return {name: tensor[:, :length] if name in self.token_features else tensor
                for name, tensor in batch.items()}


def group_batches_by_length(examples: tf.data.Dataset, batch_size: int, drop_remainder: bool,
                            batches_per_group: int = BATCHES_PER_GROUP) -> tf.data.Dataset:
    """Batches `examples` (dicts with an input_mask) so each batch holds examples of similar length.

    Every window of `batch_size * batches_per_group` consecutive examples is sorted by length and split into
    batches, which are then shuffled (buffer: one window's batches); each example lands in exactly one batch.
    """

    def sorted_batches(window: Dict[str, tf.Tensor]) -> tf.data.Dataset:
        lengths = tf.reduce_sum(window[MASK_FEATURE], axis=1)  # [W]
        order = tf.argsort(lengths, stable=True)
        in_order = {name: tf.gather(tensor, order) for name, tensor in window.items()}
        return tf.data.Dataset.from_tensor_slices(in_order).batch(batch_size, drop_remainder=drop_remainder)

    windows = examples.batch(batch_size * batches_per_group)
    return windows.flat_map(sorted_batches).shuffle(batches_per_group)


def order_by_length(lengths: Sequence[int]) -> List[int]:
    """Indices of `lengths`, shortest first (ties keep input order): the order eval/predict examples run in."""
    return sorted(range(len(lengths)), key=lambda index: lengths[index])


def order_for_evaluation(lengths: Sequence[int], batch_size: int) -> List[int]:
    """`order_by_length` for all but the last partial batch, which stays last and as it was.

    Estimator's eval `loss` is the mean of the batch means: with full batches of one size it does not depend on
    which examples share a batch, and keeping the partial batch whole keeps that value equal to the input order's.
    """
    num_full = len(lengths) - len(lengths) % batch_size
    return order_by_length(lengths[:num_full]) + list(range(num_full, len(lengths)))


def restore_order(results_in_order: Sequence[T], order: Sequence[int]) -> List[T]:
    """Results produced for the examples `order` listed, put back at their examples' input positions."""
    if len(results_in_order) != len(order):
        raise ValueError(f"{len(results_in_order)} results for {len(order)} examples")
    restored: List[Optional[T]] = [None] * len(order)
    for result, index in zip(results_in_order, order):
        restored[index] = result
    return restored
