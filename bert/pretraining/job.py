"""Masked-LM and next-sentence pre-training of BERT: the heads, their losses and metrics, and the run_pretraining job.

Variable names are the original's (`cls/predictions/...`, `cls/seq_relationship/...`), so released checkpoints
load and checkpoints written here load into the original. `scripts/run_pretraining.py` only turns flags into
`PretrainingOptions` and calls `run`.
"""

import dataclasses
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow.compat.v1 as tf

from bert import modeling, tokenization
from bert.common.errors import UserError, UserFileNotFoundError
from bert.pretraining import data as pretraining_data
from bert.runtime import checkpoints, input_pipeline, specs
from bert.runtime.specs import ModeKeys
from bert.runtime.engine import make_estimator
from bert.runtime.input_pipeline import Feature
from bert.runtime.options import RunSettings, TaskOptions
from bert.runtime.outputs import write_key_value_results


NUM_CPU_THREADS = 4  # the original's input_fn default: files read in parallel while training
RECORDS_CHECKED_PER_FILE = 16  # leading records of each input file whose shapes and ids are validated


def pretraining_feature_spec(max_seq_length: int, max_predictions_per_seq: int) -> List[Feature]:
    """The seven features create_pretraining_data writes."""
    return [
        Feature("input_ids", (max_seq_length,)),
        Feature("input_mask", (max_seq_length,)),
        Feature("segment_ids", (max_seq_length,)),
        Feature("masked_lm_positions", (max_predictions_per_seq,)),
        Feature("masked_lm_ids", (max_predictions_per_seq,)),
        Feature("masked_lm_weights", (max_predictions_per_seq,), dtype="float32"),
        Feature("next_sentence_labels", (1,)),
    ]


# ----------------------------------------------------------------------------------------------------------------
# The heads
# ----------------------------------------------------------------------------------------------------------------


def gather_indexes(sequence_tensor: tf.Tensor, positions: tf.Tensor) -> tf.Tensor:
    """The vectors at `positions` of each sequence in the batch, flattened.

    Args:
      sequence_tensor: float32 Tensor [batch_size, seq_length, width].
      positions: int32 Tensor [batch_size, num_positions].

    Returns:
      float32 Tensor [batch_size * num_positions, width].
    """
    batch_size, seq_length, width = modeling.get_shape_list(sequence_tensor, expected_rank=3)
    flat_offsets = tf.reshape(tf.range(0, batch_size, dtype=tf.int32) * seq_length, [-1, 1])  # [B, 1]
    flat_positions = tf.reshape(positions + flat_offsets, [-1])  # [B * P]
    flat_sequence = tf.reshape(sequence_tensor, [batch_size * seq_length, width])  # [B * S, W]
    return tf.gather(flat_sequence, flat_positions)


def get_masked_lm_output(bert_config: modeling.BertConfig, input_tensor: tf.Tensor, output_weights: tf.Tensor,
                         positions: tf.Tensor, label_ids: tf.Tensor,
                         label_weights: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Masked-LM loss: a dense+LayerNorm transform, then logits against the (tied) word embeddings.

    Args:
      input_tensor: float32 Tensor [batch_size, seq_length, hidden_size], the encoder output.
      output_weights: float32 [vocab_size, hidden_size], the word embedding table.
      positions, label_ids: int32 Tensors [batch_size, max_predictions_per_seq].
      label_weights: float32 Tensor [batch_size, max_predictions_per_seq], 1.0 for real predictions, 0.0 for
        padding.

    Returns:
      (loss: float32 scalar, the weighted mean over real predictions;
       per_example_loss: float32 [batch_size * max_predictions_per_seq];
       log_probs: float32 [batch_size * max_predictions_per_seq, vocab_size]).
    """
    input_tensor = gather_indexes(input_tensor, positions)  # [B * P, H]
    with tf.variable_scope("cls/predictions"):
        # One more non-linear layer before the output; only pre-training uses it.
        with tf.variable_scope("transform"):
            input_tensor = modeling.dense(
                input_tensor, bert_config.hidden_size,
                activation=modeling.get_activation(bert_config.hidden_act),
                kernel_initializer=modeling.create_initializer(bert_config.initializer_range))
            input_tensor = modeling.layer_norm(input_tensor)
        output_bias = tf.get_variable("output_bias", shape=[bert_config.vocab_size],
                                      initializer=tf.zeros_initializer())
        logits = tf.nn.bias_add(tf.matmul(input_tensor, output_weights, transpose_b=True), output_bias)  # [B*P, V]
        log_probs = tf.nn.log_softmax(logits, axis=-1)

        label_ids = tf.reshape(label_ids, [-1])  # [B * P]
        label_weights = tf.reshape(label_weights, [-1])  # [B * P]
        one_hot_labels = tf.one_hot(label_ids, depth=bert_config.vocab_size, dtype=tf.float32)
        per_example_loss = -tf.reduce_sum(log_probs * one_hot_labels, axis=[-1])  # [B * P]
        # Padded prediction slots weigh 0; the epsilon keeps an all-padding batch finite.
        numerator = tf.reduce_sum(label_weights * per_example_loss)
        denominator = tf.reduce_sum(label_weights) + 1e-5
        loss = numerator / denominator
    return loss, per_example_loss, log_probs


def get_next_sentence_output(bert_config: modeling.BertConfig, input_tensor: tf.Tensor,
                             labels: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Next-sentence loss: a 2-way classifier on the pooled output (label 0 = actual next, 1 = random).

    Args:
      input_tensor: float32 Tensor [batch_size, hidden_size], the pooled output.
      labels: int32 Tensor [batch_size, 1] or [batch_size].

    Returns:
      (loss: float32 scalar mean; per_example_loss: float32 [batch_size]; log_probs: float32 [batch_size, 2]).
    """
    with tf.variable_scope("cls/seq_relationship"):
        output_weights = tf.get_variable(
            "output_weights", shape=[2, bert_config.hidden_size],
            initializer=modeling.create_initializer(bert_config.initializer_range))
        output_bias = tf.get_variable("output_bias", shape=[2], initializer=tf.zeros_initializer())
        logits = tf.nn.bias_add(tf.matmul(input_tensor, output_weights, transpose_b=True), output_bias)  # [B, 2]
        log_probs = tf.nn.log_softmax(logits, axis=-1)
        one_hot_labels = tf.one_hot(tf.reshape(labels, [-1]), depth=2, dtype=tf.float32)
        per_example_loss = -tf.reduce_sum(one_hot_labels * log_probs, axis=-1)  # [B]
        loss = tf.reduce_mean(per_example_loss)
    return loss, per_example_loss, log_probs


def metric_fn(masked_lm_example_loss, masked_lm_log_probs, masked_lm_ids, masked_lm_weights,
              next_sentence_example_loss, next_sentence_log_probs, next_sentence_labels) -> Dict[str, tuple]:
    """Eval metrics: masked-LM accuracy and loss over real predictions, next-sentence accuracy and loss."""
    masked_lm_log_probs = tf.reshape(masked_lm_log_probs, [-1, masked_lm_log_probs.shape[-1]])
    masked_lm_predictions = tf.argmax(masked_lm_log_probs, axis=-1, output_type=tf.int32)
    masked_lm_weights = tf.reshape(masked_lm_weights, [-1])
    next_sentence_log_probs = tf.reshape(next_sentence_log_probs, [-1, next_sentence_log_probs.shape[-1]])
    next_sentence_predictions = tf.argmax(next_sentence_log_probs, axis=-1, output_type=tf.int32)
    return {
        "masked_lm_accuracy": tf.metrics.accuracy(
            labels=tf.reshape(masked_lm_ids, [-1]), predictions=masked_lm_predictions, weights=masked_lm_weights),
        "masked_lm_loss": tf.metrics.mean(values=tf.reshape(masked_lm_example_loss, [-1]),
                                          weights=masked_lm_weights),
        "next_sentence_accuracy": tf.metrics.accuracy(
            labels=tf.reshape(next_sentence_labels, [-1]), predictions=next_sentence_predictions),
        "next_sentence_loss": tf.metrics.mean(values=next_sentence_example_loss),
    }


def model_fn_builder(bert_config: modeling.BertConfig, init_checkpoint: Optional[str], learning_rate: float,
                     num_train_steps: int, num_warmup_steps: int, use_tpu: bool,
                     use_one_hot_embeddings: bool):
    """The TPUEstimator `model_fn` of the original run_pretraining (TRAIN and EVAL)."""

    def model_fn(features, labels, mode, params):
        specs.log_features(features)
        performance = specs.run_params(params).performance
        config = performance.model_config(bert_config)
        model = modeling.BertModel(
            config=config, is_training=mode == ModeKeys.TRAIN, input_ids=features["input_ids"],
            input_mask=features["input_mask"], token_type_ids=features["segment_ids"],
            use_one_hot_embeddings=use_one_hot_embeddings, gradient_checkpointing=performance.gradient_checkpointing)
        masked_lm_loss, masked_lm_example_loss, masked_lm_log_probs = get_masked_lm_output(
            config, model.get_sequence_output(), model.get_embedding_table(),
            features["masked_lm_positions"], features["masked_lm_ids"], features["masked_lm_weights"])
        next_sentence_loss, next_sentence_example_loss, next_sentence_log_probs = get_next_sentence_output(
            config, model.get_pooled_output(), features["next_sentence_labels"])
        total_loss = masked_lm_loss + next_sentence_loss
        scaffold_fn = specs.init_from_checkpoint(init_checkpoint, use_tpu)

        if mode == ModeKeys.TRAIN:
            return specs.train_spec(total_loss, learning_rate, num_train_steps, num_warmup_steps,
                                    use_tpu, scaffold_fn, params)
        if mode == ModeKeys.EVAL:
            metric_inputs = [masked_lm_example_loss, masked_lm_log_probs, features["masked_lm_ids"],
                             features["masked_lm_weights"], next_sentence_example_loss, next_sentence_log_probs,
                             features["next_sentence_labels"]]
            return specs.model_spec(mode, loss=total_loss, scaffold_fn=scaffold_fn,
                                                     eval_metrics=(metric_fn, metric_inputs))
        raise ValueError(f"Only TRAIN and EVAL modes are supported: {mode}")

    return model_fn


# ----------------------------------------------------------------------------------------------------------------
# Checking the data against the flags and the model
# ----------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class RecordLayout:
    """What the leading records of a pre-training TFRecord file say about how it was made."""

    max_seq_length: int
    max_predictions_per_seq: int
    max_token_id: int


def read_record_layout(path: str, num_records: int = RECORDS_CHECKED_PER_FILE) -> RecordLayout:
    """Sequence lengths and the largest id in the first `num_records` records of `path`.

    Raises:
      ValueError: the file is empty, not a TFRecord file, or not pre-training data.
    """
    names = [feature.name for feature in pretraining_feature_spec(0, 0)]
    lengths, max_id = set(), 0
    try:
        for index, raw in enumerate(tf.io.tf_record_iterator(path)):
            if index >= num_records:
                break
            features = tf.train.Example.FromString(raw).features.feature
            missing = [name for name in names if name not in features]
            if missing:
                raise UserError(f"{path} is not pre-training data (create_pretraining_data output): its records "
                                f"lack {', '.join(missing)}")
            input_ids = features["input_ids"].int64_list.value
            masked_ids = features["masked_lm_ids"].int64_list.value
            lengths.add((len(input_ids), len(features["masked_lm_positions"].int64_list.value)))
            max_id = max(max_id, max(input_ids, default=0), max(masked_ids, default=0))
    except (tf.errors.DataLossError, tf.errors.NotFoundError, tf.errors.PermissionDeniedError,
            tf.errors.FailedPreconditionError) as error:
        raise UserError(f"cannot read {path} as a TFRecord file: {error.message}") from None
    if not lengths:
        raise UserError(f"input file {path} holds no records")
    if len(lengths) > 1:
        raise UserError(f"records of {path} have different lengths {sorted(lengths)}")
    (seq_length, predictions), = lengths
    return RecordLayout(seq_length, predictions, max_id)


def check_records_match(input_files: Sequence[str], max_seq_length: int, max_predictions_per_seq: int,
                        vocab_size: int) -> None:
    """Fails unless every input file's records were made with these lengths and ids below vocab_size.

    A mismatch would otherwise surface as an obscure parsing error deep inside the input pipeline.
    """
    for path in input_files:
        layout = read_record_layout(path)
        if (layout.max_seq_length, layout.max_predictions_per_seq) != (max_seq_length, max_predictions_per_seq):
            raise UserError(
                f"{path} was made with max_seq_length={layout.max_seq_length} and max_predictions_per_seq="
                f"{layout.max_predictions_per_seq}, but run_pretraining got --max_seq_length={max_seq_length} and "
                f"--max_predictions_per_seq={max_predictions_per_seq}; they must match the data generation flags")
        if layout.max_token_id >= vocab_size:
            raise UserError(
                f"{path} holds token id {layout.max_token_id}, but the BERT config has vocab_size={vocab_size}: "
                f"the data was made with a larger vocabulary than the model's")


# ----------------------------------------------------------------------------------------------------------------
# The job
# ----------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class PretrainingOptions(TaskOptions):
    """Everything one run needs; field names are the original's flag names (vocab_file is new, optional)."""

    bert_config_file: str
    input_file: str
    output_dir: str
    init_checkpoint: Optional[str] = None
    max_seq_length: int = 128
    max_predictions_per_seq: int = 20
    do_train: bool = False
    do_eval: bool = False
    train_batch_size: int = 32
    eval_batch_size: int = 8
    learning_rate: float = 5e-5
    num_train_steps: int = 100000
    num_warmup_steps: int = 10000
    max_eval_steps: int = 100
    vocab_file: Optional[str] = None
    dynamic_padding: bool = False  # [new] eval batches cut to their longest example
    run: RunSettings = None
    group_by_length = False  # not a field: pre-training reads its files shuffled, batches are not grouped


def _check_options(options: PretrainingOptions) -> None:
    if not options.do_train and not options.do_eval:
        raise UserError("At least one of `do_train` or `do_eval` must be True.")
    for name in ("bert_config_file", "input_file", "output_dir"):
        if not getattr(options, name):
            raise UserError(f"--{name} is required")
    if not tf.io.gfile.exists(options.bert_config_file):
        raise UserFileNotFoundError(f"bert_config_file {options.bert_config_file} not found")
    if options.do_train and options.num_train_steps < 1:
        raise UserError(f"do_train needs num_train_steps >= 1, got {options.num_train_steps}")
    if options.do_eval and options.max_eval_steps < 1:
        raise UserError(f"do_eval needs max_eval_steps >= 1, got {options.max_eval_steps}")


def _check_model_fits(options: PretrainingOptions, bert_config: modeling.BertConfig) -> None:
    modeling.check_sequence_length(bert_config, options.max_seq_length, options.bert_config_file)
    if options.vocab_file:
        vocab = tokenization.load_vocab(options.vocab_file)
        modeling.check_vocab_fits(bert_config, len(vocab), options.vocab_file)


def run(options: PretrainingOptions) -> Optional[Dict[str, np.generic]]:
    """Trains and/or evaluates; returns the eval results (also written to output_dir/eval_results.txt)."""
    _check_options(options)
    lengths = options.length_settings()
    bert_config = modeling.BertConfig.from_json_file(options.bert_config_file)
    _check_model_fits(options, bert_config)
    checkpoints.check_same_model(options.output_dir, bert_config, options.bert_config_file)
    input_files = pretraining_data.expand_input_patterns(options.input_file)
    tf.logging.info("*** Input Files ***")
    for input_file in input_files:
        tf.logging.info("  %s", input_file)
    check_records_match(input_files, options.max_seq_length, options.max_predictions_per_seq,
                        bert_config.vocab_size)
    init_checkpoint = checkpoints.resolve_checkpoint_path(options.init_checkpoint)
    tf.io.gfile.makedirs(options.output_dir)

    use_tpu = options.run.use_tpu
    model_fn = model_fn_builder(bert_config, init_checkpoint, options.learning_rate, options.num_train_steps,
                                options.num_warmup_steps, use_tpu, use_one_hot_embeddings=use_tpu)
    estimator = make_estimator(model_fn, options.run, train_batch_size=options.train_batch_size,
                               eval_batch_size=options.eval_batch_size)
    spec = pretraining_feature_spec(options.max_seq_length, options.max_predictions_per_seq)

    if options.do_train:
        checkpoints.warn_if_resuming(options.output_dir)
        tf.logging.info("***** Running training *****")
        tf.logging.info("  Batch size = %d", options.train_batch_size)
        train_input_fn = input_pipeline.input_fn_builder(input_files, spec, is_training=True, drop_remainder=True,
                                                         num_cpu_threads=NUM_CPU_THREADS)
        estimator.train(input_fn=train_input_fn, max_steps=options.num_train_steps)

    if not options.do_eval:
        return None
    tf.logging.info("***** Running evaluation *****")
    tf.logging.info("  Batch size = %d", options.eval_batch_size)
    # Evaluation counts steps over the repeated data; whole batches only, as the original. Cut batches are safe:
    # masked_lm_positions all point at real tokens.
    eval_input_fn = input_pipeline.input_fn_builder(input_files, spec, is_training=False, drop_remainder=True,
                                                    num_cpu_threads=NUM_CPU_THREADS, repeat_eval=True,
                                                    lengths=lengths)
    result = estimator.evaluate(input_fn=eval_input_fn, steps=options.max_eval_steps)
    write_key_value_results(os.path.join(options.output_dir, "eval_results.txt"), result)
    return result
