"""Gradient checkpointing (BertModel(gradient_checkpointing=True), --gradient_checkpointing): the same gradients as
the plain model, the same dropout masks in the recomputation, the same variables; with accumulation, loss scaling
and bf16 (mirrored training: tests/runtime/test_perf_distribution.py)."""

import itertools

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from bert import modeling, optimization
from bert.runtime import performance
from bert.runtime.performance import PerformanceSettings

BATCH, SEQ, HIDDEN = 3, 8, 32


def _config(dropout: float) -> modeling.BertConfig:
    return modeling.BertConfig(vocab_size=99, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4,
                               intermediate_size=37, hidden_dropout_prob=dropout,
                               attention_probs_dropout_prob=dropout, max_position_embeddings=16)


def _inputs():
    rng = np.random.RandomState(0)
    ids = rng.randint(0, 99, (BATCH, SEQ)).astype(np.int32)
    mask = (np.arange(SEQ)[None, :] < np.array([[SEQ], [5], [3]])).astype(np.int32)
    weights = rng.standard_normal((BATCH, SEQ, HIDDEN)).astype(np.float32)
    return ids, mask, weights


def _build(checkpointing: bool, dropout: float):
    """A tiny BERT and a loss on every output position and the pooled vector; returns (graph, loss, grads)."""
    ids, mask, weights = _inputs()
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(0)
        model = modeling.BertModel(_config(dropout), is_training=True, input_ids=tf.constant(ids),
                                   input_mask=tf.constant(mask), gradient_checkpointing=checkpointing)
        # Means, so the gradients have the size of a real loss's (~1e-2) and 1e-6 is a meaningful tolerance.
        loss = (tf.reduce_mean(model.get_sequence_output() * weights) + tf.reduce_mean(model.get_pooled_output())
                + tf.reduce_mean(model.get_all_encoder_layers()[0] ** 2))
        grads = {v.op.name: tf.convert_to_tensor(g)
                 for v, g in zip(tf.trainable_variables(), tf.gradients(loss, tf.trainable_variables()))}
    return graph, loss, grads


def _evaluate(built, initial=None, seeds=None):
    """(loss, {name: gradient}, {name: initial value}); variables loaded from `initial`, dropout seeds fed."""
    graph, loss, grads = built
    with graph.as_default(), tf.Session(graph=graph) as session:
        session.run(tf.global_variables_initializer())
        variables = {v.op.name: v for v in tf.global_variables()}
        for name, value in (initial or {}).items():
            variables[name].load(value, session)
        values = session.run(variables)
        feed = {graph.get_tensor_by_name(f"bert/encoder/layer_{i}/dropout_seed:0"): seed
                for i, seed in enumerate(seeds or [])}
        loss_value, grad_values = session.run([loss, grads], feed)
    return loss_value, grad_values, values


def _max_difference(a, b):
    assert sorted(a) == sorted(b)
    return max(float(np.abs(a[name] - b[name]).max()) for name in a)


def assert_same_gradients(grads, expected):
    assert sorted(grads) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(grads[name], value, atol=1e-6, rtol=0, err_msg=name)


SEEDS = [np.array([11, 12], np.int64), np.array([21, 22], np.int64)]


def _without_recomputation(monkeypatch):
    """The checkpointed model's graph with the recomputing wrapper replaced by a plain call: same stateless
    dropout, ordinary backpropagation through the kept activations."""
    monkeypatch.setattr(modeling, "_recompute_in_backward_pass", lambda f: f)


def test_dropout_off_gradients_equal_the_plain_model():
    plain_loss, plain_grads, initial = _evaluate(_build(False, 0.0))
    built = _build(True, 0.0)
    loss, grads, _ = _evaluate(built, initial)
    np.testing.assert_allclose(loss, plain_loss, atol=1e-5, rtol=0)
    assert_same_gradients(grads, plain_grads)
    # The backward pass really recomputes: the checkpointed graph has the layers' products twice more.
    def matmuls(graph):
        return sum(op.type in ("MatMul", "BatchMatMulV2") for op in graph.get_operations())
    assert matmuls(built[0]) > matmuls(_build(False, 0.0)[0])


@pytest.mark.slow
def test_dropout_on_recomputation_uses_the_forward_masks(monkeypatch):
    loss, grads, initial = _evaluate(_build(True, 0.3), seeds=SEEDS)
    with monkeypatch.context() as patch:
        _without_recomputation(patch)
        reference_loss, reference_grads, _ = _evaluate(_build(True, 0.3), initial, seeds=SEEDS)
    np.testing.assert_allclose(loss, reference_loss, rtol=1e-6)
    assert_same_gradients(grads, reference_grads)
    # Dropout is on, and the masks follow the seeds.
    no_dropout_loss, _, _ = _evaluate(_build(False, 0.0), initial)
    other_loss, _, _ = _evaluate(_build(True, 0.3), initial, seeds=[s + 1 for s in SEEDS])
    assert abs(loss - no_dropout_loss) > 1e-5 and abs(loss - other_loss) > 1e-5


def test_recomputation_runs_in_the_backward_pass():
    """In the executed step (after Grappler) layer 0 is recomputed only after layer 1 was recomputed and
    backpropagated; a recomputation free to run during the forward pass would save no memory."""
    graph, _, grads = _build(True, 0.0)
    with graph.as_default(), tf.Session(graph=graph) as session:
        session.run(tf.global_variables_initializer())
        metadata = tf.RunMetadata()
        session.run(grads, options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE), run_metadata=metadata)
    spans = {node.node_name: (node.all_start_micros, node.all_start_micros + node.all_end_rel_micros)
             for device in metadata.step_stats.dev_stats for node in device.node_stats}

    def recomputed_softmax(layer):
        [name] = [n for n in spans if n.startswith(f"gradients/bert/encoder/layer_{layer}/IdentityN_grad/")
                  and n.endswith("/attention/self/Softmax")]
        return spans[name]

    forward_ends = max(end for name, (_, end) in spans.items() if name.startswith("bert/encoder/layer_1/"))
    assert recomputed_softmax(1)[0] >= forward_ends
    assert recomputed_softmax(0)[0] >= recomputed_softmax(1)[1]


@pytest.mark.slow
def test_a_recomputation_drawing_new_masks_is_caught(monkeypatch):
    """The check above fails for a layer whose dropout draws new masks when recomputed (the silent bug)."""
    stateless_dropout = tf.nn.experimental.stateless_dropout

    def run_with_fresh_masks(recompute):
        calls = itertools.count()

        def fresh_mask_dropout(x, rate, seed, **kwargs):  # every call, including the recomputation, new numbers
            return stateless_dropout(x, rate=rate, seed=tf.random.experimental.stateless_fold_in(seed, next(calls)),
                                     **kwargs)

        with monkeypatch.context() as patch:
            patch.setattr(tf.nn.experimental, "stateless_dropout", fresh_mask_dropout)
            if not recompute:
                _without_recomputation(patch)
            return _evaluate(_build(True, 0.3), initial, seeds=SEEDS)

    _, _, initial = _evaluate(_build(False, 0.0))
    loss, grads, _ = run_with_fresh_masks(recompute=True)
    reference_loss, reference_grads, _ = run_with_fresh_masks(recompute=False)
    np.testing.assert_allclose(loss, reference_loss, rtol=1e-6)  # the forward passes agree...
    assert _max_difference(grads, reference_grads) > 1e-3  # ...the gradients do not


def test_variables_and_checkpoints_are_unchanged(tmp_path):
    def variables(graph):
        with graph.as_default():
            return [(v.op.name, v.shape.as_list()) for v in tf.global_variables()]

    plain, checkpointed = _build(False, 0.1), _build(True, 0.1)
    assert variables(checkpointed[0]) == variables(plain[0])
    with checkpointed[0].as_default(), tf.Session() as session:
        session.run(tf.global_variables_initializer())
        path = tf.train.Saver().save(session, str(tmp_path / "model.ckpt"))
        saved = session.run({v.op.name: v for v in tf.global_variables()})
    with plain[0].as_default(), tf.Session() as session:
        tf.train.Saver().restore(session, path)
        restored = session.run({v.op.name: v for v in tf.global_variables()})
    assert _max_difference(saved, restored) == 0.0


def _op_names(is_training=True, **keywords):
    ids, mask, _ = _inputs()
    with tf.Graph().as_default() as graph:
        modeling.BertModel(_config(0.1), is_training, tf.constant(ids), tf.constant(mask), **keywords)
        return [op.name for op in graph.get_operations()]


def test_bert_model_checkpoints_only_when_asked_and_training():
    def seeded(names):
        return any(name.endswith("/dropout_seed") for name in names)

    plain = _op_names()
    assert not seeded(plain)
    assert _op_names(gradient_checkpointing=False) == plain  # the default: the original's graph, op for op
    assert seeded(_op_names(gradient_checkpointing=True))
    assert not seeded(_op_names(is_training=False, gradient_checkpointing=True))


def _train(checkpointing, config=None, **optimizer_arguments):
    """Two updates of a tiny BERT (dropout off) through create_optimizer; the trained variables."""
    ids, mask, weights = _inputs()
    with tf.Graph().as_default():
        tf.set_random_seed(3)
        ids_in = tf.placeholder(tf.int32, [None, SEQ])
        mask_in = tf.placeholder(tf.int32, [None, SEQ])
        model = modeling.BertModel(_config(0.0), is_training=True, input_ids=ids_in, input_mask=mask_in,
                                   gradient_checkpointing=checkpointing)
        loss = tf.reduce_mean(tf.reduce_sum(model.get_sequence_output() * weights[:1], axis=[1, 2]))
        train_op = optimization.create_optimizer(loss, 1e-2, 10, 1, False, **optimizer_arguments)
        steps = optimizer_arguments.get("num_accumulation_steps", 1)
        with tf.Session(config=config) as session:
            session.run([tf.global_variables_initializer(), tf.local_variables_initializer()])
            for run in range(2 * steps):
                rows = [run % BATCH] if steps > 1 else list(range(BATCH))
                session.run(train_op, {ids_in: ids[rows], mask_in: mask[rows]})
            assert session.run(tf.train.get_global_step()) == 2
            return session.run({v.op.name: v for v in tf.trainable_variables()})


@pytest.mark.slow
@pytest.mark.parametrize("arguments", [dict(num_accumulation_steps=3, loss_scaling=True),
                                       dict(num_accumulation_steps=3, optimizer="lamb")])
def test_training_with_accumulation_loss_scaling_and_lamb_equals_the_plain_model(arguments):
    checkpointed, plain = _train(True, **arguments), _train(False, **arguments)
    assert sorted(checkpointed) == sorted(plain)
    for name, value in plain.items():
        np.testing.assert_allclose(checkpointed[name], value, atol=1e-5, rtol=0, err_msg=name)


@pytest.mark.slow
def test_training_in_bf16_follows_the_plain_model():
    config = performance.session_config(PerformanceSettings(precision="bf16"))
    checkpointed, plain = _train(True, config), _train(False, config)
    assert all(np.isfinite(value).all() for value in checkpointed.values())
    # bfloat16 rounding (where this CPU runs it) differs between the two graphs only at bfloat16 precision.
    assert sorted(checkpointed) == sorted(plain)
    for name, value in plain.items():
        np.testing.assert_allclose(checkpointed[name], value, atol=2e-2, rtol=0, err_msg=name)
