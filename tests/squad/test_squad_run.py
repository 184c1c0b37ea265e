"""run_squad end to end on a tiny random BERT: train + predict through the script, and its flag errors."""

import json
import os
import subprocess
import sys

import pytest
import tensorflow.compat.v1 as tf
from task_data import squad_options, write_squad_data

from bert.runtime import input_pipeline
from bert.runtime.specs import estimator_available
from bert.squad import data as squad
from bert.squad import evaluation as squad_evaluation
from bert.squad import job as squad_run
from helpers import REPO_ROOT

SCRIPT = os.path.join(REPO_ROOT, "scripts", "run_squad.py")
def script_flags(model_dir, output_dir, **flags):
    values = dict(vocab_file=os.path.join(model_dir, "vocab.txt"),
                  bert_config_file=os.path.join(model_dir, "bert_config.json"),
                  init_checkpoint=os.path.join(model_dir, "bert_model.ckpt"), output_dir=str(output_dir),
                  max_seq_length=48, doc_stride=16, max_query_length=10)
    values.update(flags)
    return [f"--{name}={value}" for name, value in values.items()]


def run_script(args):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_script_trains_and_predicts_squad_2(tiny_model_dir, tmp_path):
    train_file = write_squad_data(tmp_path / "train.json", num_paragraphs=4, seed=0)
    predict_file = write_squad_data(tmp_path / "dev.json", num_paragraphs=2, seed=1)
    out = tmp_path / "out"
    completed = run_script(script_flags(
        tiny_model_dir, out, do_train=True, do_predict=True, train_file=train_file, predict_file=predict_file,
        version_2_with_negative=True, train_batch_size=4, num_train_epochs=2, learning_rate=1e-3,
        predict_batch_size=3, n_best_size=5, seed=1))
    assert completed.returncode == 0, completed.stderr[-3000:]

    # 20 training questions, shuffled; 2 epochs at batch 4 -> 10 steps.
    assert tf.train.latest_checkpoint(str(out)).endswith("model.ckpt-10")
    rows = input_pipeline.read_tfrecord(str(out / "train.tf_record"), squad.feature_spec(48, is_training=True))
    assert len(rows) >= 20
    for row in rows:
        start, end = int(row["start_positions"]), int(row["end_positions"])
        if row["is_impossible"]:
            assert (start, end) == (0, 0)
        assert 0 <= start <= end < int(row["input_mask"].sum())

    predictions = json.loads((out / "predictions.json").read_text())
    nbest = json.loads((out / "nbest_predictions.json").read_text())
    null_odds = json.loads((out / "null_odds.json").read_text())
    expected_ids = [f"p{p}{q}" for p in range(2) for q in ("q0", "q1", "q2", "q3", "none")]
    assert list(predictions) == list(nbest) == list(null_odds) == expected_ids
    for qid, entries in nbest.items():
        assert 1 <= len(entries) <= 6  # n_best_size plus the null entry
        assert "" in [e["text"] for e in entries]
        assert sum(e["probability"] for e in entries) == pytest.approx(1.0)
    results = squad_evaluation.evaluate_files(predict_file, str(out / "predictions.json"),
                                              str(out / "null_odds.json"))
    assert results["total"] == 10 and "best_f1_thresh" in results


@pytest.mark.slow
def test_script_trains_with_accumulation_and_a_strategy_predicts_and_exports(tiny_model_dir, tmp_path):
    train_file = write_squad_data(tmp_path / "train.json", num_paragraphs=2, seed=0)
    predict_file = write_squad_data(tmp_path / "dev.json", num_paragraphs=1, seed=1)
    out, serving = tmp_path / "out", tmp_path / "serving"
    # mirrored over this machine's one CPU device: the tf.distribute Estimator path for every phase (the Estimator
    # engine only: TensorFlow 2.15)
    strategy = {"distribution_strategy": "mirrored"} if estimator_available() else {}
    completed = run_script(script_flags(
        tiny_model_dir, out, do_train=True, train_file=train_file, do_predict=True, predict_file=predict_file,
        version_2_with_negative=True, train_batch_size=4, num_train_epochs=1, num_accumulation_steps=2,
        export_dir=serving, **strategy))
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert len(json.loads((out / "predictions.json").read_text())) == 5
    # 10 questions at train_batch_size 4 are 2 updates, each of 2 micro-batches of 2.
    assert tf.train.latest_checkpoint(str(out)).endswith("model.ckpt-2")
    (version,) = os.listdir(serving)
    assert (serving / version / "saved_model.pb").exists()


def test_script_rejects_max_seq_length_too_small_for_query(tiny_model_dir, tmp_path):
    predict_file = write_squad_data(tmp_path / "dev.json", num_paragraphs=1, seed=1)
    completed = run_script(script_flags(tiny_model_dir, tmp_path / "out", do_predict=True,
                                        predict_file=predict_file, max_seq_length=20, max_query_length=17))
    assert completed.returncode != 0
    assert "max_seq_length (20) must be greater than max_query_length (17) + 3" in completed.stderr


@pytest.mark.parametrize("overrides,message", [
    (dict(), "At least one of `do_train` or `do_predict`"),
    (dict(do_train=True), "`train_file` must be specified"),
    (dict(do_predict=True), "`predict_file` must be specified"),
    (dict(do_predict=True, predict_file="x.json", max_seq_length=100), "max_position_embeddings=64"),
    (dict(do_predict=True, predict_file="x.json", max_seq_length=40, max_query_length=37),
     r"max_seq_length \(40\) must be greater than max_query_length \(37\) \+ 3"),
])
def test_invalid_options_fail_before_any_work(tiny_model_dir, tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        squad_run.run(squad_options(tiny_model_dir, tmp_path / "out", **overrides))
    assert not (tmp_path / "out").exists()


def test_training_file_with_no_usable_question_is_an_error(tiny_model_dir, tmp_path):
    train_file = tmp_path / "train.json"
    train_file.write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": [
        {"context": "the dog", "qas": [{"id": "x", "question": "?",
                                        "answers": [{"text": "cat", "answer_start": 0}]}]}]}]}))
    with pytest.raises(ValueError, match="has no training examples"):
        squad_run.run(squad_options(tiny_model_dir, tmp_path / "out", do_train=True, train_file=str(train_file)))
