"""Tests of bert.modeling: shapes, masks, helpers, config handling, and parity with the original on MiniLM."""

import glob
import json
import logging
import os
import re

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from bert import modeling
from helpers import REPO_ROOT, shared_path
from live_original import load_original_module

CONFIGS_DIR = os.path.join(REPO_ROOT, "configs")


# ---------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------


def tiny_config(**overrides) -> modeling.BertConfig:
    """A model small enough to build and run in well under a second."""
    values = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                  max_position_embeddings=64, type_vocab_size=16)
    values.update(overrides)
    return modeling.BertConfig(**values)


def random_ids(shape, high, seed=0) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, high, size=shape).astype(np.int32)


def run(fetches, feed_dict=None):
    """Initialises all variables of the default graph, then evaluates `fetches`."""
    with tf.Session() as session:
        session.run(tf.global_variables_initializer())
        return session.run(fetches, feed_dict=feed_dict)


def model_outputs(model: modeling.BertModel) -> dict:
    return {"embedding_output": model.get_embedding_output(), "sequence_output": model.get_sequence_output(),
            "pooled_output": model.get_pooled_output(), "all_encoder_layers": model.get_all_encoder_layers(),
            "embedding_table": model.get_embedding_table()}


def shared_variables_scope():
    """Lets several BertModels (all built with scope="bert") share one set of variables."""
    return tf.variable_scope(tf.get_variable_scope(), reuse=tf.AUTO_REUSE)


# ---------------------------------------------------------------------------------------------------------------
# BertModel
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("is_training", [True, False])
@pytest.mark.parametrize("use_mask_and_types", [True, False])
@pytest.mark.parametrize("use_one_hot_embeddings", [True, False])
def test_model_output_shapes(is_training, use_mask_and_types, use_one_hot_embeddings):
    batch_size, seq_length = 3, 7
    config = tiny_config()
    with tf.Graph().as_default():
        model = modeling.BertModel(
            config, is_training=is_training,
            input_ids=tf.constant(random_ids([batch_size, seq_length], config.vocab_size)),
            input_mask=tf.constant(random_ids([batch_size, seq_length], 2)) if use_mask_and_types else None,
            token_type_ids=(tf.constant(random_ids([batch_size, seq_length], config.type_vocab_size))
                            if use_mask_and_types else None),
            use_one_hot_embeddings=use_one_hot_embeddings)
        result = run(model_outputs(model))

    hidden = config.hidden_size
    assert result["embedding_output"].shape == (batch_size, seq_length, hidden)
    assert result["sequence_output"].shape == (batch_size, seq_length, hidden)
    assert result["pooled_output"].shape == (batch_size, hidden)
    assert len(result["all_encoder_layers"]) == config.num_hidden_layers
    for layer in result["all_encoder_layers"]:
        assert layer.shape == (batch_size, seq_length, hidden)
    np.testing.assert_array_equal(result["all_encoder_layers"][-1], result["sequence_output"])
    assert result["embedding_table"].shape == (config.vocab_size, hidden)
    assert np.all(np.abs(result["pooled_output"]) < 1.0)  # tanh
    assert np.all(np.isfinite(result["sequence_output"]))


def test_model_with_dynamic_batch_and_length():
    config = tiny_config()
    with tf.Graph().as_default():
        input_ids = tf.placeholder(tf.int32, [None, None])
        model = modeling.BertModel(config, is_training=False, input_ids=input_ids)
        sequence_output, pooled_output = run([model.get_sequence_output(), model.get_pooled_output()],
                                             {input_ids: random_ids([2, 5], config.vocab_size)})
    assert sequence_output.shape == (2, 5, config.hidden_size)
    assert pooled_output.shape == (2, config.hidden_size)


def test_dropout_only_when_training():
    config = tiny_config(hidden_dropout_prob=0.5, attention_probs_dropout_prob=0.5)
    input_ids = random_ids([2, 6], config.vocab_size)
    for is_training, expect_equal in [(False, True), (True, False)]:
        with tf.Graph().as_default():
            model = modeling.BertModel(config, is_training=is_training, input_ids=tf.constant(input_ids))
            with tf.Session() as session:
                session.run(tf.global_variables_initializer())
                first = session.run(model.get_sequence_output())
                second = session.run(model.get_sequence_output())
        assert np.array_equal(first, second) == expect_equal
    assert config.hidden_dropout_prob == 0.5  # the caller's config is not modified


def test_scope_names_variables():
    with tf.Graph().as_default():
        modeling.BertModel(tiny_config(), is_training=False, input_ids=tf.constant(random_ids([1, 4], 99)),
                           scope="my_bert")
        names = [variable.op.name for variable in tf.trainable_variables()]
    assert names and all(name.startswith("my_bert/") for name in names)
    assert "my_bert/pooler/dense/kernel" in names


def test_variable_names_and_shapes_match_original_minilm():
    golden = json.load(open(shared_path("golden", "minilm_model_vars.json")))
    config = modeling.BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                                 intermediate_size=1536, type_vocab_size=2)
    with tf.Graph().as_default():
        modeling.BertModel(config, is_training=False, input_ids=tf.zeros([1, 8], tf.int32))
        variables = sorted([variable.name, variable.shape.as_list()] for variable in tf.trainable_variables())
    assert variables == golden


def test_padding_does_not_change_real_positions():
    """Real tokens give the same outputs whatever sits in the padding, and as without padding at all."""
    config = tiny_config()
    real_length, padded_length = 5, 8
    real_ids = random_ids([2, real_length], config.vocab_size, seed=1)
    types = random_ids([2, padded_length], 2, seed=2)
    mask = np.array([[1] * real_length + [0] * (padded_length - real_length)] * 2, np.int32)

    def padded(seed):
        return np.concatenate([real_ids, random_ids([2, padded_length - real_length], config.vocab_size, seed)], 1)

    with tf.Graph().as_default(), shared_variables_scope():
        models = [modeling.BertModel(config, False, tf.constant(padded(seed)), tf.constant(mask), tf.constant(types),
                                     scope="bert") for seed in (3, 4)]
        unpadded = modeling.BertModel(config, False, tf.constant(real_ids), token_type_ids=tf.constant(
            types[:, :real_length]), scope="bert")
        assert len(tf.trainable_variables()) == 16 * config.num_hidden_layers + 7  # all three share variables
        first, second, reference = run([model.get_sequence_output() for model in models + [unpadded]])

    np.testing.assert_allclose(first[:, :real_length], reference, atol=1e-5)
    np.testing.assert_allclose(second[:, :real_length], reference, atol=1e-5)
    assert not np.allclose(first[:, real_length:], second[:, real_length:])  # padding ids did differ


def test_one_hot_and_gather_embeddings_agree():
    config = tiny_config()
    with tf.Graph().as_default(), shared_variables_scope():
        input_ids = tf.constant(random_ids([3, 6], config.vocab_size))
        outputs = [model_outputs(modeling.BertModel(config, False, input_ids, use_one_hot_embeddings=one_hot,
                                                    scope="bert")) for one_hot in (True, False)]
        one_hot_result, gather_result = run(outputs)
    for key in ("embedding_output", "sequence_output", "pooled_output"):
        np.testing.assert_allclose(one_hot_result[key], gather_result[key], atol=1e-6)


def test_heads_must_divide_hidden_size():
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match=r"hidden_size \(30\).*num_attention_heads \(4\)"):
            modeling.BertModel(tiny_config(hidden_size=30), False, tf.zeros([1, 4], tf.int32))
        assert not tf.global_variables()  # rejected before building anything
        with pytest.raises(ValueError, match=r"\(30\).*\(4\)"):
            modeling.transformer_model(tf.zeros([1, 4, 30]), hidden_size=30, num_attention_heads=4)


def test_sequence_longer_than_position_table_is_rejected():
    config = tiny_config(max_position_embeddings=8)
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match=r"length 9 .*max_position_embeddings 8"):
            modeling.BertModel(config, False, tf.zeros([1, 9], tf.int32))
    with tf.Graph().as_default():  # exactly at the limit is fine
        model = modeling.BertModel(config, False, tf.zeros([1, 8], tf.int32))
        assert run(model.get_sequence_output()).shape == (1, 8, config.hidden_size)
    with tf.Graph().as_default():  # unknown length: checked when the graph runs
        input_ids = tf.placeholder(tf.int32, [1, None])
        model = modeling.BertModel(config, False, input_ids)
        with pytest.raises(tf.errors.InvalidArgumentError, match="max_position_embeddings"):
            run(model.get_sequence_output(), {input_ids: np.zeros([1, 9], np.int32)})


def test_input_ids_must_be_rank_2():
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match="expected rank `2`"):
            modeling.BertModel(tiny_config(), False, tf.zeros([4], tf.int32))


# ---------------------------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------------------------


def test_create_attention_mask_from_input_mask():
    to_mask = np.array([[1, 1, 0, 0], [1, 0, 1, 0]], np.int32)
    with tf.Graph().as_default():
        mask = run(modeling.create_attention_mask_from_input_mask(tf.zeros([2, 3, 5]), tf.constant(to_mask)))
    assert mask.dtype == np.float32
    np.testing.assert_array_equal(mask, np.repeat(to_mask[:, None, :], 3, axis=1).astype(np.float32))


def test_attention_layer_ignores_masked_positions_and_shapes():
    from_tensor = np.random.RandomState(0).randn(2, 3, 8).astype(np.float32)
    to_tensor = np.random.RandomState(1).randn(2, 4, 8).astype(np.float32)
    changed_to_tensor = to_tensor.copy()
    changed_to_tensor[:, 3] = 5.0
    mask = np.broadcast_to(np.array([1, 1, 1, 0], np.float32), (2, 3, 4))
    with tf.Graph().as_default(), shared_variables_scope():
        outputs = [modeling.attention_layer(tf.constant(from_tensor), tf.constant(to), tf.constant(mask),
                                            num_attention_heads=2, size_per_head=3)
                   for to in (to_tensor, changed_to_tensor)]
        flat = modeling.attention_layer(tf.constant(from_tensor.reshape(6, 8)), tf.constant(to_tensor.reshape(8, 8)),
                                        tf.constant(mask), num_attention_heads=2, size_per_head=3,
                                        do_return_2d_tensor=True, batch_size=2, from_seq_length=3, to_seq_length=4)
        names = sorted(variable.op.name for variable in tf.trainable_variables())
        original, changed, flat = run(outputs + [flat])
    assert original.shape == (2, 3, 6) and flat.shape == (6, 6)
    np.testing.assert_allclose(original, changed, atol=1e-6)
    np.testing.assert_allclose(flat, original.reshape(6, 6), atol=1e-6)
    assert names == [f"{part}/{kind}" for part in ("key", "query", "value") for kind in ("bias", "kernel")]


def test_attention_layer_argument_errors():
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match="same rank"):
            modeling.attention_layer(tf.zeros([2, 3, 8]), tf.zeros([6, 8]))
        with pytest.raises(ValueError, match="batch_size"):
            modeling.attention_layer(tf.zeros([6, 8]), tf.zeros([6, 8]))


def test_embedding_lookup_with_several_ids_per_position():
    ids = random_ids([2, 3, 2], 10)
    with tf.Graph().as_default():
        output, table = modeling.embedding_lookup(tf.constant(ids), vocab_size=10, embedding_size=4)
        output, table = run([output, table])
    assert output.shape == (2, 3, 8)
    np.testing.assert_array_equal(output[1, 2], np.concatenate([table[ids[1, 2, 0]], table[ids[1, 2, 1]]]))


def test_embedding_postprocessor_needs_token_type_ids():
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match="token_type_ids"):
            modeling.embedding_postprocessor(tf.zeros([2, 3, 8]), use_token_type=True)


def test_gelu_is_the_tanh_approximation():
    x = np.array([-6.0, -3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 6.0], np.float32)
    expected = 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x.astype(np.float64) ** 3)))
    with tf.Graph().as_default():
        actual = run(modeling.gelu(tf.constant(x)))
    np.testing.assert_allclose(actual, expected, atol=1e-6)
    np.testing.assert_allclose(actual[[4, 6]], [0.0, 0.841192], atol=1e-6)


def test_get_activation():
    assert modeling.get_activation("gelu") is modeling.gelu
    assert modeling.get_activation("ReLU") is tf.nn.relu
    assert modeling.get_activation("tanh") is tf.tanh
    for no_activation in (None, "", "linear", "LINEAR"):
        assert modeling.get_activation(no_activation) is None
    assert modeling.get_activation(tf.sigmoid) is tf.sigmoid
    with pytest.raises(ValueError, match="Unsupported activation: swish"):
        modeling.get_activation("swish")


def test_layer_norm_math_and_variable_names():
    x = np.random.RandomState(0).randn(3, 5).astype(np.float32) * 4 + 2
    with tf.Graph().as_default():
        with tf.variable_scope("block"):
            output = run(modeling.layer_norm(tf.constant(x)))
        names = sorted(variable.op.name for variable in tf.trainable_variables())
    expected = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-12)
    np.testing.assert_allclose(output, expected, atol=1e-5)
    assert names == ["block/LayerNorm/beta", "block/LayerNorm/gamma"]


def test_dense_math_and_variable_names():
    x = np.random.RandomState(0).randn(3, 5).astype(np.float32)
    with tf.Graph().as_default():
        output = modeling.dense(tf.constant(x), 4, activation=tf.nn.relu)
        named = modeling.dense(tf.constant(x), 2, name="query")
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            session.run(tf.assign(tf.trainable_variables()[1], np.arange(4, dtype=np.float32) - 1.5))
            output, kernel, bias = session.run([output] + tf.trainable_variables()[:2])
        names = [variable.op.name for variable in tf.trainable_variables()]
    np.testing.assert_allclose(output, np.maximum(x @ kernel + bias, 0), atol=1e-6)
    assert names == ["dense/kernel", "dense/bias", "query/kernel", "query/bias"]
    assert named.shape.as_list() == [3, 2]


def test_dropout():
    with tf.Graph().as_default():
        x = tf.ones([100, 100])
        assert modeling.dropout(x, None) is x
        assert modeling.dropout(x, 0.0) is x
        values = run(modeling.dropout(x, 0.25))
    assert set(np.unique(values)) <= {0.0, np.float32(1 / 0.75)}
    assert 0.2 < np.mean(values == 0) < 0.3


def test_create_initializer_is_truncated_normal():
    with tf.Graph().as_default():
        values = run(modeling.create_initializer(0.5)([200, 200]))
    assert np.abs(values).max() <= 1.0  # truncated at 2 stddev
    assert 0.35 < values.std() < 0.5


# ---------------------------------------------------------------------------------------------------------------
# Shape helpers
# ---------------------------------------------------------------------------------------------------------------


def test_get_shape_list_static_and_dynamic():
    with tf.Graph().as_default():
        tensor = tf.placeholder(tf.float32, [None, 5, None])
        shape = modeling.get_shape_list(tensor, expected_rank=3)
        assert shape[1] == 5
        assert isinstance(shape[0], tf.Tensor) and isinstance(shape[2], tf.Tensor)
        with tf.Session() as session:
            assert session.run([shape[0], shape[2]], {tensor: np.zeros([2, 5, 7])}) == [2, 7]
        assert modeling.get_shape_list(tf.zeros([2, 3])) == [2, 3]
        with pytest.raises(ValueError, match="expected rank"):
            modeling.get_shape_list(tensor, expected_rank=2)


def test_assert_rank():
    with tf.Graph().as_default():
        tensor = tf.zeros([2, 3], name="my_tensor")
        modeling.assert_rank(tensor, 2)
        modeling.assert_rank(tensor, [1, 2])
        with tf.variable_scope("outer"):
            with pytest.raises(ValueError, match=r"`my_tensor:0` in scope `outer`.*rank `2`.*expected rank `3`"):
                modeling.assert_rank(tensor, 3)
        with pytest.raises(ValueError, match="`ids`"):
            modeling.assert_rank(tensor, [3, 4], name="ids")


def test_reshape_to_and_from_matrix():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    with tf.Graph().as_default():
        matrix = modeling.reshape_to_matrix(tf.constant(x))
        assert matrix.shape.as_list() == [6, 4]
        restored = modeling.reshape_from_matrix(matrix, [2, 3, 4])
        already_matrix = tf.zeros([6, 4])
        assert modeling.reshape_to_matrix(already_matrix) is already_matrix
        assert modeling.reshape_from_matrix(already_matrix, [6, 4]) is already_matrix
        dynamic = tf.placeholder(tf.float32, [None, None, 4])
        dynamic_restored = modeling.reshape_from_matrix(modeling.reshape_to_matrix(dynamic),
                                                        modeling.get_shape_list(dynamic))
        with pytest.raises(ValueError, match="at least rank 2"):
            modeling.reshape_to_matrix(tf.zeros([3]))
        with tf.Session() as session:
            matrix, restored, dynamic_restored = session.run([matrix, restored, dynamic_restored], {dynamic: x})
    np.testing.assert_array_equal(matrix, x.reshape(6, 4))
    np.testing.assert_array_equal(restored, x)
    np.testing.assert_array_equal(dynamic_restored, x)


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------------------------


def test_get_assignment_map_from_checkpoint(tmp_path):
    checkpoint = str(tmp_path / "model.ckpt")
    with tf.Graph().as_default():
        tf.get_variable("a/b", initializer=np.float32([1.0, 2.0]))
        tf.get_variable("only_in_checkpoint", initializer=np.float32(3.0))
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            tf.train.Saver().save(session, checkpoint)

    with tf.Graph().as_default():
        shared = tf.get_variable("a/b", shape=[2], initializer=tf.zeros_initializer())
        tf.get_variable("only_in_model", shape=[], initializer=tf.zeros_initializer())
        assignment_map, initialized = modeling.get_assignment_map_from_checkpoint(tf.trainable_variables(),
                                                                                 checkpoint)
        assert dict(assignment_map) == {"a/b": "a/b"}
        assert initialized == {"a/b": 1, "a/b:0": 1}
        tf.train.init_from_checkpoint(checkpoint, assignment_map)
        np.testing.assert_array_equal(run(shared), [1.0, 2.0])


def minilm_outputs(modeling_module, checkpoint_dir: str, inputs) -> dict:
    """Embedding output, every layer, sequence and pooled output of `modeling_module`'s BertModel (ours or the
    original's) on the checkpoint, for the golden's int inputs (is_training=False)."""
    config = modeling_module.BertConfig.from_json_file(os.path.join(checkpoint_dir, "bert_config.json"))
    checkpoint = os.path.join(checkpoint_dir, "bert_model.ckpt")
    with tf.Graph().as_default():
        model = modeling_module.BertModel(config, is_training=False, input_ids=tf.constant(inputs["input_ids"]),
                                          input_mask=tf.constant(inputs["input_mask"]),
                                          token_type_ids=tf.constant(inputs["segment_ids"]))
        assignment_map, initialized = modeling_module.get_assignment_map_from_checkpoint(tf.trainable_variables(),
                                                                                         checkpoint)
        assert all(variable.name in initialized for variable in tf.trainable_variables())
        tf.train.init_from_checkpoint(checkpoint, assignment_map)
        return run({"embedding_output": model.get_embedding_output(),
                    "all_layers": tf.stack(model.get_all_encoder_layers()),
                    "sequence_output": model.get_sequence_output(),
                    "pooled_output": model.get_pooled_output()})


@pytest.fixture(scope="module")
def minilm_golden():
    with np.load(shared_path("golden", "minilm_model_outputs.npz")) as golden:
        return dict(golden)


@pytest.mark.slow
@pytest.mark.needs_tf215  # the original's code (TPUEstimator, tf.layers) or tf.estimator
def test_parity_with_original_live_on_minilm(minilm_checkpoint, minilm_golden):
    """The original's modeling.py, run here on the real MiniLM checkpoint, and ours give the same outputs exactly
    (max abs diff 0.0): the same graph on the same machine."""
    original = minilm_outputs(load_original_module("modeling"), minilm_checkpoint, minilm_golden)
    ours = minilm_outputs(modeling, minilm_checkpoint, minilm_golden)
    for key, value in ours.items():
        assert value.shape == original[key].shape, key
        max_abs_diff = float(np.abs(value - original[key]).max())
        assert max_abs_diff == 0.0, f"{key}: max abs diff {max_abs_diff}"


# Stored golden (made on another machine): how far the same graph's outputs move with other kernels, measured here
# under ONEDNN_MAX_CPU_ISA=AVX2 and TF_ENABLE_ONEDNN_OPTS=0 (the kernels of other CPU families): at most 3.3e-5 in
# the layers (values up to 10.5; the error grows with a tensor's scale, not with each element's), 2.6e-7 in the
# pooled output; on an Intel Xeon, 1.4e-6 in the embedding output. Bound: 1e-5 of the tensor's largest value, at
# least 1e-5 (1.05e-4 for the layers, a 3x margin; 1e-5 for the pooled output).
MODEL_OUTPUT_RELATIVE_TOLERANCE = 1e-5


@pytest.mark.slow
def test_outputs_match_the_stored_golden_of_the_original(minilm_checkpoint, minilm_golden):
    ours = minilm_outputs(modeling, minilm_checkpoint, minilm_golden)
    for key, value in ours.items():
        expected = minilm_golden[key]
        tolerance = MODEL_OUTPUT_RELATIVE_TOLERANCE * max(1.0, float(np.abs(expected).max()))
        max_abs_diff = float(np.abs(value - expected).max())
        print(f"{key}: max abs diff from the stored golden {max_abs_diff:.3g} (bound {tolerance:.3g})")
        assert max_abs_diff <= tolerance, f"{key}: max abs diff {max_abs_diff} > {tolerance}"


# ---------------------------------------------------------------------------------------------------------------
# BertConfig and the early checks
# ---------------------------------------------------------------------------------------------------------------


def test_config_defaults_match_the_original():
    config = modeling.BertConfig(vocab_size=99)
    assert config.to_dict() == {
        "vocab_size": 99, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
        "intermediate_size": 3072, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 512, "type_vocab_size": 16,
        "initializer_range": 0.02}


def test_config_json_round_trip(tmp_path):
    config = modeling.BertConfig(vocab_size=99, hidden_size=37, hidden_act="relu")
    text = config.to_json_string()
    assert text.endswith("}\n") and json.loads(text)["hidden_size"] == 37
    assert list(json.loads(text)) == sorted(json.loads(text))
    path = tmp_path / "bert_config.json"
    path.write_text(text)
    assert modeling.BertConfig.from_json_file(str(path)).to_dict() == config.to_dict()
    assert modeling.BertConfig.from_dict(config.to_dict()).to_json_string() == text
    copy = config.to_dict()
    copy["hidden_size"] = 1
    assert config.hidden_size == 37


def test_config_from_dict_keeps_unknown_keys_with_a_warning(caplog):
    values = {"vocab_size": 119547, "hidden_size": 768, "directionality": "bidi", "pooler_fc_size": 768}
    with caplog.at_level(logging.WARNING):
        config = modeling.BertConfig.from_dict(values)
    assert config.directionality == "bidi" and config.pooler_fc_size == 768
    assert config.vocab_size == 119547 and config.num_hidden_layers == 12  # unset keys keep the defaults
    assert "directionality" in caplog.text and "pooler_fc_size" in caplog.text
    assert config.to_dict()["directionality"] == "bidi"


def test_config_file_errors(tmp_path):
    missing = str(tmp_path / "nowhere" / "bert_config.json")
    with pytest.raises(FileNotFoundError, match=re.escape(missing)):
        modeling.BertConfig.from_json_file(missing)

    malformed = tmp_path / "malformed.json"
    malformed.write_text('{\n  "vocab_size": 99,\n  "hidden_size": ,\n}\n')
    with pytest.raises(ValueError, match=re.escape(str(malformed)) + r".*line 3, column 18"):
        modeling.BertConfig.from_json_file(str(malformed))

    not_an_object = tmp_path / "list.json"
    not_an_object.write_text("[1, 2]")
    with pytest.raises(ValueError, match=re.escape(str(not_an_object)) + ".*JSON object"):
        modeling.BertConfig.from_json_file(str(not_an_object))


def test_check_sequence_length():
    config = tiny_config(max_position_embeddings=128)
    modeling.check_sequence_length(config, 128)
    with pytest.raises(ValueError, match=r"--max_seq_length=129 .*max_position_embeddings=128.*--bert_config_file"):
        modeling.check_sequence_length(config, 129)
    with pytest.raises(ValueError, match=r"max_position_embeddings=128 in /models/x/bert_config.json"):
        modeling.check_sequence_length(config, 512, bert_config_file="/models/x/bert_config.json")


def test_check_vocab_fits(caplog):
    config = tiny_config(vocab_size=100)
    with caplog.at_level(logging.WARNING):
        modeling.check_vocab_fits(config, 100)
        assert caplog.text == ""
        modeling.check_vocab_fits(config, 50, vocab_file="/v/vocab.txt")  # padded table, or a download cut short
    assert "vocab file /v/vocab.txt has 50 entries, fewer than the BERT config's vocab_size=100" in caplog.text
    with pytest.raises(ValueError, match=r"vocab file /v/vocab.txt has 101 entries .*vocab_size=100"):
        modeling.check_vocab_fits(config, 101, vocab_file="/v/vocab.txt")
    with pytest.raises(ValueError, match=r"101 entries"):
        modeling.check_vocab_fits(config, 101)


# ---------------------------------------------------------------------------------------------------------------
# configs/
# ---------------------------------------------------------------------------------------------------------------

CONFIG_FILES = sorted(glob.glob(os.path.join(CONFIGS_DIR, "*.json")))
SMALL_BERT_NAMES = [f"uncased_L-{layers}_H-{hidden}_A-{hidden // 64}.json"
                    for layers in (2, 4, 6, 8, 10, 12) for hidden in (128, 256, 512, 768)]
RELEASED_VOCAB_SIZES = {"uncased_L-12_H-768_A-12.json": 30522, "uncased_L-24_H-1024_A-16.json": 30522,
                        "cased_L-12_H-768_A-12.json": 28996, "cased_L-24_H-1024_A-16.json": 28996,
                        "multi_cased_L-12_H-768_A-12.json": 119547, "chinese_L-12_H-768_A-12.json": 21128}


def test_all_expected_configs_exist():
    names = {os.path.basename(path) for path in CONFIG_FILES}
    assert set(SMALL_BERT_NAMES) | set(RELEASED_VOCAB_SIZES) <= names


@pytest.mark.parametrize("path", CONFIG_FILES, ids=os.path.basename)
def test_config_file_is_consistent_with_its_name(path):
    name = os.path.basename(path)
    config = modeling.BertConfig.from_json_file(path)
    layers, hidden, heads = map(int, re.search(r"L-(\d+)_H-(\d+)_A-(\d+)\.json$", name).groups())
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (layers, hidden, heads)
    assert config.hidden_size % config.num_attention_heads == 0
    assert config.intermediate_size == 4 * config.hidden_size
    assert config.vocab_size == RELEASED_VOCAB_SIZES.get(name, 30522)
    assert (config.type_vocab_size, config.max_position_embeddings, config.hidden_act) == (2, 512, "gelu")
    assert (config.hidden_dropout_prob, config.attention_probs_dropout_prob, config.initializer_range) == (
        0.1, 0.1, 0.02)
    with open(path) as reader:
        text = reader.read()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
