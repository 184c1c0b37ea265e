"""The benchmark's arithmetic (FLOPs), its measurements on a tiny model, the original-code loader and the script."""

import os
import subprocess
import sys
import types

import pytest
import tensorflow.compat.v1 as tf
from tensorflow.python.framework import ops as ops_lib

import original_code
import throughput
from bert.classifier import model as classifier_model
from bert.runtime.performance import PerformanceSettings
from helpers import REPO_ROOT

SEQ_LENGTH = 16


def _profiled_matmul_flops(config, seq_length):
    """FLOPs TensorFlow's own op statistics give the matrix products of the classifier's graph, one example."""
    with tf.Graph().as_default() as graph:
        ids = tf.zeros([1, seq_length], tf.int32)
        classifier_model.create_model(config, False, ids, tf.ones_like(ids), ids, tf.zeros([1], tf.int32),
                                      throughput.NUM_LABELS, use_one_hot_embeddings=False)
        return sum(ops_lib.get_stats_for_node_def(graph, op.node_def, "flops").value
                   for op in graph.get_operations() if op.type in ("MatMul", "BatchMatMulV2"))


@pytest.mark.parametrize("preset", ["tiny", "minilm_l6_h384"])
def test_forward_flops_equal_tensorflows_count_of_the_graphs_products(preset):
    config = throughput.preset_config(preset)
    assert throughput.forward_flops_per_example(config, SEQ_LENGTH) == _profiled_matmul_flops(config, SEQ_LENGTH)


def test_bert_base_forward_flops_are_the_known_figure():
    # BERT-Base at 128 tokens: about 11.2 G multiply-adds per example.
    flops = throughput.forward_flops_per_example(throughput.preset_config("base"), 128)
    assert flops == pytest.approx(22.35e9, rel=1e-3)
    assert throughput.training_flops_per_example(throughput.preset_config("base"), 128) == 3 * flops


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        throughput.preset_config("huge")


@pytest.mark.parametrize("settings", [PerformanceSettings(), PerformanceSettings(num_accumulation_steps=2)])
def test_measurements_on_a_tiny_model(settings):
    config = throughput.preset_config("tiny")
    training = throughput.measure_training(config, 8, SEQ_LENGTH, settings, num_runs=2, num_warmup_runs=1)
    inference = throughput.measure_inference(config, 8, SEQ_LENGTH, settings, num_runs=2, num_warmup_runs=1)
    assert training.examples_per_second > 0 and inference.examples_per_second > 0
    # A run is one micro-batch: 8 examples per update, split into num_accumulation_steps runs.
    per_run = 8 // settings.num_accumulation_steps
    assert training.examples_per_second == pytest.approx(per_run / training.seconds_per_run)
    assert training.flops_per_second == pytest.approx(
        training.examples_per_second * 3 * throughput.forward_flops_per_example(config, SEQ_LENGTH))


def test_batch_that_does_not_split_is_refused():
    with pytest.raises(ValueError, match="batch_size 8 cannot be split into 3 micro-batches"):
        throughput.measure_training(throughput.preset_config("tiny"), 8, SEQ_LENGTH,
                                   PerformanceSettings(num_accumulation_steps=3))


def test_matmul_peak_is_a_plausible_rate():
    peak = throughput.measure_matmul_peak(size=256, num_runs=2, num_warmup_runs=1)
    assert 1e8 < peak < 1e15


_FAKE_ORIGINAL_MODELING = '''
import tensorflow as tf

class BertModel(object):
  def __init__(self, config, is_training, input_ids, input_mask=None, token_type_ids=None,
               use_one_hot_embeddings=False):
    table = tf.get_variable("embeddings", [config.vocab_size, config.hidden_size])
    hidden = tf.contrib.layers.layer_norm(inputs=tf.gather(table, input_ids), begin_norm_axis=-1,
                                          begin_params_axis=-1, scope="LayerNorm")
    self.pooled = hidden[:, 0]

  def get_pooled_output(self):
    return self.pooled
'''

_FAKE_ORIGINAL_OPTIMIZATION = '''
import tensorflow as tf

def create_optimizer(loss, init_lr, num_train_steps, num_warmup_steps, use_tpu):
  return tf.train.GradientDescentOptimizer(init_lr).minimize(loss, tf.train.get_or_create_global_step())
'''


@pytest.mark.needs_tf215  # the original's code (TPUEstimator, tf.layers) or tf.estimator
def test_original_code_loads_with_tf1_names_and_is_measured(tmp_path):
    (tmp_path / "modeling.py").write_text(_FAKE_ORIGINAL_MODELING)
    (tmp_path / "optimization.py").write_text(_FAKE_ORIGINAL_OPTIMIZATION)
    original = throughput.load_original(str(tmp_path))
    assert original.name == "original" and not original.is_ours
    assert sys.modules["tensorflow"] is not original.modeling.tf  # the real module is back
    assert original.modeling.tf.contrib.layers.layer_norm
    measured = throughput.measure_training(throughput.preset_config("tiny"), 4, SEQ_LENGTH, PerformanceSettings(),
                                          num_runs=1, num_warmup_runs=0, implementation=original)
    assert measured.examples_per_second > 0
    with pytest.raises(ValueError, match="original implementation has no gradient accumulation"):
        throughput.measure_training(throughput.preset_config("tiny"), 4, SEQ_LENGTH,
                                   PerformanceSettings(num_accumulation_steps=2), implementation=original)


def test_missing_original_checkout_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="must be a checkout of google-research/bert"):
        throughput.load_original(str(tmp_path))


@pytest.mark.slow
def test_script_prints_a_table_row(tmp_path):
    output_json = tmp_path / "results.jsonl"
    command = [sys.executable, os.path.join(REPO_ROOT, "benchmarks", "benchmark.py"), "--preset=tiny",
               f"--max_seq_length={SEQ_LENGTH}", "--batch_size=4", "--num_runs=1", "--num_warmup_runs=0",
               "--matmul_size=128", f"--output_json={output_json}"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600,
                               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = [line for line in completed.stdout.splitlines() if line.startswith("| ours | tiny |")]
    assert len(rows) == 1 and rows[0].endswith("% |")
    assert '"train_examples_per_second"' in output_json.read_text()


def test_load_module_gives_the_file_a_stand_in_tensorflow_and_restores_the_real_one(tmp_path):
    (tmp_path / "uses_tf.py").write_text("import tensorflow as tf\nSEEN = tf.marker\n")
    stand_in = types.ModuleType("tensorflow")
    stand_in.marker = "stand-in"
    real = sys.modules["tensorflow"]
    module = original_code.load_module(str(tmp_path / "uses_tf.py"), "uses_tf_for_test", stand_in)
    assert module.SEEN == "stand-in"
    assert sys.modules["tensorflow"] is real
    with pytest.raises(FileNotFoundError, match="not a loadable Python file"):
        original_code.load_module(str(tmp_path / "missing.py"), "missing_for_test", stand_in)
