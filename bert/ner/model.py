"""The token-classification head on BERT's sequence output and its TPUEstimator model_fn (run_ner).

One linear layer (`cls/ner/output_weights`, `cls/ner/output_bias`, named like the SQuAD head) scores every
position for every label. The loss is the cross-entropy averaged over the positions whose label weight is 1 (the
first sub-token of each word a window owns); other sub-tokens, special tokens and padding weigh nothing.
"""

from typing import Callable, Dict, Optional

import tensorflow.compat.v1 as tf

from bert import modeling
from bert.runtime import specs
from bert.runtime.specs import ModeKeys



def create_model(bert_config: modeling.BertConfig, is_training: bool, input_ids: tf.Tensor, input_mask: tf.Tensor,
                 segment_ids: tf.Tensor, num_labels: int, use_one_hot_embeddings: bool,
                 gradient_checkpointing: bool = False) -> tf.Tensor:
    """Builds BERT plus the token head.

    Args:
      input_ids, input_mask, segment_ids: int32 Tensors [batch_size, seq_length].
      gradient_checkpointing: [new] recompute each encoder layer in the backward pass (BertModel's argument).

    Returns:
      float32 Tensor [batch_size, seq_length, num_labels]: unnormalised label scores of each position.
    """
    model = modeling.BertModel(config=bert_config, is_training=is_training, input_ids=input_ids,
                               input_mask=input_mask, token_type_ids=segment_ids,
                               use_one_hot_embeddings=use_one_hot_embeddings,
                               gradient_checkpointing=gradient_checkpointing)
    sequence = model.get_sequence_output()  # [B, L, H]
    hidden_size = sequence.shape[-1]
    with tf.variable_scope("cls/ner"):
        output_weights = tf.get_variable("output_weights", [num_labels, hidden_size],
                                         initializer=tf.truncated_normal_initializer(stddev=0.02))
        output_bias = tf.get_variable("output_bias", [num_labels], initializer=tf.zeros_initializer())
    if is_training:
        sequence = tf.nn.dropout(sequence, rate=0.1)
    logits = tf.einsum("blh,ch->blc", sequence, output_weights)  # [B, L, C]
    return tf.nn.bias_add(logits, output_bias)


def prediction_outputs(bert_config: modeling.BertConfig, features: Dict[str, tf.Tensor],
                       num_labels: int) -> Dict[str, tf.Tensor]:
    """Each position's label probabilities on int32 id features (input_ids, input_mask, segment_ids): what a
    SavedModel or a kept-loaded predictor serves."""
    logits = create_model(bert_config, is_training=False, input_ids=features["input_ids"],
                          input_mask=features["input_mask"], segment_ids=features["segment_ids"],
                          num_labels=num_labels, use_one_hot_embeddings=False)
    return {"probabilities": tf.nn.softmax(logits, axis=-1)}


def weighted_token_loss(logits: tf.Tensor, label_ids: tf.Tensor, label_weights: tf.Tensor) -> tf.Tensor:
    """Mean cross-entropy over the positions with weight 1 (float32 scalar); 0 for a batch without any.

    Args:
      logits: float32 [batch_size, seq_length, num_labels]; label_ids: int32 [batch_size, seq_length];
      label_weights: float32 [batch_size, seq_length] of 0/1.
    """
    log_probs = tf.nn.log_softmax(logits, axis=-1)  # [B, L, C]
    one_hot = tf.one_hot(label_ids, depth=logits.shape[-1], dtype=tf.float32)
    per_position = -tf.reduce_sum(one_hot * log_probs, axis=-1) * label_weights  # [B, L]
    return tf.reduce_sum(per_position) / tf.maximum(tf.reduce_sum(label_weights), 1.0)


def model_fn_builder(bert_config: modeling.BertConfig, num_labels: int, init_checkpoint: Optional[str],
                     learning_rate: float, num_train_steps: Optional[int], num_warmup_steps: Optional[int],
                     use_tpu: bool, use_one_hot_embeddings: bool) -> Callable:
    """The TPUEstimator `model_fn`: TRAIN with the original's optimizer, PREDICT per-position probabilities.

    Evaluation runs through PREDICT (entity F1 needs whole sentences, assembled in Python by `bert.ner.job`).
    """

    def model_fn(features, labels, mode, params):
        specs.log_features(features)
        if mode == ModeKeys.EVAL:
            raise ValueError("run_ner evaluates through predict(); Estimator.evaluate is not supported")
        performance = specs.run_params(params).performance
        logits = create_model(performance.model_config(bert_config), mode == ModeKeys.TRAIN, features["input_ids"],
                              features["input_mask"], features["segment_ids"], num_labels, use_one_hot_embeddings,
                              performance.gradient_checkpointing)
        scaffold_fn = specs.init_from_checkpoint(init_checkpoint, use_tpu)
        if mode == ModeKeys.TRAIN:
            label_weights = tf.cast(features["label_weights"], tf.float32)
            loss = weighted_token_loss(logits, features["label_ids"], label_weights)
            return specs.train_spec(loss, learning_rate, num_train_steps, num_warmup_steps, use_tpu,
                                    scaffold_fn, params)
        return specs.model_spec(
            mode, predictions={"probabilities": tf.nn.softmax(logits, axis=-1)}, scaffold_fn=scaffold_fn)

    return model_fn
