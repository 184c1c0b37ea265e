"""Tests of bert.optimization: reference trajectory, learning-rate schedule, weight decay, slots, global step."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from bert import optimization
from helpers import shared_path


def _run_trajectory(num_steps):
    """The problem of the shared tools/make_opt_golden.py: variable values after each create_optimizer step."""
    rng = np.random.RandomState(0)
    x = rng.standard_normal((8, 3)).astype(np.float32)
    y = rng.standard_normal((8, 2)).astype(np.float32)
    with tf.Graph().as_default():
        kernel = tf.get_variable("layer_0/dense/kernel",
                                 initializer=tf.constant(rng.standard_normal((3, 2)).astype(np.float32)))
        bias = tf.get_variable("layer_0/dense/bias", initializer=tf.constant(np.full((2,), 0.5, np.float32)))
        gamma = tf.get_variable("layer_0/LayerNorm/gamma", initializer=tf.constant(np.full((2,), 1.5, np.float32)))
        loss = tf.reduce_sum(tf.square((tf.matmul(x, kernel) + bias) * gamma - y)) * 10.0
        train_op = optimization.create_optimizer(loss, 0.1, 10, 3, False)
        trajectory = []
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for _ in range(num_steps):
                sess.run(train_op)
                trajectory.append(np.concatenate([v.ravel() for v in sess.run([kernel, bias, gamma])]))
            final_step = sess.run(tf.train.get_global_step())
    return np.stack(trajectory), final_step


def test_trajectory_matches_original():
    """The stored golden (made on another machine; values up to ~2 after 14 steps): within 1e-6.

    No live comparison: the original increments the global step and reads it for the learning rate with no order
    between the two (a race), so its own trajectory is not repeatable (docs/what_is_tested.md).
    """
    golden = np.load(shared_path("golden", "optimizer_trajectory.npz"))
    trajectory, final_step = _run_trajectory(len(golden["traj"]))
    np.testing.assert_allclose(trajectory, golden["traj"], rtol=0, atol=1e-6)
    assert final_step == golden["final_step"] == 14


def _schedule_values(steps, init_lr, num_train_steps, num_warmup_steps):
    with tf.Graph().as_default():
        step = tf.placeholder(tf.int64, shape=[])
        learning_rate = optimization.learning_rate_schedule(step, init_lr, num_train_steps, num_warmup_steps)
        with tf.Session() as sess:
            return [sess.run(learning_rate, {step: s}) for s in steps]


def test_schedule_warmup_then_linear_decay():
    steps = [0, 1, 3, 4, 5, 8, 10, 15]
    values = _schedule_values(steps, 0.1, 10, 4)
    # Warmup: 0.1 * step / 4; afterwards the decay line 0.1 * (1 - step / 10) that started at step 0.
    expected = [0.0, 0.025, 0.075, 0.06, 0.05, 0.02, 0.0, 0.0]
    np.testing.assert_allclose(values, expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("num_warmup_steps", [0, None])
def test_schedule_without_warmup_starts_at_init_lr(num_warmup_steps):
    values = _schedule_values([0, 50, 100], 2e-5, 100, num_warmup_steps)
    np.testing.assert_allclose(values, [2e-5, 1e-5, 0.0], rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("num_train_steps,num_warmup_steps,message", [
    (0, 0, "num_train_steps"),
    (-5, 0, "num_train_steps"),
    (None, 0, "num_train_steps"),
    (10, -1, "num_warmup_steps"),
])
def test_schedule_rejects_bad_step_counts(num_train_steps, num_warmup_steps, message):
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match=message):
            optimization.learning_rate_schedule(tf.constant(0, tf.int64), 0.1, num_train_steps, num_warmup_steps)


def _variables_after_one_zero_gradient_step(names, init_lr, num_warmup_steps):
    """Runs one create_optimizer step whose gradients are all zero; returns {name: (before, after)}."""
    rng = np.random.RandomState(3)
    with tf.Graph().as_default():
        variables = [tf.get_variable(name, initializer=tf.constant(rng.standard_normal(4).astype(np.float32)))
                     for name in names]
        loss = 0.0 * tf.add_n([tf.reduce_sum(v) for v in variables])
        train_op = optimization.create_optimizer(loss, init_lr, 10, num_warmup_steps, False)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            before = sess.run(variables)
            sess.run(train_op)
            after = sess.run(variables)
    return {name: (b, a) for name, b, a in zip(names, before, after)}


def test_weight_decay_skips_layer_norm_and_bias():
    names = ["layer/dense/kernel", "layer/dense/bias", "layer/LayerNorm/gamma", "layer/LayerNorm/beta",
             "other/layer_norm/scale", "cls/predictions/output_bias"]
    values = _variables_after_one_zero_gradient_step(names, init_lr=0.5, num_warmup_steps=0)
    # With zero gradients the Adam term vanishes; only the decay 0.01 * lr * w remains. The first step uses the
    # learning rate of step 1: 0.5 * (1 - 1 / 10) = 0.45.
    before, after = values["layer/dense/kernel"]
    np.testing.assert_allclose(after, before - np.float32(0.45) * (np.float32(0.01) * before), rtol=1e-6)
    assert not np.array_equal(after, before)
    for name in names[1:]:
        before, after = values[name]
        np.testing.assert_array_equal(after, before, err_msg=name)


def test_first_update_uses_learning_rate_of_next_step():
    # Warmup 4, init_lr 0.8: the step taken at global step 0 uses lr(1) = 0.2, not lr(0) = 0.
    before, after = _variables_after_one_zero_gradient_step(["w"], init_lr=0.8, num_warmup_steps=4)["w"]
    np.testing.assert_allclose(after, before * (1 - 0.2 * 0.01), rtol=1e-6)


def test_slot_variables_and_global_step():
    with tf.Graph().as_default():
        with tf.variable_scope("bert"):
            kernel = tf.get_variable("pooler/dense/kernel", shape=[3, 2])
            bias = tf.get_variable("pooler/dense/bias", shape=[2])
        unused = tf.get_variable("unused", shape=[5])
        loss = tf.reduce_sum(tf.matmul(tf.ones([1, 3]), kernel) + bias)
        train_op = optimization.create_optimizer(loss, 1e-3, 100, 10, False)
        slots = {v.op.name: v for v in tf.global_variables() if v.op.name.endswith(("/adam_m", "/adam_v"))}
        assert sorted(slots) == ["bert/pooler/dense/bias/adam_m", "bert/pooler/dense/bias/adam_v",
                                 "bert/pooler/dense/kernel/adam_m", "bert/pooler/dense/kernel/adam_v"]
        assert slots["bert/pooler/dense/kernel/adam_m"].shape.as_list() == [3, 2]
        assert slots["bert/pooler/dense/bias/adam_v"].shape.as_list() == [2]
        assert not set(slots.values()) & set(tf.trainable_variables())
        assert unused in tf.trainable_variables()
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for _ in range(3):
                sess.run(train_op)
            assert sess.run(tf.train.get_global_step()) == 3
            # The moments hold a running average of the (clipped) gradient.
            assert np.all(sess.run(slots["bert/pooler/dense/kernel/adam_m"]) > 0)


def test_apply_gradients_does_not_increment_global_step():
    with tf.Graph().as_default():
        w = tf.get_variable("w", initializer=tf.constant([1.0, 2.0]))
        global_step = tf.train.get_or_create_global_step()
        optimizer = optimization.AdamWeightDecayOptimizer(learning_rate=0.1)
        train_op = optimizer.apply_gradients([(tf.constant([1.0, -1.0]), w), (None, global_step)], global_step)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for _ in range(2):
                sess.run(train_op)
            assert sess.run(global_step) == 0
            # No bias correction: after step 1 m = 0.1 g, v = 0.001 g^2; after step 2 m = 0.19 g, v = 0.001999 g^2.
            adam_steps = 0.1 / (np.sqrt(0.001) + 1e-6) + 0.19 / (np.sqrt(0.001999) + 1e-6)
            np.testing.assert_allclose(sess.run(w), [1.0 - 0.1 * adam_steps, 2.0 + 0.1 * adam_steps], rtol=1e-5)


def test_adam_converges_like_original_test():
    with tf.Graph().as_default():
        w = tf.get_variable("w", shape=[3], initializer=tf.constant_initializer([0.1, -0.2, -0.1]))
        x = tf.constant([0.4, 0.2, -0.5])
        loss = tf.reduce_mean(tf.square(x - w))
        grads = tf.gradients(loss, [w])
        global_step = tf.train.get_or_create_global_step()
        optimizer = optimization.AdamWeightDecayOptimizer(learning_rate=0.2)
        train_op = optimizer.apply_gradients(zip(grads, [w]), global_step)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for _ in range(100):
                sess.run(train_op)
            np.testing.assert_allclose(sess.run(w), [0.4, 0.2, -0.5], rtol=1e-2, atol=1e-2)


def test_tpu_wraps_in_cross_shard_optimizer():
    with tf.Graph().as_default():
        assert isinstance(optimization.build_optimizer(0.1, use_tpu=True), tf.tpu.CrossShardOptimizer)
        optimizer = optimization.build_optimizer(0.1, use_tpu=False)
        assert isinstance(optimizer, optimization.AdamWeightDecayOptimizer)
        assert optimizer.weight_decay_rate == 0.01
        assert (optimizer.beta_1, optimizer.beta_2, optimizer.epsilon) == (0.9, 0.999, 1e-6)


def test_clipping_limits_global_norm():
    with tf.Graph().as_default():
        w = tf.get_variable("w", initializer=tf.constant([0.0, 0.0]))
        # SGD-like check through a plain optimizer: the applied gradient must have norm 1.
        sgd = tf.train.GradientDescentOptimizer(1.0)
        apply_op = optimization.apply_clipped_gradients(sgd, [tf.constant([30.0, 40.0])], [w])
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            sess.run(apply_op)
            np.testing.assert_allclose(sess.run(w), [-0.6, -0.8], rtol=1e-6)


def test_no_trainable_variables_is_an_error():
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match="no trainable variables"):
            optimization.create_optimizer(tf.constant(1.0), 0.1, 10, 1, False)
