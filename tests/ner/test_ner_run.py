"""run_ner end to end on a tiny random BERT: train/eval/predict files, predict-only reuse of the labels, export,
and bad inputs through the command line (one `error:` line, no traceback)."""

import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO_ROOT
from task_data import write_conll, write_ner_data

from bert.common.errors import UserError
from bert.ner import job as ner_run
from bert.runtime import checkpoints, export
from bert.runtime.options import RunSettings
from bert.runtime.specs import estimator_available
from bert.runtime.outputs import read_key_value_results
from bert.runtime.performance import PerformanceSettings

SCRIPT = os.path.join(REPO_ROOT, "scripts", "run_ner.py")
def tiny_options(model_dir, data_dir, output_dir, performance=None, **overrides):
    values = dict(data_dir=data_dir, bert_config_file=os.path.join(model_dir, "bert_config.json"),
                  vocab_file=os.path.join(model_dir, "vocab.txt"), output_dir=str(output_dir),
                  init_checkpoint=os.path.join(model_dir, "bert_model.ckpt"), max_seq_length=16, doc_stride=5,
                  train_batch_size=8, eval_batch_size=5, predict_batch_size=4, num_train_epochs=3.0,
                  learning_rate=2e-3)
    values.update(overrides)
    run = RunSettings(output_dir=str(output_dir), seed=1, performance=performance or PerformanceSettings())
    return ner_run.NerOptions(run=run, **values)


def read_prediction_lines(path):
    sentences, current = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                current.append(line.rstrip("\n").split("\t"))
            else:
                sentences.append(current)
                current = []
    return sentences


@pytest.mark.slow
def test_tiny_train_eval_predict_export(tiny_model_dir, tmp_path):
    data_dir, test_sentences = write_ner_data(tmp_path / "data")
    out = tmp_path / "out"
    results = ner_run.run(tiny_options(tiny_model_dir, data_dir, out, do_train=True, do_eval=True,
                                       do_predict=True, export_dir=str(tmp_path / "export")))

    written = read_key_value_results(str(out / "eval_results.txt"))
    for key in ("eval_precision", "eval_recall", "eval_f1", "eval_token_accuracy", "eval_f1_animal",
                "eval_f1_place", "global_step"):
        assert key in written, key
    train_windows = 40  # every training sentence fits one window of 16
    assert int(written["global_step"]) == int(train_windows / 8 * 3.0)
    # The task is a word lookup; a few steps at a high learning rate learn most of it.
    assert float(written["eval_token_accuracy"]) > 0.6

    predicted = read_prediction_lines(results.predictions_file)
    assert len(predicted) == len(test_sentences)
    for lines, (words, gold) in zip(predicted, test_sentences):
        assert [line[0] for line in lines] == words  # every word once, in order, also in the long sentence
        assert [line[1] for line in lines] == gold
        tags = [line[2] for line in lines]
        for previous, tag in zip(["O"] + tags, tags):  # valid BIO: an I- continues its own type
            if tag.startswith("I-"):
                assert previous[2:] == tag[2:], (previous, tag)
    assert set(results.test_results) == set(written)

    outputs = export.predict_with_saved_model(results.saved_model_dir, {
        "input_ids": np.ones([2, 16], np.int32), "input_mask": np.ones([2, 16], np.int32),
        "segment_ids": np.zeros([2, 16], np.int32)})
    assert outputs["probabilities"].shape == (2, 16, 5)  # O + B/I of two types
    np.testing.assert_allclose(outputs["probabilities"].sum(-1), 1.0, atol=1e-5)

    # Predict-only into the same output_dir reuses the saved label ids: the same predictions, no training file.
    os.remove(os.path.join(data_dir, "train.txt"))
    first = open(results.predictions_file).read()
    again = ner_run.run(tiny_options(tiny_model_dir, data_dir, out, do_predict=True))
    assert open(again.predictions_file).read() == first


@pytest.mark.slow
def test_performance_flags_reach_run_ner(tiny_model_dir, tmp_path):
    """Gradient accumulation and the mirrored strategy (one CPU replica) work in run_ner through the shared
    Estimator plumbing: 16 windows at train_batch_size 8 are 2 updates either way (accumulation of 2 micro-batches
    of 4 counts updates, not micro-batches), and every test word is labelled."""
    data_dir, test_sentences = write_ner_data(tmp_path / "data", num_train=16, long_test=False)
    predictions = {}
    variants = {"plain": PerformanceSettings(), "accumulated": PerformanceSettings(num_accumulation_steps=2)}
    if estimator_available():  # tf.distribute strategies run on the Estimator engine only
        variants["mirrored"] = PerformanceSettings(distribution_strategy="mirrored")
    for name, performance in variants.items():
        out = tmp_path / name
        results = ner_run.run(tiny_options(tiny_model_dir, data_dir, out, performance=performance, do_train=True,
                                           do_predict=True, num_train_epochs=1.0))
        assert checkpoints.checkpoint_global_step(str(out)) == 2
        predictions[name] = [[line[0] for line in lines] for lines in read_prediction_lines(results.predictions_file)]
    assert predictions["accumulated"] == predictions["plain"] == predictions.get("mirrored", predictions["plain"])
    assert predictions["plain"] == [words for words, _ in test_sentences]


@pytest.mark.slow
def test_untagged_test_file_gets_two_columns(tiny_model_dir, tmp_path):
    data_dir, test_sentences = write_ner_data(tmp_path / "data", num_train=8, long_test=False)
    write_conll(os.path.join(data_dir, "test.txt"), test_sentences, with_tags=False)
    out = tmp_path / "out"
    results = ner_run.run(tiny_options(tiny_model_dir, data_dir, out, do_train=True, do_predict=True,
                                       num_train_epochs=1.0))
    predicted = read_prediction_lines(results.predictions_file)
    assert [[line[0] for line in lines] for lines in predicted] == [words for words, _ in test_sentences]
    assert all(len(line) == 2 for lines in predicted for line in lines)
    assert results.test_results is None and not (out / "test_results.txt").exists()


def test_predict_only_without_trained_labels_is_a_user_error(tiny_model_dir, tmp_path):
    data_dir, _ = write_ner_data(tmp_path / "data", num_train=4)
    with pytest.raises(UserError, match="ner_labels.json not found"):
        ner_run.run(tiny_options(tiny_model_dir, data_dir, tmp_path / "out", do_predict=True))


def run_script(args):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, env=env, timeout=600)


def script_flags(model_dir, data_dir, output_dir, **flags):
    values = dict(data_dir=data_dir, vocab_file=os.path.join(model_dir, "vocab.txt"),
                  bert_config_file=os.path.join(model_dir, "bert_config.json"), output_dir=str(output_dir),
                  max_seq_length=16, do_train="true", do_eval="true", num_train_epochs=1)
    values.update(flags)
    return [f"--{name}={value}" for name, value in values.items()]


def _replace_line(path, line_number, text):
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    lines[line_number - 1] = text
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(lines)


def _bad_line(file_name, text):
    """Damage: line 3 of `file_name` (the first word of its first sentence) becomes `text`; the error must name
    that file and line."""

    def damage(data_dir):
        _replace_line(os.path.join(data_dir, file_name), 3, text)
        return f"{file_name}:3"

    return damage


def _empty_train(data_dir):
    with open(os.path.join(data_dir, "train.txt"), "w") as f:
        f.write("-DOCSTART- O\n\n \n")


def _missing_dev(data_dir):
    os.remove(os.path.join(data_dir, "dev.txt"))


@pytest.mark.parametrize("damage, message", [
    (_bad_line("train.txt", "dog\n"), "has no tag column"),
    (_bad_line("train.txt", "dog\tB_animal\n"), "malformed tag 'B_animal'"),
    (_bad_line("train.txt", "dog\tX-animal\n"), "malformed tag 'X-animal'"),
    (_bad_line("dev.txt", "dog B-plant\n"), "tag 'B-plant' (entity type 'plant') does not occur in the training"),
    (_bad_line("dev.txt", "dog B-animal,B-place\n"), "--alternative_tags=first"),
    (_empty_train, "holds no sentences"),
    (_missing_dev, "dev.txt not found"),
])
@pytest.mark.slow
def test_bad_inputs_through_the_command_line(tiny_model_dir, tmp_path, damage, message):
    data_dir, _ = write_ner_data(tmp_path / "data", num_train=4)
    where = damage(data_dir)
    completed = run_script(script_flags(tiny_model_dir, data_dir, tmp_path / "out"))
    assert completed.returncode != 0
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, completed.stderr[-3000:]
    assert message in errors[0]
    if where:
        assert where in errors[0]
    assert "Traceback" not in completed.stderr


@pytest.mark.slow
def test_missing_data_dir_through_the_command_line(tiny_model_dir, tmp_path):
    completed = run_script(script_flags(tiny_model_dir, str(tmp_path / "nowhere"), tmp_path / "out"))
    assert completed.returncode != 0
    assert "error: --data_dir=" in completed.stderr and "is not a directory" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_baseline_scores_dev_and_test(tmp_path):
    import ner_baseline

    data_dir, _ = write_ner_data(tmp_path / "data", num_train=30)
    scores = ner_baseline.baseline_scores(data_dir, "train.txt", "dev.txt", "test.txt")
    # Tags here are a function of the word (except 'new'/'city' outside that pair, which never happens): the
    # most frequent tag is always right.
    assert scores["dev_f1"] == 1.0 and scores["test_f1"] == 1.0 and scores["test_token_accuracy"] == 1.0
    assert scores["dev_num_gold_entities"] > 0
    with pytest.raises(UserError, match="nothing.txt not found"):
        ner_baseline.baseline_scores(data_dir, "train.txt", "nothing.txt", "test.txt")


@pytest.mark.slow
def test_dynamic_padding_labels_like_the_fixed_length_run(tiny_model_dir, tmp_path):
    """--dynamic_padding: windows run shortest first in batches cut to their length; every word gets the tag of
    the fixed-length run, and training on cut batches of similar length (per-token labels cut with the tokens)
    learns the same lookup."""
    data_dir, _ = write_ner_data(tmp_path / "data")
    out = tmp_path / "out"
    fixed = ner_run.run(tiny_options(tiny_model_dir, data_dir, out, do_train=True, do_eval=True, do_predict=True))
    fixed_predictions = open(fixed.predictions_file).read()
    fixed_eval = open(out / "eval_results.txt").read()

    cut = ner_run.run(tiny_options(tiny_model_dir, data_dir, out, do_eval=True, do_predict=True,
                                   dynamic_padding=True))
    assert open(cut.predictions_file).read() == fixed_predictions
    assert open(out / "eval_results.txt").read() == fixed_eval

    grouped_out = tmp_path / "grouped"
    ner_run.run(tiny_options(tiny_model_dir, data_dir, grouped_out, do_train=True, do_eval=True,
                             dynamic_padding=True, group_by_length=True))
    written = read_key_value_results(str(grouped_out / "eval_results.txt"))
    assert int(written["global_step"]) == int(40 / 8 * 3.0)
    assert float(written["eval_token_accuracy"]) > 0.6
