"""Fast kernels (modeling.with_fast_kernels, --fast_kernels, Predictor.load(fast_kernels=True)): the same model from
fused kernels. The GELU of every feed-forward layer runs inside its matrix product, the outputs and gradients stay
within 1e-5 of the original graph, the variables are the original's, and every task's model_fn builds it on
request only (the Predictor's side: tests/serving/test_predictor.py)."""

import collections
import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from bert import modeling
from bert.classifier import model as classifier_model
from bert.features import extraction
from bert.ner import model as ner_model
from bert.pretraining import job as pretraining_job
from bert.runtime import specs
from bert.runtime.performance import PerformanceSettings
from bert.squad import model as squad_model

BATCH, SEQ = 3, 8
CONFIG = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
              max_position_embeddings=16, initializer_range=0.5)  # large weights: GELU sees values far from 0
CONFIG_ORIGINAL = modeling.BertConfig(**CONFIG)
CONFIG_FAST = modeling.with_fast_kernels(CONFIG_ORIGINAL)


def _inputs():
    rng = np.random.RandomState(0)
    ids = rng.randint(0, 99, (BATCH, SEQ)).astype(np.int32)
    mask = (np.arange(SEQ)[None, :] < np.array([[SEQ], [5], [3]])).astype(np.int32)
    return ids, mask


def _run(config: modeling.BertConfig, with_gradients: bool = True):
    """(sequence output, gradients by variable name, variable shapes by name, the fused ops the session ran)."""
    ids, mask = _inputs()
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(0)
        model = modeling.BertModel(config, is_training=False, input_ids=tf.constant(ids),
                                   input_mask=tf.constant(mask))
        output = model.get_sequence_output()
        loss = tf.reduce_mean(output * np.linspace(-1, 1, config.hidden_size)) + tf.reduce_mean(
            model.get_pooled_output())
        variables = tf.trainable_variables()
        grads = {}
        if with_gradients:
            grads = {v.op.name: tf.convert_to_tensor(g) for v, g in zip(variables, tf.gradients(loss, variables))}
        with tf.Session(graph=graph) as session:
            session.run(tf.global_variables_initializer())
            metadata = tf.RunMetadata()
            values, grad_values = session.run([output, grads], options=tf.RunOptions(output_partition_graphs=True),
                                              run_metadata=metadata)
    fused = collections.Counter(b"+".join(node.attr["fused_ops"].list.s).decode()
                                for partition in metadata.partition_graphs for node in partition.node
                                if "FusedMatMul" in node.op)
    return values, grad_values, {v.op.name: v.shape.as_list() for v in variables}, fused


def test_outputs_gradients_and_variables_are_the_original_graphs():
    # Predicting (GELU fused): within 1e-5 of the output's scale; training graphs (unfused): gradients within 1e-5.
    original, fast = (_run(config, with_gradients=False) for config in (CONFIG_ORIGINAL, CONFIG_FAST))
    assert fast[2] == original[2]  # names and shapes: the original's checkpoints load unchanged
    scale = np.abs(original[0]).max()
    assert scale > 1.0
    np.testing.assert_allclose(fast[0], original[0], atol=1e-5 * scale, rtol=0)
    original, fast = (_run(config) for config in (CONFIG_ORIGINAL, CONFIG_FAST))
    np.testing.assert_allclose(fast[0], original[0], atol=1e-5 * scale, rtol=0)
    for name, grad in original[1].items():
        np.testing.assert_allclose(fast[1][name], grad, atol=1e-5, rtol=0, err_msg=name)


@pytest.mark.skipif(os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0", reason="oneDNN's fusions are switched off")
def test_every_feed_forward_gelu_runs_inside_its_matrix_product_when_predicting():
    """Predicting only: in training the backward pass needs the product before GELU, which keeps them apart."""
    original_fused = _run(CONFIG_ORIGINAL, with_gradients=False)[3]
    fast_fused = _run(CONFIG_FAST, with_gradients=False)[3]
    assert original_fused["BiasAdd+GeluApproximate"] == 0
    assert fast_fused["BiasAdd+GeluApproximate"] == CONFIG["num_hidden_layers"]


def test_only_the_originals_gelu_is_replaced_and_the_config_is_left_alone():
    config = modeling.BertConfig(**dict(CONFIG, hidden_act="GELU"))
    fast = modeling.with_fast_kernels(config)
    assert fast.hidden_act is modeling.fused_gelu and config.hidden_act == "GELU"
    assert fast.to_dict() | {"hidden_act": "GELU"} == config.to_dict()
    relu = modeling.BertConfig(**dict(CONFIG, hidden_act="relu"))
    assert modeling.with_fast_kernels(relu).hidden_act == "relu"
    assert PerformanceSettings().model_config(config) is config
    assert PerformanceSettings(fast_kernels=True).model_config(config).hidden_act is modeling.fused_gelu


def _classifier(config, params):
    features = _features(label_ids=tf.zeros([BATCH], tf.int32))
    classifier_model.model_fn_builder(config, 2, None, 1e-3, 1, 0, False, False)(features, None, "infer", params)


def _squad(config, params):
    features = _features(unique_ids=tf.zeros([BATCH], tf.int32))
    squad_model.model_fn_builder(config, None, 1e-3, 1, 0, False, False)(features, None, "infer", params)


def _ner(config, params):
    ner_model.model_fn_builder(config, 3, None, 1e-3, 1, 0, False, False)(_features(), None, "infer", params)


def _pretraining(config, params):
    features = _features(masked_lm_positions=tf.zeros([BATCH, 2], tf.int32),
                         masked_lm_ids=tf.zeros([BATCH, 2], tf.int32),
                         masked_lm_weights=tf.ones([BATCH, 2]), next_sentence_labels=tf.zeros([BATCH, 1], tf.int32))
    pretraining_job.model_fn_builder(config, None, 1e-3, 1, 0, False, False)(features, None, "eval", params)


def _extract_features(config, params):
    features = _features(unique_ids=tf.zeros([BATCH], tf.int32))
    features["input_type_ids"] = features.pop("segment_ids")
    extraction.model_fn_builder(config, None, [-1], False, False)(features, None, "infer", params)


def _features(**extra):
    ids, mask = _inputs()
    return dict(input_ids=tf.constant(ids), input_mask=tf.constant(mask), segment_ids=tf.zeros_like(ids), **extra)


@pytest.mark.parametrize("build", [_classifier, _squad, _ner, _pretraining, _extract_features])
def test_each_tasks_model_fn_builds_fast_kernels_when_asked(build):
    gelu_ops = {}
    for fast in (False, True):
        graph = tf.Graph()
        with graph.as_default():
            params = {specs.RUN_PARAMS: specs.RunParams(PerformanceSettings(fast_kernels=fast))}
            build(modeling.BertConfig(**CONFIG), params)
        gelu_ops[fast] = [op.name for op in graph.get_operations() if "/Gelu/" in op.name]
    assert gelu_ops[False] == []
    assert len({name.split("/Gelu/")[0] for name in gelu_ops[True]}) >= CONFIG["num_hidden_layers"]
