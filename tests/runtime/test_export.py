"""SavedModel export: the serving signature takes raw ids/mask/segments and gives do_predict's probabilities."""

import json
import os
import subprocess

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from helpers import available_engines
from task_data import script_command, squad_options, tiny_options, write_mrpc_like, write_squad_data

from bert import tokenization
from bert.classifier import data as classifier_data
from bert.classifier import job as classifier_run
from bert.runtime import export, input_pipeline
from bert.runtime.engine import make_estimator
from bert.runtime.options import RunSettings
from bert.squad import data as squad
from bert.squad import job as squad_run
from bert.squad import postprocess as squad_postprocess

SEQ_LENGTH = 32


@pytest.fixture(scope="module")
def trained_and_exported(tiny_model_dir, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("export")
    data_dir = write_mrpc_like(tmp_path / "data", num_test=9)
    out = tmp_path / "out"
    options = tiny_options(tiny_model_dir, data_dir, out, do_train=True, do_predict=True,
                           export_dir=str(tmp_path / "serving"))
    results = classifier_run.run(options)
    return results, out


def _serving_inputs(out):
    rows = input_pipeline.read_tfrecord(str(out / "predict.tf_record"),
                                        classifier_data.classifier_feature_spec(SEQ_LENGTH))
    return {name: np.stack([row[name] for row in rows]).astype(np.int32)
            for name in ("input_ids", "input_mask", "segment_ids")}


@pytest.mark.slow
def test_saved_model_gives_the_probabilities_of_do_predict(trained_and_exported):
    results, out = trained_and_exported
    assert os.path.dirname(results.saved_model_dir).endswith("serving")
    served = export.predict_with_saved_model(results.saved_model_dir, _serving_inputs(out))
    expected = np.loadtxt(results.predictions_file, delimiter="\t")
    assert served["probabilities"].shape == expected.shape == (9, 2)
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-6)


@pytest.mark.slow
def test_serving_signature_takes_raw_int32_features(trained_and_exported):
    results, _ = trained_and_exported
    with tf.Graph().as_default(), tf.Session() as session:
        meta_graph = tf.saved_model.loader.load(session, [export.SERVING_TAG], results.saved_model_dir)
    signature = meta_graph.signature_def[export.SIGNATURE_KEY]
    assert sorted(signature.inputs) == ["input_ids", "input_mask", "segment_ids"]
    for tensor_info in signature.inputs.values():
        assert tensor_info.dtype == tf.int32.as_datatype_enum
        # Any length up to max_seq_length: the same model serves the text signature's batches, cut to their longest.
        assert [d.size for d in tensor_info.tensor_shape.dim] == [-1, -1]
    assert list(signature.outputs) == ["probabilities"]


@pytest.mark.slow
def test_export_only_run_uses_the_latest_checkpoint(trained_and_exported, tiny_model_dir, tmp_path):
    _, out = trained_and_exported
    options = tiny_options(tiny_model_dir, str(out.parent / "data"), out, export_dir=str(tmp_path / "again"))
    path = classifier_run.run(options).saved_model_dir
    one_example = {name: values[:1] for name, values in _serving_inputs(out).items()}
    served = export.predict_with_saved_model(path, one_example)["probabilities"]
    expected = np.loadtxt(str(out / "test_results.tsv"), delimiter="\t")[:1]
    np.testing.assert_allclose(served, expected, atol=1e-6)


@pytest.mark.slow
def test_missing_serving_feature_is_a_clear_error(trained_and_exported):
    results, out = trained_and_exported
    inputs = _serving_inputs(out)
    del inputs["segment_ids"]
    with pytest.raises(ValueError, match="segment_ids"):
        export.predict_with_saved_model(results.saved_model_dir, inputs)
    with pytest.raises(FileNotFoundError, match="saved_model.pb"):
        export.predict_with_saved_model(str(out), inputs)


@pytest.mark.parametrize("engine", available_engines())
def test_export_without_any_checkpoint_fails_clearly(tmp_path, engine):
    estimator = make_estimator(lambda features, labels, mode, params: None,
                               RunSettings(output_dir=str(tmp_path), engine=engine), predict_batch_size=1)
    with pytest.raises(FileNotFoundError, match="nothing to export"):
        export.export_saved_model(estimator, str(tmp_path / "serving"),
                                  [input_pipeline.Feature("input_ids", (SEQ_LENGTH,))])


@pytest.mark.slow
def test_script_export_dir_flag(tiny_model_dir, tmp_path):
    data_dir = write_mrpc_like(tmp_path / "data", num_train=8, num_dev=4, num_test=2)
    command = script_command(tiny_model_dir, data_dir, tmp_path / "out", "--do_train=true", "--max_seq_length=16",
                             "--train_batch_size=4", "--num_train_epochs=1", f"--export_dir={tmp_path / 'serving'}")
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    (version,) = os.listdir(tmp_path / "serving")
    assert version.isdigit()
    assert (tmp_path / "serving" / version / "saved_model.pb").exists()


def test_exporting_a_checkpoint_without_the_task_head_fails_clearly(tiny_model_dir, tmp_path):
    data_dir = write_mrpc_like(tmp_path / "data")
    options = tiny_options(tiny_model_dir, data_dir, tmp_path / "out", export_dir=str(tmp_path / "serving"))
    with pytest.raises(ValueError, match=r"lacks the variable \S+ of the task's model; .*--do_train"):
        classifier_run.run(options)


@pytest.mark.slow
def test_squad_saved_model_gives_the_answers_of_do_predict(tiny_model_dir, tmp_path):
    train_file = write_squad_data(tmp_path / "train.json", num_paragraphs=2, seed=0)
    predict_file = write_squad_data(tmp_path / "dev.json", num_paragraphs=2, seed=1)
    out = tmp_path / "out"
    options = squad_options(
        tiny_model_dir, out, init_checkpoint=os.path.join(tiny_model_dir, "bert_model.ckpt"), do_train=True,
        do_predict=True, train_file=train_file, predict_file=predict_file, train_batch_size=4, num_train_epochs=1,
        version_2_with_negative=True, export_dir=str(tmp_path / "serving"))
    answers = squad_run.run(options)
    (version,) = os.listdir(tmp_path / "serving")
    saved_model_dir = str(tmp_path / "serving" / version)

    # Serve the windows do_predict ran on, then post-process the served logits as do_predict does.
    rows = input_pipeline.read_tfrecord(str(out / "eval.tf_record"), squad.feature_spec(48, is_training=False))
    inputs = {name: np.stack([row[name] for row in rows]).astype(np.int32) for name in export.SERVING_FEATURE_NAMES}
    served = export.predict_with_saved_model(saved_model_dir, inputs)
    assert served["start_logits"].shape == served["end_logits"].shape == (len(rows), 48)
    results = [squad_postprocess.RawResult(int(row["unique_ids"]), list(start), list(end))
               for row, start, end in zip(rows, served["start_logits"], served["end_logits"])]
    examples = squad.read_squad_examples(predict_file, is_training=False)
    features = []
    squad_run._convert(examples, tokenization.FullTokenizer(os.path.join(tiny_model_dir, "vocab.txt")), options,
                       is_training=False, output_fn=features.append)
    predictions, nbest, _ = squad_postprocess.compute_predictions(examples, features, results,
                                                                 options.prediction_options())
    assert predictions == answers
    expected_nbest = json.loads((out / "nbest_predictions.json").read_text())
    for qid, entries in nbest.items():
        for entry, expected in zip(entries, expected_nbest[qid]):
            assert entry["text"] == expected["text"]
            assert entry["start_logit"] == pytest.approx(expected["start_logit"], abs=1e-5)
