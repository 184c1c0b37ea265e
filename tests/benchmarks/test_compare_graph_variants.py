"""The rewrites benchmarks/compare_graph_variants.py times (docs/speed_and_scale.md, "Rewrites tried") compute the
original graph's outputs from the original's checkpoint, and building them leaves bert.modeling as it was."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import compare_graph_variants
from bert import modeling

CONFIG = modeling.BertConfig(vocab_size=1200, hidden_size=48, num_hidden_layers=2, num_attention_heads=4,
                             intermediate_size=64, type_vocab_size=2, initializer_range=0.5)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    """Random weights (large, so a wrong formula shows) saved as the original graph names them."""
    path = str(tmp_path_factory.mktemp("variants") / "model.ckpt")
    with tf.Graph().as_default():
        tf.set_random_seed(3)
        ids = tf.zeros([1, 4], tf.int32)
        modeling.BertModel(CONFIG, is_training=False, input_ids=ids)
        randomize = [variable.assign(tf.random.normal(variable.shape)) for variable in tf.global_variables()
                     if "LayerNorm" in variable.name or "bias" in variable.name]
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            session.run(randomize)
            tf.train.Saver().save(session, path)
    return path


@pytest.mark.parametrize("variant", [name for name in compare_graph_variants.VARIANTS if name != "original"])
def test_variant_gives_the_original_outputs(variant, checkpoint):
    original = compare_graph_variants.build_predict("original", CONFIG, checkpoint, batch_size=3, seq_length=11)()
    rewritten = compare_graph_variants.build_predict(variant, CONFIG, checkpoint, batch_size=3, seq_length=11)()
    assert rewritten.shape == (3, CONFIG.hidden_size)
    assert np.abs(original).max() > 0.1
    np.testing.assert_allclose(rewritten, original, atol=1e-5)


def test_building_a_variant_restores_the_modeling_functions():
    before = (modeling.layer_norm, modeling.attention_layer, modeling.get_activation("gelu"))
    with compare_graph_variants.variant_graph("all"):
        assert modeling.layer_norm is compare_graph_variants.layer_norm_fused
        assert modeling.attention_layer is compare_graph_variants.fused_qkv_attention
        assert modeling.get_activation("gelu") is modeling.fused_gelu
    assert (modeling.layer_norm, modeling.attention_layer, modeling.get_activation("gelu")) == before
