"""Gradient accumulation: N micro-batches of B give the update of one batch of B x N, counted as one step."""

import subprocess

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from task_data import script_command, tiny_options, write_mrpc_like

from bert import modeling, optimization
from bert.classifier import job as classifier_run
from bert.runtime.engine import make_estimator
from bert.runtime.options import RunSettings
from bert.runtime.performance import PerformanceSettings

NUM_EXAMPLES = 24
SEQ_LENGTH = 8
# Accumulated and large-batch updates sum the same gradients in another order. Their largest difference after three
# Adam updates, measured here with the kernels of several CPU families: 1.8e-6 (AMD EPYC), 2.5e-6 (Intel Xeon),
# 5.0e-6 (ONEDNN_MAX_CPU_ISA=AVX2); bound 2e-5, a 4x margin. The updates themselves reach 6.9e-2, so a wrong
# accumulation (a sum for a mean, a missed micro-batch, a step counted per micro-batch) is far outside it.
ACCUMULATION_TOLERANCE = 2e-5


def _tiny_config() -> modeling.BertConfig:
    return modeling.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                               intermediate_size=37, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                               max_position_embeddings=16)


def _data():
    rng = np.random.RandomState(0)
    ids = rng.randint(0, 99, (NUM_EXAMPLES, SEQ_LENGTH)).astype(np.int32)
    mask = (np.arange(SEQ_LENGTH)[None, :] < rng.randint(3, SEQ_LENGTH + 1, (NUM_EXAMPLES, 1))).astype(np.int32)
    labels = rng.randint(0, 3, NUM_EXAMPLES).astype(np.int32)
    return ids, mask, labels


def _classifier_loss(model: modeling.BertModel, labels: tf.Tensor) -> tf.Tensor:
    """Mean cross-entropy of a 3-way linear head on the pooled output (no dropout)."""
    weights = tf.get_variable("head/kernel", [32, 3], initializer=tf.truncated_normal_initializer(stddev=0.02))
    logits = tf.matmul(model.get_pooled_output(), weights)
    return tf.losses.sparse_softmax_cross_entropy(labels, logits)


def _train(batch_size, num_accumulation_steps, num_updates):
    """Trains a tiny BERT classifier (dropout off) feeding batches in order; returns its variables and global step."""
    ids, mask, labels = _data()
    with tf.Graph().as_default():
        tf.set_random_seed(1)
        ids_in = tf.placeholder(tf.int32, [None, SEQ_LENGTH])
        mask_in = tf.placeholder(tf.int32, [None, SEQ_LENGTH])
        labels_in = tf.placeholder(tf.int32, [None])
        model = modeling.BertModel(_tiny_config(), is_training=True, input_ids=ids_in, input_mask=mask_in)
        loss = _classifier_loss(model, labels_in)
        train_op = optimization.create_optimizer(loss, 1e-2, num_train_steps=6, num_warmup_steps=2, use_tpu=False,
                                                 num_accumulation_steps=num_accumulation_steps)
        with tf.Session() as session:
            session.run([tf.global_variables_initializer(), tf.local_variables_initializer()])
            start = 0
            for _ in range(num_updates * num_accumulation_steps):
                batch = slice(start, start + batch_size)
                session.run(train_op, {ids_in: ids[batch], mask_in: mask[batch], labels_in: labels[batch]})
                start = (start + batch_size) % NUM_EXAMPLES
            values = session.run({v.op.name: v for v in tf.trainable_variables()})
            return values, session.run(tf.train.get_global_step())


@pytest.mark.slow
@pytest.mark.parametrize("micro_batch, num_accumulation_steps", [(4, 2), (2, 4)])
def test_accumulated_updates_equal_large_batch_updates(micro_batch, num_accumulation_steps):
    num_updates = 3  # crosses the warmup (2 steps): the schedule must count updates, not micro-batches
    large, large_step = _train(micro_batch * num_accumulation_steps, 1, num_updates)
    accumulated, accumulated_step = _train(micro_batch, num_accumulation_steps, num_updates)
    assert large_step == accumulated_step == num_updates
    initial, _ = _train(micro_batch, 1, 0)
    for name in ("head/kernel", "bert/embeddings/word_embeddings", "bert/encoder/layer_1/output/dense/kernel"):
        assert not np.allclose(large[name], initial[name]), f"{name} did not train"
    print(f"max abs diff {max(float(np.abs(accumulated[name] - value).max()) for name, value in large.items()):.3g}")
    for name, value in large.items():
        np.testing.assert_allclose(accumulated[name], value, rtol=0, atol=ACCUMULATION_TOLERANCE, err_msg=name)


def test_partial_accumulation_leaves_weights_and_step_alone():
    initial, _ = _train(4, 1, 0)
    ids, mask, labels = _data()
    with tf.Graph().as_default():
        tf.set_random_seed(1)
        model = modeling.BertModel(_tiny_config(), is_training=True, input_ids=tf.constant(ids[:4]),
                                   input_mask=tf.constant(mask[:4]))
        loss = _classifier_loss(model, tf.constant(labels[:4]))
        train_op = optimization.create_optimizer(loss, 1e-2, 6, 2, False, num_accumulation_steps=3)
        local_variables = {v.op.name: v for v in tf.local_variables()}
        micro_step = local_variables["accumulation_micro_step"]
        assert not {v.op.name for v in tf.global_variables()} & set(local_variables)
        with tf.Session() as session:
            session.run([tf.global_variables_initializer(), tf.local_variables_initializer()])
            for _ in range(2):
                session.run(train_op)
            values = session.run({v.op.name: v for v in tf.trainable_variables()})
            assert session.run(tf.train.get_global_step()) == 0
            assert session.run(micro_step) == 2
            session.run(train_op)
            assert session.run(tf.train.get_global_step()) == 1
            assert session.run(micro_step) == 0
    for name, value in values.items():
        np.testing.assert_array_equal(value, initial[name], err_msg=name)


def _run_settings(output_dir, **performance):
    return RunSettings(output_dir=str(output_dir), seed=1,
                       performance=PerformanceSettings(**performance))


@pytest.mark.slow
def test_classifier_run_with_accumulation_counts_updates_and_saves_plain_checkpoints(tiny_model_dir, tmp_path):
    data_dir = write_mrpc_like(tmp_path / "data")
    out = tmp_path / "accumulated"
    options = tiny_options(tiny_model_dir, data_dir, out, do_train=True)
    options.run = _run_settings(out, num_accumulation_steps=4)
    classifier_run.run(options)
    # 48 examples at train_batch_size 8 are 6 updates of 4 micro-batches of 2.
    checkpoint = tf.train.latest_checkpoint(str(out))
    assert checkpoint.endswith("model.ckpt-6")
    plain_out = tmp_path / "plain"
    classifier_run.run(tiny_options(tiny_model_dir, data_dir, plain_out, do_train=True))
    plain_variables = dict(tf.train.list_variables(tf.train.latest_checkpoint(str(plain_out))))
    assert dict(tf.train.list_variables(checkpoint)) == plain_variables
    # A default run evaluates the accumulated run's checkpoint.
    results = classifier_run.run(tiny_options(tiny_model_dir, data_dir, out, do_eval=True))
    assert int(results.eval_results["global_step"]) == 6


def test_micro_batches_reach_the_input_fn(tmp_path):
    seen = []

    def input_fn(params):
        seen.append(params["batch_size"])
        return tf.data.Dataset.from_tensors({"x": tf.zeros([params["batch_size"]])})

    def model_fn(features, labels, mode, params):
        raise RuntimeError("stop after the input_fn")

    estimator = make_estimator(model_fn, _run_settings(tmp_path, num_accumulation_steps=4),
                               train_batch_size=32, eval_batch_size=8, predict_batch_size=8)
    with pytest.raises(RuntimeError, match="stop after the input_fn"):
        estimator.train(input_fn, max_steps=1)
    assert seen == [8]


@pytest.mark.parametrize("train_batch_size, performance, message", [
    (32, dict(num_accumulation_steps=3), "32 .* 3 micro-batches"),
    (32, dict(num_accumulation_steps=0), "num_accumulation_steps must be an integer >= 1"),
])
def test_bad_accumulation_settings(tmp_path, train_batch_size, performance, message):
    with pytest.raises(ValueError, match=message):
        make_estimator(lambda *args: None, _run_settings(tmp_path, **performance),
                       train_batch_size=train_batch_size)


def test_accumulation_is_refused_on_tpu(tmp_path):
    settings = _run_settings(tmp_path, num_accumulation_steps=2)
    settings.use_tpu = True
    with pytest.raises(ValueError, match="num_accumulation_steps > 1 is for GPUs and CPUs"):
        make_estimator(lambda *args: None, settings, train_batch_size=32)
    with tf.Graph().as_default():
        loss = tf.reduce_sum(tf.get_variable("w", [2]))
        with pytest.raises(ValueError, match="not available with use_tpu"):
            optimization.create_optimizer(loss, 0.1, 10, 1, True, num_accumulation_steps=2)


@pytest.mark.slow
def test_script_flag(tiny_model_dir, tmp_path):
    data_dir = write_mrpc_like(tmp_path / "data", num_train=16, num_dev=4, num_test=2)
    out = tmp_path / "out"
    command = script_command(tiny_model_dir, data_dir, out, "--do_train=true", "--max_seq_length=16",
                             "--train_batch_size=8", "--num_train_epochs=1", "--num_accumulation_steps=2")
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert tf.train.latest_checkpoint(str(out)).endswith("model.ckpt-2")
