"""The classification head on BERT's pooled output, its model_fn and eval metrics.

Variable names match the original (`output_weights`, `output_bias` at the top level), so checkpoints fine-tuned
by the original load here and vice versa.
"""

from typing import Callable, Dict, Optional, Protocol, Sequence, Tuple

import tensorflow.compat.v1 as tf

from bert import modeling, tokenization
from bert.runtime import specs
from bert.runtime.specs import ModeKeys


HEAD_DROPOUT_RATE = 0.1  # the original's dropout on the pooled vector while training


class Encoder(Protocol):
    """[New] A pre-trained BERT that comes with its own vocab and weights (e.g. a TF Hub module,
    `bert.interop.hub_module.HubEncoder`) instead of bert_config_file, vocab_file and init_checkpoint."""

    def make_tokenizer(self, max_seq_length: int) -> tokenization.FullTokenizer:
        """The tokenizer of its vocab; raises UserError when max_seq_length does not fit the model."""

    def pooled_output(self, is_training: bool, input_ids: tf.Tensor, input_mask: tf.Tensor,
                      segment_ids: tf.Tensor) -> tf.Tensor:
        """Builds the model in the current graph; float Tensor [batch_size, hidden_size]."""


def create_model(bert_config: modeling.BertConfig, is_training: bool, input_ids: tf.Tensor, input_mask: tf.Tensor,
                 segment_ids: tf.Tensor, labels: tf.Tensor, num_labels: int, use_one_hot_embeddings: bool,
                 is_regression: bool = False, encoder: Optional[Encoder] = None, gradient_checkpointing: bool = False
                 ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Builds BERT (or `encoder` instead, when given) plus a linear layer on the pooled [CLS] vector;
    `gradient_checkpointing` [new] is BertModel's.

    Returns (loss, per_example_loss [B], logits [B, num_labels], probabilities [B, num_labels]). For regression
    (`is_regression`, num_labels 1) the loss is the squared error and `probabilities` holds the predicted value.
    """
    if encoder is not None:
        pooled = encoder.pooled_output(is_training, input_ids, input_mask, segment_ids)  # [B, H]
    else:
        model = modeling.BertModel(config=bert_config, is_training=is_training, input_ids=input_ids,
                                   input_mask=input_mask, token_type_ids=segment_ids,
                                   use_one_hot_embeddings=use_one_hot_embeddings,
                                   gradient_checkpointing=gradient_checkpointing)
        pooled = model.get_pooled_output()  # [B, H]
    hidden_size = pooled.shape[-1]
    output_weights = tf.get_variable("output_weights", [num_labels, hidden_size],
                                     initializer=tf.truncated_normal_initializer(stddev=0.02))
    output_bias = tf.get_variable("output_bias", [num_labels], initializer=tf.zeros_initializer())

    with tf.variable_scope("loss"):
        if is_training:
            pooled = tf.nn.dropout(pooled, rate=HEAD_DROPOUT_RATE)
        logits = tf.nn.bias_add(tf.matmul(pooled, output_weights, transpose_b=True), output_bias)  # [B, C]
        if is_regression:
            values = tf.squeeze(logits, axis=-1)  # [B]
            per_example_loss = tf.square(values - tf.cast(labels, tf.float32))
            return tf.reduce_mean(per_example_loss), per_example_loss, logits, logits
        probabilities = tf.nn.softmax(logits, axis=-1)
        log_probs = tf.nn.log_softmax(logits, axis=-1)
        one_hot_labels = tf.one_hot(labels, depth=num_labels, dtype=tf.float32)
        per_example_loss = -tf.reduce_sum(one_hot_labels * log_probs, axis=-1)  # [B]
        return tf.reduce_mean(per_example_loss), per_example_loss, logits, probabilities


def prediction_outputs(bert_config: modeling.BertConfig, features: Dict[str, tf.Tensor], num_labels: int,
                       is_regression: bool = False) -> Dict[str, tf.Tensor]:
    """The model_fn's PREDICT outputs on int32 id features (input_ids, input_mask, segment_ids): what a SavedModel
    or a kept-loaded predictor serves."""
    _, _, _, probabilities = create_model(
        bert_config, is_training=False, input_ids=features["input_ids"], input_mask=features["input_mask"],
        segment_ids=features["segment_ids"], labels=tf.zeros_like(features["input_ids"][:, 0]),
        num_labels=num_labels, use_one_hot_embeddings=False, is_regression=is_regression)
    return {"probabilities": probabilities}


def _ratio(numerator: tf.Tensor, denominator: tf.Tensor) -> tf.Tensor:
    return tf.where(denominator > 0, numerator / tf.maximum(denominator, 1e-12), tf.zeros_like(numerator))


def _binary_counts(labels, predictions, weights) -> Dict[str, Tuple[tf.Tensor, tf.Tensor]]:
    """Streaming true/false positive/negative counts with class 1 as positive."""
    labels, predictions = tf.cast(labels, tf.bool), tf.cast(predictions, tf.bool)
    return {
        "tp": tf.metrics.true_positives(labels, predictions, weights=weights),
        "fp": tf.metrics.false_positives(labels, predictions, weights=weights),
        "tn": tf.metrics.true_negatives(labels, predictions, weights=weights),
        "fn": tf.metrics.false_negatives(labels, predictions, weights=weights),
    }


def _f1(counts) -> Tuple[tf.Tensor, tf.Tensor]:
    def value(tp, fp, fn):
        return _ratio(2.0 * tp, 2.0 * tp + fp + fn)

    values = {k: v[0] for k, v in counts.items()}
    updates = {k: v[1] for k, v in counts.items()}
    return value(values["tp"], values["fp"], values["fn"]), value(updates["tp"], updates["fp"], updates["fn"])


def _matthews(counts) -> Tuple[tf.Tensor, tf.Tensor]:
    def value(tp, fp, tn, fn):
        denominator = tf.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        return _ratio(tp * tn - fp * fn, denominator)

    values = {k: v[0] for k, v in counts.items()}
    updates = {k: v[1] for k, v in counts.items()}
    return (value(values["tp"], values["fp"], values["tn"], values["fn"]),
            value(updates["tp"], updates["fp"], updates["tn"], updates["fn"]))


def _collected(values: tf.Tensor, name: str) -> Tuple[tf.Variable, tf.Tensor]:
    """A local variable gathering every value seen during evaluation, and the op appending a batch to it."""
    store = tf.Variable(tf.zeros([0], tf.float32), trainable=False, name=name, validate_shape=False,
                        shape=tf.TensorShape([None]),
                        collections=[tf.GraphKeys.LOCAL_VARIABLES, tf.GraphKeys.METRIC_VARIABLES])
    update = tf.assign(store, tf.concat([store, tf.reshape(tf.cast(values, tf.float32), [-1])], 0),
                       validate_shape=False)
    return store, update


def _average_ranks(x: tf.Tensor) -> tf.Tensor:
    """1-based ranks of `x` with ties sharing their average rank (as scipy.stats.rankdata)."""
    less = tf.reduce_sum(tf.cast(x[None, :] < x[:, None], tf.float32), axis=1)
    equal = tf.reduce_sum(tf.cast(tf.equal(x[None, :], x[:, None]), tf.float32), axis=1)
    return less + (equal + 1.0) / 2.0


def _pearson(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    x, y = x - tf.reduce_mean(x), y - tf.reduce_mean(y)
    return _ratio(tf.reduce_sum(x * y), tf.sqrt(tf.reduce_sum(x * x) * tf.reduce_sum(y * y)))


def _correlations(labels, predictions, weights) -> Dict[str, Tuple[tf.Tensor, tf.Tensor]]:
    """Pearson and Spearman over the whole eval set (padding examples, weight 0, left out)."""
    keep = tf.reshape(weights, [-1]) > 0
    label_store, label_update = _collected(tf.boolean_mask(tf.reshape(labels, [-1]), keep), "collected_labels")
    pred_store, pred_update = _collected(tf.boolean_mask(tf.reshape(predictions, [-1]), keep),
                                         "collected_predictions")
    update = tf.group(label_update, pred_update)
    pearson = _pearson(label_store, pred_store)
    spearman = _pearson(_average_ranks(label_store), _average_ranks(pred_store))
    return {"pearson": (pearson, update), "spearman": (spearman, update)}


def metric_fn_builder(metric_names: Sequence[str], is_regression: bool) -> Callable:
    """The `metric_fn` for TPUEstimatorSpec.eval_metrics: loss, accuracy and the task's extra metrics."""

    def metric_fn(per_example_loss, label_ids, logits, is_real_example):
        metrics = {"eval_loss": tf.metrics.mean(values=per_example_loss, weights=is_real_example)}
        if is_regression:
            predictions = tf.squeeze(logits, axis=-1)
            correlations = _correlations(label_ids, predictions, is_real_example)
            for name in metric_names:
                metrics["eval_" + name] = correlations[name]
            return metrics
        predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
        metrics["eval_accuracy"] = tf.metrics.accuracy(labels=label_ids, predictions=predictions,
                                                       weights=is_real_example)
        if metric_names:
            counts = _binary_counts(label_ids, predictions, is_real_example)
            compute = {"f1": _f1, "matthews_corr": _matthews}
            for name in metric_names:
                metrics["eval_" + name] = compute[name](counts)
        return metrics

    return metric_fn


def model_fn_builder(bert_config: modeling.BertConfig, num_labels: int, init_checkpoint: Optional[str],
                     learning_rate: float, num_train_steps: Optional[int], num_warmup_steps: Optional[int],
                     use_tpu: bool, use_one_hot_embeddings: bool, is_regression: bool = False,
                     metric_names: Sequence[str] = (), encoder: Optional[Encoder] = None) -> Callable:
    """The TPUEstimator `model_fn` of the original run_classifier (train, eval, predict); with `encoder` [new], of
    the original run_classifier_with_tfhub (bert_config unused)."""
    metric_fn = metric_fn_builder(metric_names, is_regression)

    def model_fn(features, labels, mode, params):
        specs.log_features(features)
        label_ids = features["label_ids"]
        if "is_real_example" in features:
            is_real_example = tf.cast(features["is_real_example"], tf.float32)
        else:
            is_real_example = tf.ones(tf.shape(label_ids), dtype=tf.float32)
        is_training = mode == ModeKeys.TRAIN

        performance = specs.run_params(params).performance
        total_loss, per_example_loss, logits, probabilities = create_model(
            performance.model_config(bert_config), is_training, features["input_ids"], features["input_mask"],
            features["segment_ids"], label_ids, num_labels, use_one_hot_embeddings, is_regression, encoder,
            performance.gradient_checkpointing)
        scaffold_fn = specs.init_from_checkpoint(init_checkpoint, use_tpu)

        if mode == ModeKeys.TRAIN:
            return specs.train_spec(total_loss, learning_rate, num_train_steps, num_warmup_steps,
                                    use_tpu, scaffold_fn, params)
        if mode == ModeKeys.EVAL:
            return specs.model_spec(
                mode, loss=total_loss, scaffold_fn=scaffold_fn,
                eval_metrics=(metric_fn, [per_example_loss, label_ids, logits, is_real_example]))
        return specs.model_spec(mode, predictions={"probabilities": probabilities},
                                                 scaffold_fn=scaffold_fn)

    return model_fn
