"""LAMB (optimization.create_optimizer(..., optimizer="lamb")) step by step against NumPy formulas of the paper."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from bert import optimization
from bert.runtime import specs
from bert.runtime.performance import PerformanceSettings

# Shapes and initial values; "zero/kernel" starts at 0 (||w|| = 0, so its trust ratio is 1).
NAMES = ["layer/dense/kernel", "layer/dense/bias", "layer/LayerNorm/gamma", "zero/kernel"]
EXCLUDED = {"layer/dense/bias", "layer/LayerNorm/gamma"}
INIT_LR, NUM_TRAIN_STEPS, NUM_WARMUP_STEPS = 0.1, 10, 3


def _initial_values():
    rng = np.random.RandomState(0)
    values = {name: rng.standard_normal((3, 2) if "kernel" in name else (2,)).astype(np.float32) for name in NAMES}
    values["zero/kernel"][:] = 0.0
    return values


def _inputs(num_runs):
    """One input matrix per run of the training op; the loss is sum(sin(w) * x) + sum(w^2) * 0.5 per variable."""
    rng = np.random.RandomState(1)
    return [{name: rng.standard_normal(v.shape).astype(np.float32) * 3.0 for name, v in _initial_values().items()}
            for _ in range(num_runs)]


def _numpy_gradients(values, x):
    return {name: np.cos(values[name]) * x[name] + values[name] for name in NAMES}


def _numpy_learning_rate(t):
    if t < NUM_WARMUP_STEPS:
        return INIT_LR * t / NUM_WARMUP_STEPS
    return INIT_LR * max(0.0, 1.0 - t / NUM_TRAIN_STEPS)


def _numpy_lamb(num_updates, num_accumulation_steps=1):
    """Algorithm 2 of You et al. with BERT's constants, the clipping by global norm 1.0, the exclusion list; in
    float32 as TensorFlow computes, with the constants 1 - beta rounded from float64 as TensorFlow rounds them."""
    beta_1, beta_2, epsilon, decay = np.float32(0.9), np.float32(0.999), np.float32(1e-6), np.float32(0.01)
    w = _initial_values()
    m = {name: np.zeros_like(v) for name, v in w.items()}
    v = {name: np.zeros_like(value) for name, value in w.items()}
    inputs = _inputs(num_updates * num_accumulation_steps)
    trajectory = []
    for t in range(1, num_updates + 1):
        micro = inputs[(t - 1) * num_accumulation_steps: t * num_accumulation_steps]
        grads = {name: np.mean([_numpy_gradients(w, x)[name] for x in micro], axis=0) for name in NAMES}
        norm = np.sqrt(sum(np.sum(g ** 2) for g in grads.values()))
        scale = np.float32(min(1.0, 1.0 / norm))
        lr = np.float32(_numpy_learning_rate(t))
        for name in NAMES:
            g = grads[name] * scale
            m[name] = beta_1 * m[name] + np.float32(1 - 0.9) * g
            v[name] = beta_2 * v[name] + np.float32(1 - 0.999) * g ** 2
            m_hat = m[name] / np.float32(1 - 0.9 ** t)  # the corrections exactly (float64), then rounded
            v_hat = v[name] / np.float32(1 - 0.999 ** t)
            update = m_hat / (np.sqrt(v_hat) + epsilon)
            ratio = np.float32(1.0)
            if name not in EXCLUDED:
                update = update + decay * w[name]
                w_norm, u_norm = np.linalg.norm(w[name]), np.linalg.norm(update)
                ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
            w[name] = w[name] - lr * ratio * update
        trajectory.append({name: value.copy() for name, value in w.items()})
    return trajectory


def _tf_lamb(num_updates, num_accumulation_steps=1, through_settings=False):
    """The same problem through create_optimizer; values after each update (and the final global step)."""
    inputs = _inputs(num_updates * num_accumulation_steps)
    with tf.Graph().as_default():
        variables = {name: tf.get_variable(name, initializer=tf.constant(value))
                     for name, value in _initial_values().items()}
        placeholders = {name: tf.placeholder(tf.float32, value.shape) for name, value in _initial_values().items()}
        loss = tf.add_n([tf.reduce_sum(tf.sin(variables[n]) * placeholders[n]) + 0.5 * tf.reduce_sum(variables[n] ** 2)
                         for n in NAMES])
        if through_settings:
            # As a task's model_fn under make_estimator: the run's settings reach create_optimizer via train_spec.
            params = {specs.RUN_PARAMS: specs.RunParams(PerformanceSettings(optimizer="lamb"))}
            train_op = specs.train_spec(loss, INIT_LR, NUM_TRAIN_STEPS, NUM_WARMUP_STEPS, False, None,
                                        params).train_op
        else:
            train_op = optimization.create_optimizer(loss, INIT_LR, NUM_TRAIN_STEPS, NUM_WARMUP_STEPS, False,
                                                     num_accumulation_steps=num_accumulation_steps,
                                                     optimizer="lamb")
        trajectory = []
        with tf.Session() as session:
            session.run([tf.global_variables_initializer(), tf.local_variables_initializer()])
            for run, x in enumerate(inputs, start=1):
                session.run(train_op, {placeholders[n]: x[n] for n in NAMES})
                if run % num_accumulation_steps == 0:
                    trajectory.append(session.run(variables))
            global_step = session.run(tf.train.get_global_step())
    return trajectory, global_step


def _assert_trajectories_equal(actual, expected):
    assert len(actual) == len(expected)
    for step, (got, want) in enumerate(zip(actual, expected), start=1):
        for name in NAMES:
            np.testing.assert_allclose(got[name], want[name], atol=1e-6, rtol=0, err_msg=f"update {step}, {name}")


def test_lamb_steps_equal_numpy_formulas():
    # 6 updates: through warmup (t = 1, 2) into the decay, with bias corrections of t = 1..6.
    trajectory, global_step = _tf_lamb(6)
    _assert_trajectories_equal(trajectory, _numpy_lamb(6))
    assert global_step == 6
    # The trust ratio really acts: an update of plain bias-corrected Adam-with-decay differs.
    assert not np.allclose(trajectory[0]["layer/dense/kernel"], _initial_values()["layer/dense/kernel"])


def test_lamb_with_accumulation_counts_updates_not_micro_batches():
    trajectory, global_step = _tf_lamb(3, num_accumulation_steps=2)
    _assert_trajectories_equal(trajectory, _numpy_lamb(3, num_accumulation_steps=2))
    assert global_step == 3


def test_lamb_is_chosen_by_the_run_settings():
    trajectory, _ = _tf_lamb(2, through_settings=True)
    _assert_trajectories_equal(trajectory, _numpy_lamb(2))


def test_trust_ratio_is_one_when_a_norm_is_zero():
    with tf.Graph().as_default(), tf.Session() as session:
        ratios = session.run([optimization.trust_ratio(tf.zeros([3]), tf.ones([3])),
                              optimization.trust_ratio(tf.ones([3]), tf.zeros([3])),
                              optimization.trust_ratio(tf.constant([3.0, 4.0]), tf.constant([0.0, 0.5]))])
    assert ratios == pytest.approx([1.0, 1.0, 10.0])


def test_lamb_keeps_adam_slot_names_and_default_stays_adamw():
    with tf.Graph().as_default():
        w = tf.get_variable("layer/dense/kernel", initializer=tf.ones([2]))
        optimization.create_optimizer(tf.reduce_sum(w ** 2), 0.1, 10, 0, False, optimizer="lamb")
        names = sorted(v.op.name for v in tf.global_variables())
    assert names == ["global_step", "layer/dense/kernel", "layer/dense/kernel/adam_m", "layer/dense/kernel/adam_v"]
    assert PerformanceSettings().optimizer == "adamw"


def test_unknown_optimizer_is_refused():
    with tf.Graph().as_default():
        w = tf.get_variable("w", initializer=tf.ones([2]))
        with pytest.raises(ValueError, match="optimizer must be one of adamw, lamb, got 'sgd'"):
            optimization.create_optimizer(tf.reduce_sum(w), 0.1, 10, 0, False, optimizer="sgd")
    with pytest.raises(ValueError, match="optimizer must be one of"):
        PerformanceSettings(optimizer="sgd").validate()
