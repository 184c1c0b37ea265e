"""README's --precision and --use_xla claims, checked on the graphs run_classifier's training steps executed.

Each test runs the run_classifier command line (tests/traced_program.py adds a hook recording every training
step's partition graphs: the graphs after Grappler's mixed-precision rewrite, oneDNN's kernel choice and XLA's
clustering). A flag that was ignored leaves the float32 graph, and the test fails.
"""

import json
import os
import subprocess
import sys

import pytest
from task_data import write_mrpc_like

from bert import optimization
from helpers import REPO_ROOT, make_tiny_model_dir, needs_bfloat16_kernels

NUM_TRAIN = 16
TRAIN_BATCH_SIZE = 8
STEPS = NUM_TRAIN * 3 // TRAIN_BATCH_SIZE  # the default --num_train_epochs=3


@pytest.fixture(scope="module")
def tiny_job(tmp_path_factory):
    folder = tmp_path_factory.mktemp("traced_classifier")
    model_dir = make_tiny_model_dir(str(folder / "model"))
    data_dir = write_mrpc_like(folder / "data", num_train=NUM_TRAIN)
    return folder, model_dir, data_dir


def traced_run(tiny_job, name, *extra_flags):
    """Trains run_classifier with `extra_flags`; returns traced_program's report."""
    folder, model_dir, data_dir = tiny_job
    report = folder / f"{name}.json"
    command = [sys.executable, os.path.join(REPO_ROOT, "tests", "traced_program.py"), str(report),
               "bert.run_classifier", "--task_name=MRPC", "--do_train=true", f"--data_dir={data_dir}",
               f"--vocab_file={model_dir}/vocab.txt", f"--bert_config_file={model_dir}/bert_config.json",
               f"--init_checkpoint={model_dir}/bert_model.ckpt", "--max_seq_length=16",
               f"--train_batch_size={TRAIN_BATCH_SIZE}", f"--output_dir={folder / name}", *extra_flags]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_XLA_FLAGS", None)  # the program itself must switch XLA on
    completed = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert completed.returncode == 0, completed.stderr[-3000:]
    with open(report) as reader:
        result = json.load(reader)
    assert result["traced_steps"] == STEPS  # every training step was traced
    return result


def all_matmul_dtypes(report):
    return {dtype for dtypes in report["matmul_dtypes"].values() for dtype in dtypes}


@pytest.mark.slow
@needs_bfloat16_kernels
def test_bf16_runs_the_matrix_products_in_bfloat16(tiny_job):
    report = traced_run(tiny_job, "bf16", "--precision=bf16")
    assert report["matmul_dtypes"], "no matrix product in the executed graphs"
    assert all_matmul_dtypes(report) == {"DT_BFLOAT16"}, report["matmul_dtypes"]
    assert "loss_scale" not in report["local_variables"]  # loss scaling is for float16 only


@pytest.mark.slow
def test_fp16_rounds_through_float16_with_dynamic_loss_scaling(tiny_job):
    report = traced_run(tiny_job, "fp16", "--precision=fp16")
    # Without a GPU, the float16 rewrite is emulated: values are cast to float16 and back around float32 kernels.
    assert {"DT_FLOAT->DT_HALF", "DT_HALF->DT_FLOAT"} <= set(report["casts"]), report["casts"]
    assert report["local_variables"]["loss_scale_finite_steps"] == STEPS  # updated after every (finite) step
    assert report["local_variables"]["loss_scale"] == optimization.INITIAL_LOSS_SCALE


@pytest.mark.slow
def test_use_xla_compiles_xla_clusters_and_leaves_float32(tiny_job):
    report = traced_run(tiny_job, "xla", "--use_xla")
    assert {"_XlaCompile", "_XlaRun"} <= set(report["op_types"])
    # The contrast for the precision tests: without --precision the products and casts stay float32 (TensorFlow
    # 2.16+ compiles every product into the clusters, so none may run outside them).
    assert all_matmul_dtypes(report) <= {"DT_FLOAT"}
    assert not any("HALF" in cast or "BFLOAT16" in cast for cast in report["casts"])
    assert "loss_scale" not in report["local_variables"]
