"""The two engines (bert.runtime.engine) run the same model_fns to the same results and files, and continue each
other's runs. On TensorFlow 2.15 both run here side by side; on 2.16+ only the session engine exists, and these
tests check it alone (tests/programs/test_cross_stack.py compares it with the 2.15 stack's Estimator)."""

import glob
import json
import os
import re

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from helpers import available_engines, make_tiny_model_dir
from task_data import squad_options, tiny_options, write_mrpc_like, write_squad_data

from bert.classifier import job as classifier_run
from bert.common.errors import UserError
from bert.runtime import engine, export
from bert.runtime.options import RunSettings
from bert.runtime.performance import PerformanceSettings
from bert.runtime.specs import estimator_available
from bert.squad import job as squad_run

both_engines = pytest.mark.needs_tf215  # the Estimator engine


@pytest.fixture(scope="module")
def model_without_dropout(tmp_path_factory):
    """A tiny BERT without dropout, so that training is deterministic and runs can be compared step by step."""
    return make_tiny_model_dir(str(tmp_path_factory.mktemp("tiny_no_dropout")), hidden_dropout_prob=0.0,
                               attention_probs_dropout_prob=0.0)


@pytest.fixture(scope="module")
def mrpc_dir(tmp_path_factory):
    return write_mrpc_like(tmp_path_factory.mktemp("mrpc"))


def run_classifier(model_dir, data_dir, output_dir, engine_name, **overrides):
    options = tiny_options(model_dir, data_dir, output_dir, **overrides)
    options.run.engine = engine_name
    options.run.log_every_steps = 1
    return classifier_run.run(options)


def training_losses(output_dir):
    """{step: loss} from the progress hook's train/loss summaries (every step with log_every_steps=1)."""
    losses = {}
    for path in sorted(glob.glob(os.path.join(output_dir, "events.out.tfevents.*"))):
        for event in tf.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == "train/loss":
                    losses[event.step] = value.simple_value
    return losses


def checkpoint_values(output_dir):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(output_dir))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def output_files(output_dir):
    """The names in output_dir and its eval/ folder, with the event files' timestamp and host left out."""
    names = set()
    for path in glob.glob(os.path.join(output_dir, "**"), recursive=True):
        name = os.path.relpath(path, output_dir)
        names.add(re.sub(r"events\.out\.tfevents\..*", "events.out.tfevents.*", name))
    return names


@pytest.fixture(scope="module")
def classifier_runs(model_without_dropout, mrpc_dir, tmp_path_factory):
    """Train (6 steps), evaluate, predict and export the same classifier with each engine available here."""
    runs = {}
    for name in available_engines():
        root = tmp_path_factory.mktemp(f"classifier_{name}")
        results = run_classifier(model_without_dropout, mrpc_dir, root / "out", name, do_train=True, do_eval=True,
                                 do_predict=True, export_dir=str(root / "serving"))
        runs[name] = (str(root / "out"), results)
    return runs


def test_session_engine_writes_the_estimators_files(classifier_runs):
    output_dir, results = classifier_runs["session"]
    expected = {"checkpoint", "graph.pbtxt", "events.out.tfevents.*", "eval", "eval/events.out.tfevents.*",
                "eval_results.txt", "test_results.tsv", "train.tf_record", "eval.tf_record", "predict.tf_record",
                "bert_task.json", "bert_task.vocab.txt"}  # the last two: what a Predictor loads (task_file.py)
    expected |= {f"model.ckpt-{step}.{suffix}" for step in (0, 6)
                 for suffix in ("index", "meta", "data-00000-of-00001")}
    assert output_files(output_dir) == expected | {"."}
    assert results.eval_results["global_step"] == 6
    assert set(results.eval_results) == {"eval_accuracy", "eval_f1", "eval_loss", "loss", "global_step"}
    assert sorted(training_losses(output_dir)) == [1, 2, 3, 4, 5, 6]
    assert os.path.basename(results.saved_model_dir).isdigit()


@both_engines
def test_both_engines_give_the_same_files_losses_weights_and_results(classifier_runs):
    estimator_dir, session_dir = classifier_runs["estimator"][0], classifier_runs["session"][0]
    assert output_files(estimator_dir) == output_files(session_dir)
    estimator_losses, session_losses = training_losses(estimator_dir), training_losses(session_dir)
    assert sorted(estimator_losses) == sorted(session_losses) == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose([session_losses[s] for s in sorted(session_losses)],
                               [estimator_losses[s] for s in sorted(estimator_losses)], rtol=0, atol=1e-4)
    estimator_weights, session_weights = checkpoint_values(estimator_dir), checkpoint_values(session_dir)
    assert estimator_weights.keys() == session_weights.keys()
    for name, value in estimator_weights.items():
        np.testing.assert_allclose(session_weights[name], value, rtol=0, atol=1e-5, err_msg=name)
    for file_name in ("eval_results.txt", "test_results.tsv"):
        assert_numbers_close(os.path.join(session_dir, file_name), os.path.join(estimator_dir, file_name))


def assert_numbers_close(path, reference_path, atol=1e-5):
    """The two text files are the same but for numbers, which differ by at most `atol`."""
    number = r"-?\d+(?:\.\d+)?(?:e-?\d+)?"
    text, reference = open(path).read(), open(reference_path).read()
    assert re.sub(number, "#", text) == re.sub(number, "#", reference)
    np.testing.assert_allclose([float(x) for x in re.findall(number, text)],
                               [float(x) for x in re.findall(number, reference)], rtol=0, atol=atol)


@both_engines
def test_both_engines_export_the_same_serving_model(classifier_runs):
    input_ids = np.zeros([2, 32], np.int32)
    input_ids[:, :4] = [[2, 7, 9, 3], [2, 11, 3, 0]]
    inputs = {"input_ids": input_ids, "input_mask": (input_ids > 0).astype(np.int32),
              "segment_ids": np.zeros([2, 32], np.int32)}
    outputs = {name: export.predict_with_saved_model(results.saved_model_dir, inputs)
               for name, (_, results) in classifier_runs.items()}
    assert outputs["session"].keys() == outputs["estimator"].keys() == {"probabilities"}
    np.testing.assert_allclose(outputs["session"]["probabilities"], outputs["estimator"]["probabilities"],
                               rtol=0, atol=1e-6)


@both_engines
@pytest.mark.parametrize("first,second", [("estimator", "session"), ("session", "estimator")])
def test_a_run_of_one_engine_is_continued_by_the_other(model_without_dropout, mrpc_dir, tmp_path, first, second):
    """6 steps with one engine, then the same command for 2 epochs with the other, equal 6 + 6 with one engine."""
    mixed, single = tmp_path / "mixed", tmp_path / "single"
    for output_dir, engines in ((mixed, (first, second)), (single, (first, first))):
        run_classifier(model_without_dropout, mrpc_dir, output_dir, engines[0], do_train=True)
        results = run_classifier(model_without_dropout, mrpc_dir, output_dir, engines[1], do_train=True,
                                 do_eval=True, num_train_epochs=2.0)
        assert results.eval_results["global_step"] == 12
    mixed_weights, single_weights = checkpoint_values(str(mixed)), checkpoint_values(str(single))
    for name, value in single_weights.items():
        np.testing.assert_allclose(mixed_weights[name], value, rtol=0, atol=1e-5, err_msg=name)
    assert sorted(training_losses(str(mixed))) == list(range(1, 13))


@both_engines
def test_squad_predictions_are_the_same_on_both_engines(tiny_model_dir, tmp_path):
    predict_file = write_squad_data(tmp_path / "dev.json", num_paragraphs=3, seed=5)
    predictions = {}
    for name in available_engines():
        output_dir = tmp_path / name
        options = squad_options(tiny_model_dir, output_dir, predict_file=predict_file, do_predict=True,
                                init_checkpoint=os.path.join(tiny_model_dir, "bert_model.ckpt"),
                                version_2_with_negative=True)
        options.run = RunSettings(output_dir=str(output_dir), seed=3, engine=name)
        squad_run.run(options)
        predictions[name] = json.load(open(output_dir / "predictions.json"))
        nbest = json.load(open(output_dir / "nbest_predictions.json"))
        predictions[name + "_probabilities"] = [entry["probability"] for entries in nbest.values()
                                                for entry in entries]
    assert predictions["session"] == predictions["estimator"]
    np.testing.assert_allclose(predictions["session_probabilities"], predictions["estimator_probabilities"],
                               rtol=0, atol=1e-5)


def test_the_session_engine_refuses_tpu_and_distribution_in_one_line(tmp_path):
    def model_fn(features, labels, mode, params):
        raise AssertionError("not reached")

    with pytest.raises(UserError, match=r"--use_tpu needs TPUEstimator.*TensorFlow 2\.15"):
        engine.make_estimator(model_fn, RunSettings(output_dir=str(tmp_path), engine="session", use_tpu=True))
    strategy = RunSettings(output_dir=str(tmp_path), engine="session",
                           performance=PerformanceSettings(distribution_strategy="mirrored"))
    with pytest.raises(UserError, match=r"--distribution_strategy=mirrored runs on the Estimator engine only"):
        engine.make_estimator(model_fn, strategy)


def test_engine_names_resolve_for_this_tensorflow():
    assert engine.resolve_engine("session") == "session"
    assert engine.resolve_engine("auto") == ("estimator" if estimator_available() else "session")
    with pytest.raises(UserError, match="engine must be one of auto, estimator, session"):
        engine.resolve_engine("keras")
    if estimator_available():
        assert engine.resolve_engine("estimator") == "estimator"
    else:
        with pytest.raises(UserError, match=r"--engine=estimator needs TensorFlow 2\.15"):
            engine.resolve_engine("estimator")
