"""TF1 Hub modules: export from a checkpoint, parity with BertModel (tiny and real MiniLM), tags, variables,
tokenization_info and its asset, relocation, run_classifier_with_tfhub end to end, and bad inputs."""

import filecmp
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from helpers import REPO_ROOT, make_tiny_model_dir, require, shared_path

from bert.runtime.specs import estimator_available

pytestmark = pytest.mark.needs_tf215  # hub.Module: tensorflow-hub 0.15 on TensorFlow 2.15
try:
    import tensorflow_hub as hub
except ImportError:
    hub = None
if estimator_available():
    require(hub is not None, "tensorflow_hub (pip install .[hub], i.e. tensorflow-hub==0.15.0)")

from task_data import write_mrpc_like

from bert import modeling  # noqa: E402 (after the requirement)
from bert.classifier import data as classifier_data
from bert.common.errors import UserError  # noqa: E402
from bert.interop import hub_module
from bert.runtime.outputs import read_key_value_results

NUM_SENTENCE_PAIRS = 8


def export_model_dir(model_dir, output_dir, do_lower_case=True):
    return hub_module.export_module(os.path.join(model_dir, "bert_config.json"),
                                    os.path.join(model_dir, "bert_model.ckpt"), os.path.join(model_dir, "vocab.txt"),
                                    do_lower_case, str(output_dir))


@pytest.fixture(scope="module")
def tiny_module(tiny_model_dir, tmp_path_factory):
    return export_model_dir(tiny_model_dir, tmp_path_factory.mktemp("hub") / "tiny_module")


@pytest.fixture(scope="module")
def minilm_module(minilm_checkpoint, tmp_path_factory):
    return export_model_dir(minilm_checkpoint, tmp_path_factory.mktemp("hub") / "minilm_module")


def mrpc_features(module_dir, max_seq_length):
    """The first MRPC dev pairs, tokenized with the module's own tokenization_info: (ids, mask, segments)."""
    data_dir = os.path.dirname(shared_path("data", "glue", "MRPC", "dev.tsv"))
    examples = classifier_data.get_processor("mrpc").get_dev_examples(data_dir)[:NUM_SENTENCE_PAIRS]
    tokenizer = hub_module.create_tokenizer(hub_module.read_module_info(module_dir))
    features = classifier_data.convert_examples_to_features(examples, ["0", "1"], max_seq_length, tokenizer)
    return tuple(np.array([getattr(f, name) for f in features], np.int32)
                 for name in ("input_ids", "input_mask", "segment_ids"))


def module_outputs(module_dir, features, tags=frozenset(), runs=1):
    """`runs` evaluations of the module's tokens signature: a list of {pooled_output, sequence_output}."""
    with tf.Graph().as_default():
        module = hub.Module(module_dir, tags=set(tags))
        outputs = module(dict(zip(hub_module.INPUT_NAMES, features)), signature="tokens", as_dict=True)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            return [session.run(outputs) for _ in range(runs)]


def bert_model_outputs(model_dir, features):
    """BertModel (is_training False) on the checkpoint in `model_dir`."""
    config = modeling.BertConfig.from_json_file(os.path.join(model_dir, "bert_config.json"))
    with tf.Graph().as_default():
        model = modeling.BertModel(config, is_training=False, input_ids=tf.constant(features[0]),
                                   input_mask=tf.constant(features[1]), token_type_ids=tf.constant(features[2]))
        with tf.Session() as session:
            tf.train.Saver().restore(session, os.path.join(model_dir, "bert_model.ckpt"))
            return session.run({"pooled_output": model.get_pooled_output(),
                                "sequence_output": model.get_sequence_output()})


def assert_outputs_close(actual, expected):
    for name in ("pooled_output", "sequence_output"):
        np.testing.assert_allclose(actual[name], expected[name], atol=1e-5, rtol=0, err_msg=name)


def test_tiny_module_equals_bert_model(tiny_model_dir, tiny_module):
    features = mrpc_features(tiny_module, max_seq_length=64)
    assert features[0].shape == (NUM_SENTENCE_PAIRS, 64)
    [outputs] = module_outputs(tiny_module, features)
    assert outputs["sequence_output"].shape == (NUM_SENTENCE_PAIRS, 64, 32)
    assert_outputs_close(outputs, bert_model_outputs(tiny_model_dir, features))


def test_minilm_module_equals_bert_model(minilm_checkpoint, minilm_module):
    features = mrpc_features(minilm_module, max_seq_length=128)
    assert (features[0] == 100).mean() < 0.01  # real words, hardly any [UNK]
    [outputs] = module_outputs(minilm_module, features)
    assert outputs["pooled_output"].shape == (NUM_SENTENCE_PAIRS, 384)
    assert_outputs_close(outputs, bert_model_outputs(minilm_checkpoint, features))


def test_default_signature_is_tokens(tiny_module):
    features = mrpc_features(tiny_module, max_seq_length=32)
    with tf.Graph().as_default():
        module = hub.Module(tiny_module)
        inputs = dict(zip(hub_module.INPUT_NAMES, features))
        pooled = module(inputs)
        default = module(inputs, as_dict=True)
        tokens = module(inputs, signature="tokens", as_dict=True)
        assert set(tokens) == {"pooled_output", "sequence_output"}
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            pooled, default, tokens = session.run([pooled, default, tokens])
    np.testing.assert_array_equal(pooled, tokens["pooled_output"])
    np.testing.assert_array_equal(default["sequence_output"], tokens["sequence_output"])


def test_train_tag_applies_dropout_and_default_tags_do_not(tiny_module):
    features = mrpc_features(tiny_module, max_seq_length=32)
    first, second = module_outputs(tiny_module, features, runs=2)
    np.testing.assert_array_equal(first["sequence_output"], second["sequence_output"])
    train_first, train_second = module_outputs(tiny_module, features, tags={"train"}, runs=2)
    for name in ("pooled_output", "sequence_output"):
        assert not np.allclose(train_first[name], train_second[name], atol=1e-3), name
        assert not np.allclose(train_first[name], first[name], atol=1e-3), name


def test_variables_are_trainable_with_bert_model_names(tiny_model_dir, tiny_module):
    checkpoint_names = {name for name, _ in tf.train.list_variables(os.path.join(tiny_model_dir, "bert_model.ckpt"))}
    with tf.Graph().as_default():
        module = hub.Module(tiny_module, trainable=True)
        trainable = {v.op.name for v in tf.trainable_variables()}
        assert set(module.variable_map) == checkpoint_names
    assert trainable == {"module/" + name for name in checkpoint_names}
    assert {"module/bert/embeddings/word_embeddings", "module/bert/encoder/layer_1/output/dense/kernel",
            "module/bert/pooler/dense/kernel"} <= trainable
    with tf.Graph().as_default():
        hub.Module(tiny_module, trainable=False)
        assert tf.trainable_variables() == []


def test_minilm_module_variables_are_the_original_bert_model_variables(minilm_module):
    """Names and shapes equal the trainable variables of the original BertModel (shared golden), as in Google's
    modules, so their checkpoints and ours are interchangeable."""
    golden = json.load(open(shared_path("golden", "minilm_model_vars.json")))  # [["bert/...:0", shape], ...]
    expected = {name[: -len(":0")]: shape for name, shape in golden}
    with tf.Graph().as_default():
        variables = hub.Module(minilm_module).variable_map
        assert {name: variable.shape.as_list() for name, variable in variables.items()} == expected


@pytest.mark.parametrize("do_lower_case", [True, False])
def test_tokenization_info_gives_the_vocab_asset_and_casing(tiny_model_dir, tmp_path, do_lower_case):
    module_dir = export_model_dir(tiny_model_dir, tmp_path / "module", do_lower_case=do_lower_case)
    info = hub_module.read_module_info(module_dir)
    assert info.vocab_file == os.path.join(module_dir, "assets", "vocab.txt")
    assert filecmp.cmp(info.vocab_file, os.path.join(tiny_model_dir, "vocab.txt"), shallow=False)
    assert info.do_lower_case is do_lower_case
    assert (info.vocab_size, info.max_position_embeddings) == (83, 64)
    assert hub_module.create_tokenizer(info).tokenize("The DOG") == (["the", "dog"] if do_lower_case
                                                                     else ["[UNK]", "[UNK]"])


def test_exported_module_is_self_contained_and_relocatable(tmp_path):
    model_dir = make_tiny_model_dir(str(tmp_path / "model"), seed=3)
    features = mrpc_features(export_model_dir(model_dir, tmp_path / "first"), max_seq_length=32)
    expected = bert_model_outputs(model_dir, features)
    shutil.rmtree(model_dir)  # the checkpoint and vocab the module came from are gone
    moved = str(tmp_path / "elsewhere" / "module")
    shutil.move(str(tmp_path / "first"), moved)
    info = hub_module.read_module_info(moved)
    assert info.vocab_file == os.path.join(moved, "assets", "vocab.txt")
    assert open(info.vocab_file).read().split("\n")[:3] == ["[PAD]", "[UNK]", "[CLS]"]
    assert_outputs_close(module_outputs(moved, features)[0], expected)


def test_export_bad_inputs(tiny_model_dir, tiny_module, tmp_path):
    with pytest.raises(UserError, match="--init_checkpoint: init_checkpoint /nonexistent/bert_model.ckpt not found"):
        hub_module.export_module(os.path.join(tiny_model_dir, "bert_config.json"), "/nonexistent/bert_model.ckpt",
                                 os.path.join(tiny_model_dir, "vocab.txt"), True, str(tmp_path / "a"))
    with pytest.raises(UserError, match="--vocab_file=/nonexistent/vocab.txt: file not found"):
        hub_module.export_module(os.path.join(tiny_model_dir, "bert_config.json"),
                                 os.path.join(tiny_model_dir, "bert_model.ckpt"), "/nonexistent/vocab.txt", True,
                                 str(tmp_path / "b"))
    with pytest.raises(UserError, match="already holds a TF Hub module"):
        export_model_dir(tiny_model_dir, tiny_module)
    config = json.load(open(os.path.join(tiny_model_dir, "bert_config.json")))
    config_file = tmp_path / "wider_config.json"
    config_file.write_text(json.dumps(dict(config, hidden_size=64)))
    with pytest.raises(UserError, match="LayerNorm/beta has shape \\[32\\] but --bert_config_file makes it \\[64\\]"):
        hub_module.export_module(str(config_file), os.path.join(tiny_model_dir, "bert_model.ckpt"),
                                 os.path.join(tiny_model_dir, "vocab.txt"), True, str(tmp_path / "c"))


def test_reading_something_that_is_not_a_module(tiny_model_dir, tmp_path):
    with pytest.raises(UserError, match="no such folder"):
        hub_module.read_module_info(str(tmp_path / "missing"))
    with pytest.raises(UserError, match="is not a TF1 Hub module \\(no tfhub_module.pb\\)"):
        hub_module.read_module_info(tiny_model_dir)


def test_missing_tensorflow_hub_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_hub", None)  # makes `import tensorflow_hub` fail
    with pytest.raises(UserError, match=r"pip install \.\[hub\]"):
        hub_module.import_hub()


def tfhub_command(module_dir, data_dir, output_dir, *flags):
    return [sys.executable, os.path.join(REPO_ROOT, "scripts", "run_classifier_with_tfhub.py"), "--task_name=MRPC",
            f"--data_dir={data_dir}", f"--bert_hub_module_handle={module_dir}", f"--output_dir={output_dir}",
            *flags]


@pytest.mark.slow
def test_run_classifier_with_tfhub_trains_evaluates_predicts(tiny_module, tmp_path):
    data_dir = write_mrpc_like(tmp_path / "data", num_train=16, num_dev=6, num_test=5)
    out = tmp_path / "out"
    command = tfhub_command(tiny_module, data_dir, out, "--do_train=true", "--do_eval=true", "--do_predict=true",
                            "--max_seq_length=32", "--train_batch_size=4", "--eval_batch_size=4",
                            "--predict_batch_size=4", "--num_train_epochs=1", "--learning_rate=1e-3", "--seed=2",
                            "--do_lower_case=true",  # the original's commands pass it; the module decides
                            "--fast_kernels")  # the module's graph is made already
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "--do_lower_case is ignored: the Hub module brings" in completed.stderr
    assert "--fast_kernels is ignored: the Hub module brings its encoder's graph ready-made" in completed.stderr
    assert "--gradient_checkpointing is ignored" not in completed.stderr
    for name in ("train.tf_record", "eval.tf_record", "predict.tf_record", "eval_results.txt", "test_results.tsv"):
        assert (out / name).exists(), name
    results = read_key_value_results(str(out / "eval_results.txt"))
    assert set(results) == {"eval_accuracy", "eval_f1", "eval_loss", "global_step", "loss"}
    assert int(results["global_step"]) == 16 // 4
    probabilities = np.loadtxt(str(out / "test_results.tsv"), delimiter="\t")
    assert probabilities.shape == (5, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    # Fine-tuning changed the module's weights, saved under the module's variable names.
    checkpoint = tf.train.latest_checkpoint(str(out))
    tuned = tf.train.load_variable(checkpoint, "module/bert/pooler/dense/kernel")
    with tf.Graph().as_default():
        module = hub.Module(tiny_module)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            original = session.run(module.variable_map["bert/pooler/dense/kernel"])
    assert tuned.shape == original.shape and not np.allclose(tuned, original)


@pytest.mark.slow
def test_run_classifier_with_tfhub_bad_module_path(tmp_path):
    data_dir = write_mrpc_like(tmp_path / "data", num_train=4, num_dev=2, num_test=2)
    missing = str(tmp_path / "no_module")
    completed = subprocess.run(tfhub_command(missing, data_dir, tmp_path / "out", "--do_eval=true"),
                               capture_output=True, text=True, timeout=600)
    assert completed.returncode != 0
    error_lines = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert error_lines == [f"error: --bert_hub_module_handle={missing}: no such folder (give a TF Hub module folder "
                           "or URL)"]
    assert "Traceback" not in completed.stderr
