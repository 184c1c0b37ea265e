"""Data-parallel training: MirroredStrategy on two logical CPU devices and MultiWorkerMirroredStrategy on two
worker processes (in subprocesses, which own their devices)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from helpers import REPO_ROOT

from bert.runtime import performance
from bert.runtime.performance import PerformanceSettings

pytestmark = pytest.mark.needs_tf215  # tf.distribute strategies run on the Estimator engine only

# Both children train a tiny BERT classifier (dropout off, fixed data order, same initial checkpoint) for 3 updates
# of a global batch of 16 with `train(name, **performance_settings)`; argv: repository, work folder.
_IMPORTS = r"""
import json, os, sys
import numpy as np
import tensorflow.compat.v1 as tf
"""
_SPLIT_CPU = r"""
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)
"""
_TRAINING = r"""
sys.path.insert(0, os.path.join(sys.argv[1], "tests"))
from helpers import make_tiny_model_dir
from task_data import tiny_options, write_mrpc_like
from bert import modeling, optimization
from bert.classifier import job as classifier_run
from bert.runtime.engine import make_estimator
from bert.runtime.options import RunSettings
from bert.runtime import specs
from bert.runtime.performance import PerformanceSettings

work = sys.argv[2]
model_dir = os.path.join(work, "model")
if not os.path.exists(model_dir):
    make_tiny_model_dir(model_dir, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
config = modeling.BertConfig.from_json_file(os.path.join(model_dir, "bert_config.json"))
rng = np.random.RandomState(0)
data = dict(input_ids=rng.randint(5, 60, (64, 16)).astype(np.int32), input_mask=np.ones((64, 16), np.int32),
            label_ids=rng.randint(0, 2, 64).astype(np.int32))

def input_fn(params):
    return tf.data.Dataset.from_tensor_slices(data).repeat().batch(params["batch_size"], drop_remainder=True)

def model_fn(features, labels, mode, params):
    settings = specs.run_params(params).performance  # what make_estimator hands a model_fn
    model = modeling.BertModel(config, is_training=True, input_ids=features["input_ids"],
                               input_mask=features["input_mask"],
                               gradient_checkpointing=settings.gradient_checkpointing)
    head = tf.get_variable("head", [32, 2], initializer=tf.truncated_normal_initializer(stddev=0.02, seed=5))
    logits = tf.matmul(model.get_pooled_output(), head)
    loss = tf.losses.sparse_softmax_cross_entropy(features["label_ids"], logits)
    init = os.path.join(model_dir, "bert_model.ckpt")
    tf.train.init_from_checkpoint(init, {"bert/": "bert/"})
    train_op = optimization.create_optimizer(loss, 1e-3, 10, 2, False,
                                             num_accumulation_steps=settings.num_accumulation_steps)
    return tf.estimator.tpu.TPUEstimatorSpec(mode=mode, loss=loss, train_op=train_op)

def fit(name, **settings):
    out = os.path.join(work, name)
    run = RunSettings(output_dir=out, seed=1, performance=PerformanceSettings(**settings))
    estimator = make_estimator(model_fn, run, train_batch_size=16, eval_batch_size=8,
                                               predict_batch_size=8)
    estimator.train(input_fn, max_steps=3)
    return out

def train(name, **settings):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(fit(name, **settings)))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}

"""

# On two logical CPU devices: one device, then MirroredStrategy with and without accumulation, then the classifier
# runner end to end; prints the largest weight differences from the one-device run.
_MIRRORED_CHILD = _IMPORTS + _SPLIT_CPU + _TRAINING + r"""
single = train("single")
report = {"replicas": make_estimator(
    model_fn, RunSettings(output_dir=os.path.join(work, "x"),
                                          performance=PerformanceSettings(distribution_strategy="mirrored")),
    train_batch_size=16).config.train_distribute.num_replicas_in_sync}
for name, settings in [("mirrored", dict(distribution_strategy="mirrored")),
                       ("mirrored_accumulated", dict(distribution_strategy="mirrored", num_accumulation_steps=2)),
                       ("mirrored_checkpointed", dict(distribution_strategy="mirrored", num_accumulation_steps=2,
                                                      gradient_checkpointing=True))]:
    values = train(name, **settings)
    report[name] = {"names_match": sorted(values) == sorted(single),
                    "global_step": int(values["global_step"]),
                    "max_difference": max(float(np.abs(values[k] - single[k]).max()) for k in single)}
initial = tf.train.load_variable(os.path.join(model_dir, "bert_model.ckpt"), "bert/embeddings/word_embeddings")
report["single_trained"] = float(np.abs(single["bert/embeddings/word_embeddings"] - initial).max()) > 1e-4

# The classifier runner end to end with the strategy: train (2 replicas), then evaluate and predict on one device.
data_dir = write_mrpc_like(os.path.join(work, "mrpc"), num_train=16, num_dev=5, num_test=3)
options = tiny_options(model_dir, data_dir, os.path.join(work, "classifier"), do_train=True, do_eval=True,
                       do_predict=True)
options.run.performance = PerformanceSettings(distribution_strategy="mirrored")
results = classifier_run.run(options)
report["classifier_global_step"] = int(results.eval_results["global_step"])
report["classifier_predictions"] = len(open(results.predictions_file).read().splitlines())
print("REPORT " + json.dumps(report))
"""


# One worker of a TF_CONFIG cluster (one CPU device each), training with MultiWorkerMirroredStrategy.
_WORKER_CHILD = _IMPORTS + _TRAINING + r"""
fit("multi_worker", distribution_strategy="multi_worker_mirrored")
"""


def _child_environment(**variables):
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", **variables)


@pytest.fixture(scope="module")
def mirrored_report(tmp_path_factory):
    work = str(tmp_path_factory.mktemp("mirrored"))
    completed = subprocess.run([sys.executable, "-c", _MIRRORED_CHILD, REPO_ROOT, work], capture_output=True,
                               text=True, timeout=900, env=_child_environment())
    assert completed.returncode == 0, completed.stderr[-5000:]
    line = [line for line in completed.stdout.splitlines() if line.startswith("REPORT ")][-1]
    return dict(json.loads(line[len("REPORT "):]), work=work)


@pytest.mark.slow
def test_mirrored_uses_both_logical_devices(mirrored_report):
    assert mirrored_report["replicas"] == 2
    assert mirrored_report["single_trained"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mirrored", "mirrored_accumulated", "mirrored_checkpointed"])
def test_mirrored_training_equals_single_device_with_the_global_batch(mirrored_report, name):
    result = mirrored_report[name]
    assert result["names_match"]  # same checkpoint variables: no accumulators, no per-replica copies
    assert result["global_step"] == 3
    assert result["max_difference"] < 1e-5


@pytest.mark.slow
def test_classifier_runs_with_mirrored_strategy(mirrored_report):
    # 16 examples at train_batch_size 8: 2 updates, each over 2 replicas of 4 examples.
    assert mirrored_report["classifier_global_step"] == 2
    assert mirrored_report["classifier_predictions"] == 3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_multi_worker_training_equals_single_device_with_the_global_batch(mirrored_report, tmp_path):
    """Two worker processes on this machine, each reading its shard of the batches, as on a real cluster."""
    work = mirrored_report["work"]
    cluster = {"worker": [f"localhost:{_free_port()}", f"localhost:{_free_port()}"]}
    workers = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        log = open(tmp_path / f"worker{index}.log", "w")  # files, not pipes: a full pipe would stall the cluster
        workers.append((subprocess.Popen([sys.executable, "-c", _WORKER_CHILD, REPO_ROOT, work], stdout=log,
                                         stderr=subprocess.STDOUT, env=_child_environment(TF_CONFIG=tf_config)), log))
    for index, (worker, log) in enumerate(workers):
        worker.wait(timeout=600)
        log.close()
        assert worker.returncode == 0, (tmp_path / f"worker{index}.log").read_text()[-5000:]
    single = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(work, "single")))
    chief = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(work, "multi_worker")))
    names = single.get_variable_to_shape_map()
    assert names == chief.get_variable_to_shape_map()
    assert chief.get_tensor("global_step") == 3
    for name in names:
        np.testing.assert_allclose(chief.get_tensor(name), single.get_tensor(name), atol=1e-5, err_msg=name)


def test_too_many_gpus_is_a_clear_error():
    with pytest.raises(ValueError, match="num_gpus=64 but only"):
        performance.make_distribution_strategy(PerformanceSettings(distribution_strategy="mirrored", num_gpus=64))


def test_no_strategy_without_distribution():
    assert performance.make_distribution_strategy(PerformanceSettings()) is None
