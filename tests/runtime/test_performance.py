"""Opt-in performance settings: validation, mixed precision (rewrite, float32 islands, checkpoints), loss scaling,
XLA."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from helpers import needs_bfloat16_kernels
from task_data import script_command, tiny_options, write_mrpc_like

from bert import modeling, optimization
from bert.classifier import job as classifier_run
from bert.runtime import performance
from bert.runtime.options import RunSettings
from bert.runtime.outputs import read_key_value_results
from bert.runtime.performance import PerformanceSettings


@pytest.mark.parametrize("settings, use_tpu, message", [
    (dict(precision="fp8"), False, "precision must be one of fp32, fp16, bf16"),
    (dict(distribution_strategy="parameter_server"), False, "distribution_strategy must be one of"),
    (dict(num_accumulation_steps=0), False, "num_accumulation_steps must be an integer >= 1"),
    (dict(num_gpus=-1), False, "num_gpus must be >= 0"),
    (dict(precision="bf16"), True, "precision=bf16 is not available with use_tpu"),
    (dict(distribution_strategy="mirrored"), True, "TPUEstimator already spreads"),
])
def test_settings_validation(settings, use_tpu, message):
    with pytest.raises(ValueError, match=message):
        PerformanceSettings(**settings).validate(use_tpu)


@pytest.mark.parametrize("precision, has_units, warned", [
    ("bf16", False, True), ("bf16", True, False), ("bf16", None, False), ("fp32", False, False)])
def test_bf16_on_a_cpu_without_bfloat16_units_warns_once(monkeypatch, caplog, precision, has_units, warned):
    """Without AVX512_BF16/AMX, bf16 only converts and runs slower than fp32: one warning line says so."""
    monkeypatch.setattr(performance, "bfloat16_units", lambda: has_units)
    with caplog.at_level("WARNING"):
        PerformanceSettings(precision=precision).validate()
    messages = [record.getMessage() for record in caplog.records if "bfloat16 units" in record.getMessage()]
    assert len(messages) == (1 if warned else 0)
    if warned:
        assert "use precision=fp32" in messages[0] and "\n" not in messages[0]


def test_bfloat16_units_reads_the_cpu_flags():
    with open("/proc/cpuinfo", encoding="utf-8") as reader:
        flags = reader.read()
    assert performance.bfloat16_units() == ("avx512_bf16" in flags or "amx_bf16" in flags)


def test_defaults_leave_the_session_alone():
    assert performance.session_config(PerformanceSettings()) is None


@pytest.mark.needs_tf215
def test_defaults_leave_the_estimators_session_alone():
    from bert.runtime.estimator import make_run_config

    assert make_run_config(RunSettings(output_dir="/tmp/x")).session_config is None


def test_session_config_enables_the_rewrites():
    on = performance.rewriter_config_pb2.RewriterConfig.ON
    bf16 = performance.session_config(PerformanceSettings(precision="bf16"))
    assert bf16.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 == on
    assert bf16.allow_soft_placement
    fp16 = performance.session_config(PerformanceSettings(precision="fp16"))
    assert fp16.graph_options.rewrite_options.auto_mixed_precision == on
    xla = performance.session_config(PerformanceSettings(use_xla=True))
    assert xla.graph_options.optimizer_options.global_jit_level == tf.OptimizerOptions.ON_1
    assert "--tf_xla_cpu_global_jit" in os.environ["TF_XLA_FLAGS"].split()
    for name in ("TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_DENYLIST_ADD",
                 "TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_INFERLIST_REMOVE"):
        assert set(os.environ[name].split(",")) >= {"Softmax", "LogSoftmax"}


def _optimized_op_dtypes(config: tf.ConfigProto):
    """Builds and runs one training step of a tiny BERT; returns [(op type, node name, dtype)] after Grappler."""
    bert_config = modeling.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                      intermediate_size=37)
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        ids = tf.random.uniform([4, 16], maxval=99, dtype=tf.int32)
        model = modeling.BertModel(bert_config, is_training=True, input_ids=ids)
        logits = tf.matmul(model.get_pooled_output(), tf.get_variable("head", [32, 2]))
        loss = tf.reduce_mean(-tf.nn.log_softmax(logits)[:, 0])
        train_op = optimization.create_optimizer(loss, 1e-3, 10, 1, False)
        variable_dtypes = {v.dtype.base_dtype for v in tf.global_variables()}
        with tf.Session(config=config) as session:
            session.run(tf.global_variables_initializer())
            metadata = tf.RunMetadata()
            session.run(train_op, options=tf.RunOptions(output_partition_graphs=True), run_metadata=metadata)
    ops = [(node.op, node.name, tf.as_dtype(node.attr["T"].type)) for graph in metadata.partition_graphs
           for node in graph.node if "T" in node.attr]
    return ops, variable_dtypes


@needs_bfloat16_kernels
def test_bf16_rewrite_keeps_softmax_layer_norm_and_variables_in_float32():
    ops, variable_dtypes = _optimized_op_dtypes(performance.session_config(PerformanceSettings(precision="bf16")))
    assert variable_dtypes == {tf.float32, tf.int64}  # the weights (and the int64 global step)
    matmuls = [dtype for op, _, dtype in ops if "MatMul" in op]
    assert matmuls.count(tf.bfloat16) > len(matmuls) / 2, matmuls
    attention_softmax = [dtype for op, name, dtype in ops if op.endswith("Softmax") and "attention" in name]
    log_softmax = [dtype for op, _, dtype in ops if op.endswith("LogSoftmax")]
    assert attention_softmax and set(attention_softmax) == {tf.float32}, ops
    assert log_softmax and set(log_softmax) == {tf.float32}, ops
    layer_norm = [(op, name, dtype) for op, name, dtype in ops if "LayerNorm" in name and op in ("Mean", "Rsqrt")]
    assert layer_norm and all(dtype == tf.float32 for _, _, dtype in layer_norm), layer_norm


def test_fp32_graph_has_no_bfloat16():
    ops, _ = _optimized_op_dtypes(None)
    assert not [op for op in ops if op[2] in (tf.bfloat16, tf.float16)]


def _run_settings(output_dir, **settings):
    return RunSettings(output_dir=str(output_dir), seed=1,
                       performance=PerformanceSettings(**settings))


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_checkpoint_loads_in_float32_run(tiny_model_dir, tmp_path, precision):
    data_dir = write_mrpc_like(tmp_path / "data")
    out = tmp_path / "out"
    options = tiny_options(tiny_model_dir, data_dir, out, do_train=True, do_eval=True)
    options.run = _run_settings(out, precision=precision)
    mixed = classifier_run.run(options).eval_results
    assert np.isfinite(mixed["eval_loss"])
    checkpoint = tf.train.latest_checkpoint(str(out))
    reader = tf.train.load_checkpoint(checkpoint)
    dtypes = reader.get_variable_to_dtype_map()
    assert {name for name, dtype in dtypes.items() if dtype != tf.float32} == {"global_step"}
    assert not [name for name in dtypes if "loss_scale" in name]
    # A float32 run (default settings) evaluates the mixed-precision checkpoint, and agrees closely.
    plain = classifier_run.run(tiny_options(tiny_model_dir, data_dir, out, do_eval=True)).eval_results
    assert plain["global_step"] == mixed["global_step"] == 6
    np.testing.assert_allclose(plain["eval_loss"], mixed["eval_loss"], atol=0.02, rtol=0)


def _scaled_training_run(loss_fn, num_steps, growth_interval=None, monkeypatch=None):
    if growth_interval:
        monkeypatch.setattr(optimization, "LOSS_SCALE_GROWTH_INTERVAL", growth_interval)
    with tf.Graph().as_default():
        w = tf.get_variable("w", initializer=tf.constant([1.0, -2.0, 3.0]))
        train_op = optimization.create_optimizer(loss_fn(w), 0.1, 100, 0, False, loss_scaling=True)
        scale = [v for v in tf.local_variables() if v.op.name == "loss_scale"][0]
        with tf.Session() as session:
            session.run([tf.global_variables_initializer(), tf.local_variables_initializer()])
            scales = []
            for _ in range(num_steps):
                session.run(train_op)
                scales.append(session.run(scale))
            return session.run(w), session.run(tf.train.get_global_step()), scales


def test_loss_scaling_skips_overflowing_steps_and_halves_the_scale():
    w, step, scales = _scaled_training_run(lambda w: tf.reduce_sum(w) * 1e35, 2)
    np.testing.assert_array_equal(w, [1.0, -2.0, 3.0])
    assert step == 0
    assert scales == [2.0 ** 14, 2.0 ** 13]


def _quadratic_loss(w):
    return tf.reduce_sum(tf.square(w - 0.5))


def test_loss_scaling_gives_the_unscaled_update_and_grows(monkeypatch):
    w, step, scales = _scaled_training_run(_quadratic_loss, 5, growth_interval=2, monkeypatch=monkeypatch)
    with tf.Graph().as_default():
        v = tf.get_variable("w", initializer=tf.constant([1.0, -2.0, 3.0]))
        train_op = optimization.create_optimizer(_quadratic_loss(v), 0.1, 100, 0, False)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            for _ in range(5):
                session.run(train_op)
            expected = session.run(v)
    np.testing.assert_allclose(w, expected, rtol=1e-6)
    assert step == 5
    assert scales == [2.0 ** 15, 2.0 ** 16, 2.0 ** 16, 2.0 ** 17, 2.0 ** 17]


_XLA_CHILD = """
from bert.runtime import performance
from bert.runtime.performance import PerformanceSettings
import tensorflow.compat.v1 as tf
config = performance.session_config(PerformanceSettings(use_xla=True))
with tf.Graph().as_default():
    w = tf.get_variable("w", [16, 16])
    y = tf.reduce_sum(tf.tanh(tf.matmul(tf.ones([4, 16]), w)) * 2.0 + 1.0)
    with tf.Session(config=config) as session:
        session.run(tf.global_variables_initializer())
        metadata = tf.RunMetadata()
        session.run(y, options=tf.RunOptions(output_partition_graphs=True), run_metadata=metadata)
print(sorted({node.op for graph in metadata.partition_graphs for node in graph.node if "Xla" in node.op}))
"""


@pytest.mark.slow
def test_use_xla_compiles_clusters_on_cpu():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_XLA_FLAGS", None)
    completed = subprocess.run([sys.executable, "-c", _XLA_CHILD], capture_output=True, text=True, timeout=300,
                               env=env)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "_XlaCompile" in completed.stdout and "_XlaRun" in completed.stdout


@pytest.mark.slow
def test_script_runs_with_bf16_and_xla(tiny_model_dir, tmp_path):
    data_dir = write_mrpc_like(tmp_path / "data", num_train=8, num_dev=4, num_test=2)
    out = tmp_path / "out"
    command = script_command(tiny_model_dir, data_dir, out, "--do_train=true", "--do_eval=true",
                             "--max_seq_length=16", "--train_batch_size=4", "--num_train_epochs=1",
                             "--precision=bf16", "--use_xla=true")
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = read_key_value_results(str(out / "eval_results.txt"))
    assert int(results["global_step"]) == 2 and np.isfinite(float(results["eval_loss"]))
    bad = subprocess.run(command + ["--precision=fp8"], capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and "precision" in bad.stderr
