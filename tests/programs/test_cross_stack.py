"""The same program on both stacks: TensorFlow 2.15 (Estimator) and this one (2.16+, the session engine).

Runs on the TensorFlow 2.16+ stack, with the 2.15 stack's Python named by BERT_TF215_PYTHON (scripts/test.sh sets
it); both run on this machine, so results agree to float rounding between TensorFlow releases.
"""

import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from helpers import REPO_ROOT, make_tiny_model_dir, require
from task_data import write_mrpc_like, write_squad_data

from bert.classifier import data as classifier_data
from bert.runtime import export
from bert.runtime.outputs import read_key_value_results

pytestmark = [pytest.mark.slow, pytest.mark.needs_tf216]  # on the TensorFlow 2.16+ stack, against 2.15

TRAIN_EXAMPLES, BATCH = 48, 8  # 6 steps an epoch


@pytest.fixture(scope="module")
def tf215_python():
    python = os.environ.get("BERT_TF215_PYTHON", "")
    require(bool(python) and os.path.exists(python),
            "BERT_TF215_PYTHON, the Python of the TensorFlow 2.15 stack (scripts/test.sh sets it)")
    return python


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cross_stack")
    model_dir = make_tiny_model_dir(str(root / "model"), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    data_dir = write_mrpc_like(root / "data", num_train=TRAIN_EXAMPLES, num_test=9)
    return root, model_dir, data_dir


def run_classifier(python, model_dir, data_dir, output_dir, *flags):
    command = [python, os.path.join(REPO_ROOT, "scripts", "run_classifier.py"), "--task_name=MRPC",
               f"--data_dir={data_dir}", f"--vocab_file={model_dir}/vocab.txt",
               f"--bert_config_file={model_dir}/bert_config.json", f"--output_dir={output_dir}",
               "--max_seq_length=32", f"--train_batch_size={BATCH}", "--eval_batch_size=5", "--predict_batch_size=4",
               "--learning_rate=1e-3", "--seed=1", "--log_every_steps=1", *flags]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600,
                               env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stderr


@pytest.fixture(scope="module")
def trained_on_tf215(tf215_python, setup):
    """6 steps of training, evaluation, prediction and export on TensorFlow 2.15."""
    root, model_dir, data_dir = setup
    output_dir = root / "tf215"
    run_classifier(tf215_python, model_dir, data_dir, output_dir, f"--init_checkpoint={model_dir}/bert_model.ckpt",
                   "--do_train=true", "--do_eval=true", "--do_predict=true", f"--export_dir={root / 'serving215'}")
    return str(output_dir)


def assert_results_close(path, reference_path, atol=1e-5):
    results, reference = read_key_value_results(path), read_key_value_results(reference_path)
    assert results.keys() == reference.keys()
    for key in reference:
        np.testing.assert_allclose(float(results[key]), float(reference[key]), rtol=0, atol=atol, err_msg=key)


def test_both_stacks_evaluate_and_predict_a_checkpoint_alike(trained_on_tf215, setup, tmp_path):
    _, model_dir, data_dir = setup
    output_dir = tmp_path / "here"
    shutil.copytree(trained_on_tf215, output_dir)
    for name in ("eval_results.txt", "test_results.tsv"):
        os.remove(output_dir / name)
    run_classifier(sys.executable, model_dir, data_dir, output_dir, "--do_eval=true", "--do_predict=true")
    assert_results_close(output_dir / "eval_results.txt", os.path.join(trained_on_tf215, "eval_results.txt"))
    here = np.loadtxt(output_dir / "test_results.tsv", delimiter="\t")
    there = np.loadtxt(os.path.join(trained_on_tf215, "test_results.tsv"), delimiter="\t")
    assert here.shape == there.shape == (9, 2)
    np.testing.assert_allclose(here, there, rtol=0, atol=1e-5)


def test_a_saved_model_of_either_stack_serves_alike_here(trained_on_tf215, setup, tmp_path):
    root, model_dir, data_dir = setup
    # Export only: the weights of the 2.15 stack's checkpoint, through this stack's engine.
    run_classifier(sys.executable, model_dir, data_dir, tmp_path / "export_run", f"--init_checkpoint="
                   f"{tf.train.latest_checkpoint(trained_on_tf215)}", f"--export_dir={tmp_path / 'serving'}")
    input_ids = np.zeros([2, 32], np.int32)
    input_ids[:, :5] = [[2, 7, 9, 3, 0], [2, 11, 12, 13, 3]]
    inputs = {"input_ids": input_ids, "input_mask": (input_ids > 0).astype(np.int32),
              "segment_ids": np.zeros([2, 32], np.int32)}
    (theirs,), (ours,) = glob.glob(str(root / "serving215" / "*")), glob.glob(str(tmp_path / "serving" / "*"))
    np.testing.assert_allclose(export.predict_with_saved_model(ours, inputs)["probabilities"],
                               export.predict_with_saved_model(theirs, inputs)["probabilities"], rtol=0, atol=1e-5)


def test_raw_text_into_the_saved_model_of_tensorflow_2_15_serves_here(trained_on_tf215, setup):
    """The `text` signature (tokenization in the graph) of a SavedModel written by the 2.15 stack, run here."""
    root, _, data_dir = setup
    examples = classifier_data.MrpcProcessor().get_test_examples(data_dir)
    (saved_model,) = glob.glob(str(root / "serving215" / "*"))
    served = export.predict_with_saved_model(saved_model, {"text_a": [e.text_a for e in examples],
                                                           "text_b": [e.text_b for e in examples]},
                                             export.TEXT_SIGNATURE_KEY)["probabilities"]
    there = np.loadtxt(os.path.join(trained_on_tf215, "test_results.tsv"), delimiter="\t")
    np.testing.assert_allclose(served, there, rtol=0, atol=1e-5)


def test_questions_into_the_squad_saved_model_of_tensorflow_2_15_are_answered_here(tf215_python, setup, tmp_path):
    """A SQuAD 2.0 model trained, run and exported on 2.15: its `text` signature (windows, n-best and null score
    in the graph) answers here as run_squad answered there."""
    _, model_dir, _ = setup
    train_file = write_squad_data(tmp_path / "train.json", num_paragraphs=6, seed=0)
    predict_file = write_squad_data(tmp_path / "dev.json", num_paragraphs=3, seed=1)
    output_dir, export_dir = tmp_path / "tf215", tmp_path / "serving215"
    command = [tf215_python, os.path.join(REPO_ROOT, "scripts", "run_squad.py"), f"--vocab_file={model_dir}/vocab.txt",
               f"--bert_config_file={model_dir}/bert_config.json", f"--init_checkpoint={model_dir}/bert_model.ckpt",
               f"--output_dir={output_dir}", f"--train_file={train_file}", f"--predict_file={predict_file}",
               "--do_train=true", "--do_predict=true", "--version_2_with_negative=true", "--max_seq_length=48",
               "--doc_stride=16", "--max_query_length=10", f"--train_batch_size={BATCH}", "--learning_rate=1e-3",
               "--seed=1", f"--export_dir={export_dir}"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600,
                               env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    assert completed.returncode == 0, completed.stderr[-3000:]
    with open(predict_file, encoding="utf-8") as reader:
        questions = [(qa["id"], qa["question"], paragraph["context"]) for article in json.load(reader)["data"]
                     for paragraph in article["paragraphs"] for qa in paragraph["qas"]]
    (saved_model,) = glob.glob(str(export_dir / "*"))
    served = export.predict_with_saved_model(saved_model, {"question": [q for _, q, _ in questions],
                                                           "context": [c for _, _, c in questions]},
                                             export.TEXT_SIGNATURE_KEY)
    predictions = json.loads((output_dir / "predictions.json").read_text(encoding="utf-8"))
    null_odds = json.loads((output_dir / "null_odds.json").read_text(encoding="utf-8"))
    assert [answer.decode("utf-8") for answer in served["answer"]] == [predictions[qid] for qid, _, _ in questions]
    np.testing.assert_allclose(served["null_score_diff"], [null_odds[qid] for qid, _, _ in questions], rtol=0,
                               atol=1e-4)


def training_losses(output_dir):
    losses = {}
    for path in glob.glob(os.path.join(output_dir, "events.out.tfevents.*")):
        for event in tf.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == "train/loss":
                    losses[event.step] = value.simple_value
    return [losses[step] for step in sorted(losses)]


def test_twenty_training_steps_give_the_same_losses_on_both_stacks(tf215_python, trained_on_tf215, setup, tmp_path):
    _, model_dir, data_dir = setup
    # Every weight, the classifier's too, from one checkpoint: nothing depends on how each stack seeds initialisers.
    flags = (f"--init_checkpoint={tf.train.latest_checkpoint(trained_on_tf215)}", "--do_train=true",
             "--num_train_epochs=3.34")  # int(48 / 8 * 3.34) = 20 steps
    run_classifier(tf215_python, model_dir, data_dir, tmp_path / "tf215", *flags)
    run_classifier(sys.executable, model_dir, data_dir, tmp_path / "here", *flags)
    theirs, ours = training_losses(str(tmp_path / "tf215")), training_losses(str(tmp_path / "here"))
    assert len(theirs) == len(ours) == 20
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)


@pytest.mark.parametrize("first", ["tf215", "here"])
def test_a_run_of_one_stack_is_continued_by_the_other(tf215_python, setup, tmp_path, first):
    _, model_dir, data_dir = setup
    pythons = {"tf215": tf215_python, "here": sys.executable}
    second = pythons[[name for name in pythons if name != first][0]]
    output_dir = tmp_path / "out"
    init = f"--init_checkpoint={model_dir}/bert_model.ckpt"
    run_classifier(pythons[first], model_dir, data_dir, output_dir, init, "--do_train=true", "--num_train_epochs=1")
    log = run_classifier(second, model_dir, data_dir, output_dir, init, "--do_train=true", "--do_eval=true",
                         "--num_train_epochs=2")
    assert "training resumes from it" in log
    assert int(read_key_value_results(str(output_dir / "eval_results.txt"))["global_step"]) == 12
    assert len(training_losses(str(output_dir))) == 12
