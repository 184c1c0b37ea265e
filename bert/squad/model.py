"""The SQuAD span head on BERT's sequence output and its TPUEstimator model_fn.

One linear layer scores every token as answer start and as answer end. The variable names
(`cls/squad/output_weights`, `cls/squad/output_bias`) are the original's, so checkpoints fine-tuned by the
original load here and vice versa.
"""

from typing import Callable, Dict, Optional, Tuple

import tensorflow.compat.v1 as tf

from bert import modeling
from bert.runtime import specs
from bert.runtime.specs import ModeKeys



def create_model(bert_config: modeling.BertConfig, is_training: bool, input_ids: tf.Tensor, input_mask: tf.Tensor,
                 segment_ids: tf.Tensor, use_one_hot_embeddings: bool,
                 gradient_checkpointing: bool = False) -> Tuple[tf.Tensor, tf.Tensor]:
    """Builds BERT plus the span head.

    Args:
      input_ids, input_mask, segment_ids: int32 Tensors [batch_size, seq_length].
      gradient_checkpointing: [new] recompute each encoder layer in the backward pass (BertModel's argument).

    Returns:
      (start_logits, end_logits): float32 Tensors [batch_size, seq_length], unnormalised scores of each position
      being the answer's first / last token.
    """
    model = modeling.BertModel(config=bert_config, is_training=is_training, input_ids=input_ids,
                               input_mask=input_mask, token_type_ids=segment_ids,
                               use_one_hot_embeddings=use_one_hot_embeddings,
                               gradient_checkpointing=gradient_checkpointing)
    final_hidden = model.get_sequence_output()  # [B, S, H]
    batch_size, seq_length, hidden_size = modeling.get_shape_list(final_hidden, expected_rank=3)

    output_weights = tf.get_variable("cls/squad/output_weights", [2, hidden_size],
                                     initializer=tf.truncated_normal_initializer(stddev=0.02))
    output_bias = tf.get_variable("cls/squad/output_bias", [2], initializer=tf.zeros_initializer())

    final_hidden_matrix = tf.reshape(final_hidden, [batch_size * seq_length, hidden_size])  # [B*S, H]
    logits = tf.matmul(final_hidden_matrix, output_weights, transpose_b=True)  # [B*S, 2]
    logits = tf.nn.bias_add(logits, output_bias)
    logits = tf.reshape(logits, [batch_size, seq_length, 2])  # [B, S, 2]
    logits = tf.transpose(logits, [2, 0, 1])  # [2, B, S]
    start_logits, end_logits = tf.unstack(logits, axis=0)
    return start_logits, end_logits


def prediction_outputs(bert_config: modeling.BertConfig, features: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """The span head's logits on int32 id features (input_ids, input_mask, segment_ids): what a SavedModel or a
    kept-loaded predictor serves."""
    start_logits, end_logits = create_model(
        bert_config, is_training=False, input_ids=features["input_ids"], input_mask=features["input_mask"],
        segment_ids=features["segment_ids"], use_one_hot_embeddings=False)
    return {"start_logits": start_logits, "end_logits": end_logits}


def span_loss(logits: tf.Tensor, positions: tf.Tensor) -> tf.Tensor:
    """Mean cross-entropy of the gold positions (int32 [batch_size]) under logits (float32 [batch_size,
    seq_length]); a float32 scalar."""
    seq_length = modeling.get_shape_list(logits, expected_rank=2)[1]
    one_hot_positions = tf.one_hot(positions, depth=seq_length, dtype=tf.float32)  # [B, S]
    log_probs = tf.nn.log_softmax(logits, axis=-1)  # [B, S]
    return -tf.reduce_mean(tf.reduce_sum(one_hot_positions * log_probs, axis=-1))


def model_fn_builder(bert_config: modeling.BertConfig, init_checkpoint: Optional[str], learning_rate: float,
                     num_train_steps: Optional[int], num_warmup_steps: Optional[int], use_tpu: bool,
                     use_one_hot_embeddings: bool) -> Callable:
    """The TPUEstimator `model_fn` of the original run_squad: TRAIN (mean of start and end losses) and PREDICT
    (unique_ids, start_logits, end_logits)."""

    def model_fn(features, labels, mode, params):
        specs.log_features(features)
        is_training = mode == ModeKeys.TRAIN
        performance = specs.run_params(params).performance
        start_logits, end_logits = create_model(
            bert_config=performance.model_config(bert_config), is_training=is_training,
            input_ids=features["input_ids"], input_mask=features["input_mask"], segment_ids=features["segment_ids"],
            use_one_hot_embeddings=use_one_hot_embeddings, gradient_checkpointing=performance.gradient_checkpointing)
        scaffold_fn = specs.init_from_checkpoint(init_checkpoint, use_tpu)

        if mode == ModeKeys.TRAIN:
            start_loss = span_loss(start_logits, features["start_positions"])
            end_loss = span_loss(end_logits, features["end_positions"])
            total_loss = (start_loss + end_loss) / 2.0
            return specs.train_spec(total_loss, learning_rate, num_train_steps, num_warmup_steps,
                                    use_tpu, scaffold_fn, params)
        if mode == ModeKeys.PREDICT:
            predictions = {
                "unique_ids": features["unique_ids"],
                "start_logits": start_logits,
                "end_logits": end_logits,
            }
            return specs.model_spec(mode, predictions=predictions, scaffold_fn=scaffold_fn)
        raise ValueError(f"Only TRAIN and PREDICT modes are supported: {mode}")

    return model_fn
