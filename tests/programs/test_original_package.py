"""Code written against the original package (`pip install bert-tensorflow`: `from bert import run_classifier`, ...)
works here: every public name of the original's five task modules, imported together in one process, with the
original's arguments, and the original's results on real data (the shared goldens, made by the original code)."""

import ast
import inspect
import json
import os
import random

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from task_data import assert_tie_in_golden

# The five modules together in one process (the original's each defined flags at import and could not).
from bert import (create_pretraining_data, extract_features, modeling, optimization, run_classifier, run_pretraining,
                  run_squad, tokenization)
from bert.classifier import data as classifier_data
from bert.classifier import model as classifier_model
from bert.features import extraction as feature_extraction
from bert.pretraining import data as pretraining_data
from bert.pretraining import job as pretraining
from bert.runtime import input_pipeline
from bert.squad import data as squad
from bert.squad import postprocess as squad_postprocess
from helpers import require, shared_path
from program_help import flags_listed, help_outputs

# ----------------------------------------------------------------------------------------------------------------
# The original's public names and their positional arguments (written from reading google-research/bert)
# ----------------------------------------------------------------------------------------------------------------

ORIGINAL_SIGNATURES = {
    run_classifier: {
        "InputExample": "guid, text_a, text_b=None, label=None",
        "PaddingInputExample": "",
        "InputFeatures": "input_ids, input_mask, segment_ids, label_id, is_real_example=True",
        "DataProcessor": "",
        "XnliProcessor": "",
        "MnliProcessor": "",
        "MrpcProcessor": "",
        "ColaProcessor": "",
        "convert_single_example": "ex_index, example, label_list, max_seq_length, tokenizer",
        "convert_examples_to_features": "examples, label_list, max_seq_length, tokenizer",
        "file_based_convert_examples_to_features": "examples, label_list, max_seq_length, tokenizer, output_file",
        "file_based_input_fn_builder": "input_file, seq_length, is_training, drop_remainder",
        "input_fn_builder": "features, seq_length, is_training, drop_remainder",
        "create_model": "bert_config, is_training, input_ids, input_mask, segment_ids, labels, num_labels, "
                        "use_one_hot_embeddings",
        "model_fn_builder": "bert_config, num_labels, init_checkpoint, learning_rate, num_train_steps, "
                            "num_warmup_steps, use_tpu, use_one_hot_embeddings",
    },
    run_squad: {
        "SquadExample": "qas_id, question_text, doc_tokens, orig_answer_text=None, start_position=None, "
                        "end_position=None, is_impossible=False",
        "InputFeatures": "unique_id, example_index, doc_span_index, tokens, token_to_orig_map, "
                         "token_is_max_context, input_ids, input_mask, segment_ids, start_position=None, "
                         "end_position=None, is_impossible=None",
        "read_squad_examples": "input_file, is_training",
        "convert_examples_to_features": "examples, tokenizer, max_seq_length, doc_stride, max_query_length, "
                                        "is_training, output_fn",
        "FeatureWriter": "filename, is_training",
        "RawResult": "unique_id, start_logits, end_logits",
        "write_predictions": "all_examples, all_features, all_results, n_best_size, max_answer_length, "
                             "do_lower_case, output_prediction_file, output_nbest_file, output_null_log_odds_file",
        "get_final_text": "pred_text, orig_text, do_lower_case",
        "create_model": "bert_config, is_training, input_ids, input_mask, segment_ids, use_one_hot_embeddings",
        "model_fn_builder": "bert_config, init_checkpoint, learning_rate, num_train_steps, num_warmup_steps, "
                            "use_tpu, use_one_hot_embeddings",
        "input_fn_builder": "input_file, seq_length, is_training, drop_remainder",
    },
    create_pretraining_data: {
        "TrainingInstance": "tokens, segment_ids, masked_lm_positions, masked_lm_labels, is_random_next",
        "create_training_instances": "input_files, tokenizer, max_seq_length, dupe_factor, short_seq_prob, "
                                     "masked_lm_prob, max_predictions_per_seq, rng",
        "create_instances_from_document": "all_documents, document_index, max_seq_length, short_seq_prob, "
                                          "masked_lm_prob, max_predictions_per_seq, vocab_words, rng",
        "create_masked_lm_predictions": "tokens, masked_lm_prob, max_predictions_per_seq, vocab_words, rng",
        "write_instance_to_example_files": "instances, tokenizer, max_seq_length, max_predictions_per_seq, "
                                           "output_files",
        "truncate_seq_pair": "tokens_a, tokens_b, max_num_tokens, rng",
    },
    run_pretraining: {
        "model_fn_builder": "bert_config, init_checkpoint, learning_rate, num_train_steps, num_warmup_steps, "
                            "use_tpu, use_one_hot_embeddings",
        "get_masked_lm_output": "bert_config, input_tensor, output_weights, positions, label_ids, label_weights",
        "get_next_sentence_output": "bert_config, input_tensor, labels",
        "gather_indexes": "sequence_tensor, positions",
        "input_fn_builder": "input_files, max_seq_length, max_predictions_per_seq, is_training, num_cpu_threads=4",
    },
    extract_features: {
        "InputExample": "unique_id, text_a, text_b",
        "InputFeatures": "unique_id, tokens, input_ids, input_mask, input_type_ids",
        "read_examples": "input_file",
        "convert_examples_to_features": "examples, seq_length, tokenizer",
        "input_fn_builder": "features, seq_length",
        "model_fn_builder": "bert_config, init_checkpoint, layer_indexes, use_tpu, use_one_hot_embeddings",
    },
}

# Functions that read one of the original's flags take it as a keyword argument with the flag's default.
FLAG_KEYWORDS = {
    (run_squad, "read_squad_examples"): {"version_2_with_negative": False},
    (run_squad, "write_predictions"): {"version_2_with_negative": False, "null_score_diff_threshold": 0.0,
                                       "verbose_logging": False},
    (run_squad, "get_final_text"): {"verbose_logging": False},
    (create_pretraining_data, "create_masked_lm_predictions"): {"do_whole_word_mask": False},
    (create_pretraining_data, "create_instances_from_document"): {"do_whole_word_mask": False},
    (create_pretraining_data, "create_training_instances"): {"do_whole_word_mask": False},
}

# The flags of the original scripts (names from the original files).
ORIGINAL_FLAGS = {
    "run_classifier": "data_dir bert_config_file task_name vocab_file output_dir init_checkpoint do_lower_case "
                      "max_seq_length do_train do_eval do_predict train_batch_size eval_batch_size "
                      "predict_batch_size learning_rate num_train_epochs warmup_proportion save_checkpoints_steps "
                      "iterations_per_loop use_tpu tpu_name tpu_zone gcp_project master num_tpu_cores",
    "run_squad": "bert_config_file vocab_file output_dir train_file predict_file init_checkpoint do_lower_case "
                 "max_seq_length doc_stride max_query_length do_train do_predict train_batch_size "
                 "predict_batch_size learning_rate num_train_epochs warmup_proportion save_checkpoints_steps "
                 "iterations_per_loop n_best_size max_answer_length use_tpu tpu_name tpu_zone gcp_project master "
                 "num_tpu_cores verbose_logging version_2_with_negative null_score_diff_threshold",
    "run_pretraining": "bert_config_file input_file output_dir init_checkpoint max_seq_length "
                       "max_predictions_per_seq do_train do_eval train_batch_size eval_batch_size learning_rate "
                       "num_train_steps num_warmup_steps save_checkpoints_steps iterations_per_loop max_eval_steps "
                       "use_tpu tpu_name tpu_zone gcp_project master num_tpu_cores",
    "create_pretraining_data": "input_file output_file vocab_file do_lower_case do_whole_word_mask max_seq_length "
                               "max_predictions_per_seq random_seed dupe_factor masked_lm_prob short_seq_prob",
    "extract_features": "input_file output_file layers bert_config_file max_seq_length init_checkpoint vocab_file "
                        "do_lower_case batch_size use_tpu master num_tpu_cores use_one_hot_embeddings",
}


def _parse(signature: str):
    params = []
    for item in filter(None, (part.strip() for part in signature.split(","))):
        name, _, default = item.partition("=")
        params.append((name, ast.literal_eval(default) if default else inspect.Parameter.empty))
    return params


def _parameters(obj):
    if isinstance(obj, type) and issubclass(obj, tuple) and hasattr(obj, "_fields"):
        return [(name, inspect.Parameter.empty) for name in obj._fields]
    return [(p.name, p.default) for p in inspect.signature(obj).parameters.values()]


@pytest.mark.parametrize("module, name", [(m, n) for m, names in ORIGINAL_SIGNATURES.items() for n in names],
                         ids=lambda x: getattr(x, "__name__", x).replace("bert.", ""))
def test_original_name_takes_the_original_arguments(module, name):
    expected = _parse(ORIGINAL_SIGNATURES[module][name])
    actual = _parameters(getattr(module, name))
    assert [n for n, _ in actual[:len(expected)]] == [n for n, _ in expected]
    for (param, default), (_, ours) in zip(expected, actual):
        if default is not inspect.Parameter.empty:
            assert ours == default, f"{name}({param}=...) default"
    extra = dict(actual[len(expected):])
    assert all(default is not inspect.Parameter.empty for default in extra.values()), \
        f"{name}: arguments beyond the original's must be optional: {extra}"
    assert extra.items() >= FLAG_KEYWORDS.get((module, name), {}).items()


def test_original_names_are_the_library_objects_not_copies():
    assert run_classifier.InputExample is classifier_data.InputExample
    assert run_classifier.convert_examples_to_features is classifier_data.convert_examples_to_features
    assert run_classifier.input_fn_builder is classifier_data.input_fn_builder
    assert run_classifier.model_fn_builder is classifier_model.model_fn_builder
    assert run_squad.SquadExample is squad.SquadExample and run_squad.RawResult is squad_postprocess.RawResult
    assert run_squad.read_squad_examples is squad.read_squad_examples
    assert run_pretraining.get_masked_lm_output is pretraining.get_masked_lm_output
    assert extract_features.convert_examples_to_features is feature_extraction.convert_examples_to_features


def test_data_processors_read_real_mrpc():
    processor = run_classifier.MrpcProcessor()
    assert isinstance(processor, run_classifier.DataProcessor)
    examples = processor.get_dev_examples(os.path.dirname(shared_path("data", "mrpc_small", "dev.tsv")))
    assert len(examples) == 100 and processor.get_labels() == ["0", "1"]
    assert isinstance(examples[0], run_classifier.InputExample) and examples[0].label == "1"
    assert run_classifier.XnliProcessor().get_labels() == ["contradiction", "entailment", "neutral"]
    assert run_classifier.ColaProcessor().get_labels() == ["0", "1"]
    assert run_classifier.MnliProcessor().get_labels() == ["contradiction", "entailment", "neutral"]


@pytest.mark.parametrize("program", sorted(ORIGINAL_FLAGS))
def test_python_m_helpfull_lists_the_original_flags(program):
    listed = flags_listed(help_outputs()[f"{program} module --helpfull"])
    assert set(ORIGINAL_FLAGS[program].split()) <= listed


# ----------------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------------


def _checkpoint_files(directory):
    return (modeling.BertConfig.from_json_file(os.path.join(directory, "bert_config.json")),
            os.path.join(directory, "vocab.txt"), os.path.join(directory, "bert_model.ckpt"))


def _cpu_estimator(model_fn, model_dir, **batch_sizes):
    """The original scripts' TPUEstimator, with use_tpu=False."""
    config = tf.estimator.tpu.RunConfig(model_dir=model_dir, save_checkpoints_steps=1000,
                                        tpu_config=tf.estimator.tpu.TPUConfig(iterations_per_loop=1000))
    return tf.estimator.tpu.TPUEstimator(use_tpu=False, model_fn=model_fn, config=config, **batch_sizes)


def _mrpc_pairs(split, count):
    rows = [line.rstrip("\n").split("\t") for line in open(shared_path("data", "mrpc_small", f"{split}.tsv"),
                                                            encoding="utf-8-sig")][1:count + 1]
    return [(row[3], row[4], row[0]) for row in rows]


# ----------------------------------------------------------------------------------------------------------------
# run_classifier: the original's results (golden test_results.tsv of the original run_classifier.py)
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.needs_tf215  # the original's code (TPUEstimator, tf.layers) or tf.estimator
def test_run_classifier_names_give_the_original_test_predictions(fixed_head_checkpoint, tmp_path):
    bert_config, vocab_file, init_checkpoint = _checkpoint_files(fixed_head_checkpoint)
    tokenizer = tokenization.FullTokenizer(vocab_file=vocab_file, do_lower_case=True)
    processor = run_classifier.MrpcProcessor()
    examples = processor.get_test_examples(os.path.dirname(shared_path("data", "mrpc_small", "test.tsv")))[:16]
    label_list = processor.get_labels()

    features = run_classifier.convert_examples_to_features(examples, label_list, 128, tokenizer)
    assert all(isinstance(f, run_classifier.InputFeatures) and len(f.input_ids) == 128 and f.is_real_example
               for f in features)
    record_file = str(tmp_path / "predict.tf_record")
    run_classifier.file_based_convert_examples_to_features(examples, label_list, 128, tokenizer, record_file)
    in_memory = run_classifier.input_fn_builder(features, 128, is_training=False, drop_remainder=False)
    from_file = run_classifier.file_based_input_fn_builder(record_file, 128, is_training=False,
                                                           drop_remainder=False)

    model_fn = run_classifier.model_fn_builder(bert_config, len(label_list), init_checkpoint, 5e-5, None, None,
                                               False, False)
    estimator = _cpu_estimator(model_fn, str(tmp_path / "model"), train_batch_size=8, eval_batch_size=8,
                               predict_batch_size=8)
    results = {name: np.array([p["probabilities"] for p in estimator.predict(input_fn)])
               for name, input_fn in (("memory", in_memory), ("file", from_file))}
    golden = np.loadtxt(shared_path("golden", "classifier", "test_results.tsv"))[:16]
    np.testing.assert_allclose(results["memory"], golden, atol=1e-5)
    np.testing.assert_allclose(results["file"], golden, atol=1e-5)

    metrics = estimator.evaluate(from_file, steps=2)
    assert {"eval_accuracy", "eval_loss", "loss", "global_step"} <= set(metrics)


# ----------------------------------------------------------------------------------------------------------------
# run_squad: the original's predictions.json (1.1 and 2.0) for the questions of the first paragraphs
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.needs_tf215  # the original's code (TPUEstimator, tf.layers) or tf.estimator
def test_run_squad_names_give_the_original_predictions(fixed_head_checkpoint, tmp_path):
    bert_config, vocab_file, init_checkpoint = _checkpoint_files(fixed_head_checkpoint)
    tokenizer = tokenization.FullTokenizer(vocab_file=vocab_file, do_lower_case=True)
    with open(shared_path("data", "squad", "squad_public.json"), encoding="utf-8") as f:
        dataset = json.load(f)
    dataset["data"] = [dict(dataset["data"][0], paragraphs=dataset["data"][0]["paragraphs"][:2])]
    predict_file = tmp_path / "two_paragraphs.json"
    predict_file.write_text(json.dumps(dataset), encoding="utf-8")

    examples = run_squad.read_squad_examples(str(predict_file), is_training=False)
    assert len(examples) == 17 and isinstance(examples[0], run_squad.SquadExample)
    writer = run_squad.FeatureWriter(str(tmp_path / "eval.tf_record"), is_training=False)
    features = []

    def append_feature(feature):
        features.append(feature)
        writer.process_feature(feature)

    run_squad.convert_examples_to_features(examples, tokenizer, 128, 64, 32, False, append_feature)
    writer.close()
    assert writer.num_features == len(features) > len(examples)
    library_records = input_pipeline.read_tfrecord(writer.filename, squad.feature_spec(128, is_training=False))
    assert [int(r["unique_ids"]) for r in library_records] == [f.unique_id for f in features]

    model_fn = run_squad.model_fn_builder(bert_config, init_checkpoint, 3e-5, None, None, False, False)
    estimator = _cpu_estimator(model_fn, str(tmp_path / "model"), train_batch_size=16, predict_batch_size=16)
    input_fn = run_squad.input_fn_builder(writer.filename, 128, is_training=False, drop_remainder=False)
    results = [run_squad.RawResult(unique_id=int(p["unique_ids"]), start_logits=[float(x) for x in p["start_logits"]],
                                   end_logits=[float(x) for x in p["end_logits"]])
               for p in estimator.predict(input_fn, yield_single_examples=True)]

    for version, keywords in (("v1", {}), ("v2", {"version_2_with_negative": True,
                                                 "null_score_diff_threshold": -1.0})):
        out = tmp_path / version
        out.mkdir()
        run_squad.write_predictions(examples, features, results, 20, 30, True, str(out / "predictions.json"),
                                    str(out / "nbest_predictions.json"), str(out / "null_odds.json"), **keywords)
        predictions = json.loads((out / "predictions.json").read_text())
        golden = json.load(open(shared_path("golden", "squad", version, "predictions.json"), encoding="utf-8"))
        golden_nbest = json.load(open(shared_path("golden", "squad", version, "nbest_predictions.json"),
                                      encoding="utf-8"))
        nbest = json.loads((out / "nbest_predictions.json").read_text())
        for qid, text in predictions.items():  # the golden's answers, except where its best two tie across CPUs
            if text != golden[qid]:
                assert_tie_in_golden(golden_nbest[qid], nbest[qid], qid)
        assert (out / "null_odds.json").exists() == (version == "v2")

    assert run_squad.get_final_text("steve smith", "Steve Smith's", True) == "Steve Smith"


# ----------------------------------------------------------------------------------------------------------------
# create_pretraining_data: the original's sample.tfrecord and sample_wwm.tfrecord
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uncased_tokenizer():
    return tokenization.FullTokenizer(shared_path("data", "vocab", "bert_uncased_vocab.txt"), do_lower_case=True)


@pytest.mark.parametrize("golden, whole_word", [("sample.tfrecord", False), ("sample_wwm.tfrecord", True)])
def test_create_pretraining_data_names_write_the_original_records(uncased_tokenizer, tmp_path, golden, whole_word):
    rng = random.Random(12345)
    instances = create_pretraining_data.create_training_instances(
        [shared_path("data", "sample_text.txt")], uncased_tokenizer, 128, 5, 0.1, 0.15, 20, rng,
        do_whole_word_mask=whole_word)
    assert isinstance(instances[0], create_pretraining_data.TrainingInstance)
    assert instances[0].tokens[0] == "[CLS]" and "masked_lm_labels: " in str(instances[0])
    output = tmp_path / "out.tfrecord"
    create_pretraining_data.write_instance_to_example_files(instances, uncased_tokenizer, 128, 20, [str(output)])
    spec = pretraining.pretraining_feature_spec(128, 20)
    actual = input_pipeline.read_tfrecord(str(output), spec)
    expected = input_pipeline.read_tfrecord(shared_path("golden", "pretraining", golden), spec)
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])


def test_create_pretraining_data_token_functions_match_the_library(uncased_tokenizer):
    vocab_words = list(uncased_tokenizer.vocab.keys())
    lines = [line.strip() for line in open(shared_path("data", "sample_text.txt"), encoding="utf-8")]
    document = [uncased_tokenizer.tokenize(line) for line in lines[:12] if line]
    other = [uncased_tokenizer.tokenize(line) for line in lines[20:30] if line]
    as_ids = [[uncased_tokenizer.convert_tokens_to_ids(s) for s in doc] for doc in (document, other)]
    vocab = pretraining_data.MaskingVocab(uncased_tokenizer.vocab)
    options = pretraining_data.DataOptions(max_seq_length=64, short_seq_prob=0.3, do_whole_word_mask=True)

    ours = create_pretraining_data.create_instances_from_document(
        [document, other], 0, 64, 0.3, 0.15, 20, vocab_words, random.Random(7), do_whole_word_mask=True)
    library = pretraining_data.create_instances_from_document(as_ids, 0, options, vocab, random.Random(7))
    assert len(ours) == len(library) > 1
    for instance, reference in zip(ours, library):
        assert uncased_tokenizer.convert_tokens_to_ids(instance.tokens) == reference.input_ids
        assert instance.masked_lm_positions == reference.masked_lm_positions
        assert uncased_tokenizer.convert_tokens_to_ids(instance.masked_lm_labels) == reference.masked_lm_ids

    tokens = ["[CLS]"] + document[0] + ["[SEP]"] + document[1] + ["[SEP]"]
    output, positions, labels = create_pretraining_data.create_masked_lm_predictions(
        tokens, 0.15, 20, vocab_words, random.Random(3))
    ids, lib_positions, lib_labels = pretraining_data.create_masked_lm_predictions(
        uncased_tokenizer.convert_tokens_to_ids(tokens), 0.15, 20, vocab, random.Random(3))
    assert uncased_tokenizer.convert_tokens_to_ids(output) == ids and positions == lib_positions
    assert labels == [tokens[p] for p in positions]

    tokens_a, tokens_b = list(document[0] * 3), list(document[1])
    expected = pretraining_data.truncate_seq_pair(tokens_a, tokens_b, 20, random.Random(5))
    assert create_pretraining_data.truncate_seq_pair(tokens_a, tokens_b, 20, random.Random(5)) is None
    assert (tokens_a, tokens_b) == expected and len(tokens_a) + len(tokens_b) == 20


# ----------------------------------------------------------------------------------------------------------------
# run_pretraining: the original's eval_results.txt
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.needs_tf215  # the original's code (TPUEstimator, tf.layers) or tf.estimator
def test_run_pretraining_names_give_the_original_eval_results(fixed_head_checkpoint, tmp_path):
    bert_config, _, init_checkpoint = _checkpoint_files(fixed_head_checkpoint)
    model_fn = run_pretraining.model_fn_builder(bert_config, init_checkpoint, 5e-5, 1, 1, False, False)
    estimator = _cpu_estimator(model_fn, str(tmp_path / "model"), train_batch_size=8, eval_batch_size=8)
    input_fn = run_pretraining.input_fn_builder([shared_path("golden", "pretraining", "sample.tfrecord")], 128, 20,
                                                is_training=False)
    result = estimator.evaluate(input_fn=input_fn, steps=10)
    golden = dict(line.split(" = ") for line in
                  open(shared_path("golden", "pretraining", "eval_results.txt")).read().splitlines())
    for name in ("loss", "masked_lm_accuracy", "masked_lm_loss", "next_sentence_accuracy", "next_sentence_loss"):
        assert result[name] == pytest.approx(float(golden[name]), abs=1e-4), name

    with tf.Graph().as_default():
        sequence = tf.constant(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
        gathered = run_pretraining.gather_indexes(sequence, tf.constant([[2, 0], [1, 1]]))
        with tf.Session() as session:
            np.testing.assert_array_equal(session.run(gathered), [[8, 9, 10, 11], [0, 1, 2, 3], [16, 17, 18, 19],
                                                                  [16, 17, 18, 19]])


# ----------------------------------------------------------------------------------------------------------------
# extract_features: the original's in-memory input_fn and prediction keys, the library's values
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.needs_tf215  # the original's code (TPUEstimator, tf.layers) or tf.estimator
def test_extract_features_names_match_the_library_extractor(minilm_checkpoint, tmp_path):
    bert_config, vocab_file, init_checkpoint = _checkpoint_files(minilm_checkpoint)
    pairs = _mrpc_pairs("dev", 3)
    input_file = tmp_path / "input.txt"
    input_file.write_text("".join(f"{a} ||| {b}\n" for a, b, _ in pairs) + pairs[0][0] + "\n", encoding="utf-8")

    examples = extract_features.read_examples(str(input_file))
    assert [e.unique_id for e in examples] == [0, 1, 2, 3] and examples[3].text_b is None
    tokenizer = tokenization.FullTokenizer(vocab_file=vocab_file, do_lower_case=True)
    features = extract_features.convert_examples_to_features(examples, 64, tokenizer)
    layer_indexes = [-1, -2]
    model_fn = extract_features.model_fn_builder(bert_config, init_checkpoint, layer_indexes, False, False)
    estimator = _cpu_estimator(model_fn, str(tmp_path / "model"), predict_batch_size=2)
    predictions = list(estimator.predict(extract_features.input_fn_builder(features, 64)))
    assert set(predictions[0]) == {"unique_id", "layer_output_0", "layer_output_1"}

    library = feature_extraction.extract_features([(a, b) for a, b, _ in pairs] + [pairs[0][0]],
                                                  bert_config, init_checkpoint, vocab_file, layers=layer_indexes,
                                                  max_seq_length=64, batch_size=2)
    for prediction, feature, (tokens, outputs) in zip(predictions, features, library):
        assert feature.tokens == tokens and int(prediction["unique_id"]) == feature.unique_id
        for i in range(len(layer_indexes)):
            np.testing.assert_allclose(prediction[f"layer_output_{i}"][:len(tokens)], outputs[i], atol=1e-4)


# ----------------------------------------------------------------------------------------------------------------
# The notebook (predicting_movie_reviews_with_bert_on_tf_hub.ipynb), on real MRPC sentences
# ----------------------------------------------------------------------------------------------------------------

MAX_SEQ_LENGTH = 64
BATCH_SIZE = 4


def _notebook_data(tokenizer):
    """The notebook's data preparation, verbatim in style: InputExample(guid=None, ...) per row."""
    label_list = [0, 1]
    train = [run_classifier.InputExample(guid=None, text_a=a, text_b=b, label=int(label))
             for a, b, label in _mrpc_pairs("train", 8)]
    test = [run_classifier.InputExample(guid=None, text_a=a, text_b=b, label=int(label))
            for a, b, label in _mrpc_pairs("dev", 4)]
    train_features = run_classifier.convert_examples_to_features(train, label_list, MAX_SEQ_LENGTH, tokenizer)
    test_features = run_classifier.convert_examples_to_features(test, label_list, MAX_SEQ_LENGTH, tokenizer)
    return label_list, train_features, test_features


def _notebook_head(pooled_output, labels, num_labels, is_predicting):
    """The notebook's classification layer on the pooled output; its variable names are the original's."""
    hidden_size = pooled_output.shape[-1]
    output_weights = tf.get_variable("output_weights", [num_labels, hidden_size],
                                     initializer=tf.truncated_normal_initializer(stddev=0.02))
    output_bias = tf.get_variable("output_bias", [num_labels], initializer=tf.zeros_initializer())
    with tf.variable_scope("loss"):
        if not is_predicting:
            pooled_output = tf.nn.dropout(pooled_output, keep_prob=0.9)
        logits = tf.nn.bias_add(tf.matmul(pooled_output, output_weights, transpose_b=True), output_bias)
        log_probs = tf.nn.log_softmax(logits, axis=-1)
        one_hot_labels = tf.one_hot(labels, depth=num_labels, dtype=tf.float32)
        predicted_labels = tf.squeeze(tf.argmax(log_probs, axis=-1, output_type=tf.int32))
        if is_predicting:
            return predicted_labels, log_probs
        loss = tf.reduce_mean(-tf.reduce_sum(one_hot_labels * log_probs, axis=-1))
        return loss, predicted_labels, log_probs


def _notebook_model_fn_builder(create_model, num_labels, learning_rate, num_train_steps, num_warmup_steps):
    """The notebook's model_fn_builder: its own create_model, the original's optimizer, a plain Estimator."""

    def model_fn(features, labels, mode, params):
        input_ids, input_mask = features["input_ids"], features["input_mask"]
        segment_ids, label_ids = features["segment_ids"], features["label_ids"]
        is_predicting = mode == tf.estimator.ModeKeys.PREDICT
        if not is_predicting:
            loss, predicted_labels, log_probs = create_model(is_predicting, input_ids, input_mask, segment_ids,
                                                             label_ids, num_labels)
            train_op = optimization.create_optimizer(loss, learning_rate, num_train_steps, num_warmup_steps,
                                                     use_tpu=False)
            if mode == tf.estimator.ModeKeys.TRAIN:
                return tf.estimator.EstimatorSpec(mode=mode, loss=loss, train_op=train_op)
            return tf.estimator.EstimatorSpec(mode=mode, loss=loss, eval_metric_ops={
                "eval_accuracy": tf.metrics.accuracy(label_ids, predicted_labels)})
        predicted_labels, log_probs = create_model(is_predicting, input_ids, input_mask, segment_ids, label_ids,
                                                   num_labels)
        return tf.estimator.EstimatorSpec(mode, predictions={"probabilities": log_probs, "labels": predicted_labels})

    return model_fn


def _train_and_predict(create_model, tokenizer, model_dir):
    label_list, train_features, test_features = _notebook_data(tokenizer)
    num_train_steps = len(train_features) // BATCH_SIZE
    model_fn = _notebook_model_fn_builder(create_model, len(label_list), 2e-5, num_train_steps,
                                          int(num_train_steps * 0.1))
    run_config = tf.estimator.RunConfig(model_dir=model_dir, save_summary_steps=100, save_checkpoints_steps=100,
                                        tf_random_seed=1)
    estimator = tf.estimator.Estimator(model_fn=model_fn, config=run_config, params={"batch_size": BATCH_SIZE})
    train_input_fn = run_classifier.input_fn_builder(features=train_features, seq_length=MAX_SEQ_LENGTH,
                                                     is_training=True, drop_remainder=False)
    estimator.train(input_fn=train_input_fn, max_steps=num_train_steps)
    test_input_fn = run_classifier.input_fn_builder(features=test_features, seq_length=MAX_SEQ_LENGTH,
                                                    is_training=False, drop_remainder=False)
    predictions = list(estimator.predict(test_input_fn))
    return test_features, estimator.get_variable_value("global_step"), predictions


@pytest.mark.slow
@pytest.mark.needs_tf215  # the original's code (TPUEstimator, tf.layers) or tf.estimator
def test_notebook_style_code_trains_and_predicts_with_bert_model(minilm_checkpoint, tmp_path):
    """The notebook with its hub.Module replaced by modeling.BertModel on the converted MiniLM; then the
    library's run_classifier.model_fn_builder predicts from the notebook's checkpoint and gives the same
    probabilities: the notebook's model is the original's classifier."""
    bert_config, vocab_file, init_checkpoint = _checkpoint_files(minilm_checkpoint)
    tokenizer = tokenization.FullTokenizer(vocab_file=vocab_file, do_lower_case=True)

    def create_model(is_predicting, input_ids, input_mask, segment_ids, labels, num_labels):
        model = modeling.BertModel(config=bert_config, is_training=not is_predicting, input_ids=input_ids,
                                   input_mask=input_mask, token_type_ids=segment_ids)
        assignment_map, _ = modeling.get_assignment_map_from_checkpoint(tf.trainable_variables(), init_checkpoint)
        tf.train.init_from_checkpoint(init_checkpoint, assignment_map)
        return _notebook_head(model.get_pooled_output(), labels, num_labels, is_predicting)

    model_dir = str(tmp_path / "notebook")
    test_features, global_step, predictions = _train_and_predict(create_model, tokenizer, model_dir)
    assert global_step == 2
    log_probs = np.array([p["probabilities"] for p in predictions])
    assert log_probs.shape == (4, 2)
    np.testing.assert_allclose(np.exp(log_probs).sum(axis=1), 1.0, atol=1e-5)
    assert [int(p["labels"]) for p in predictions] == list(log_probs.argmax(axis=1))

    library_fn = run_classifier.model_fn_builder(bert_config, 2, tf.train.latest_checkpoint(model_dir), 2e-5, None,
                                                 None, False, False)
    library = _cpu_estimator(library_fn, str(tmp_path / "library"), train_batch_size=8, predict_batch_size=8)
    input_fn = run_classifier.input_fn_builder(test_features, MAX_SEQ_LENGTH, False, False)
    probabilities = np.array([p["probabilities"] for p in library.predict(input_fn)])
    np.testing.assert_allclose(probabilities, np.exp(log_probs), atol=1e-5)


@pytest.mark.slow
@pytest.mark.needs_tf215  # hub.Module
def test_notebook_style_code_with_hub_module(minilm_checkpoint, tmp_path):
    """The notebook as written: hub.Module(trainable=True) with the "tokens" and "tokenization_info" signatures,
    on MiniLM exported as a TF1 Hub module by bert.interop.hub_module."""
    try:
        import tensorflow_hub as hub
    except ImportError:
        hub = None
    require(hub is not None, "tensorflow_hub (pip install .[hub], i.e. tensorflow-hub==0.15.0)")
    from bert.interop import hub_module
    _, vocab_file, init_checkpoint = _checkpoint_files(minilm_checkpoint)
    module_dir = str(tmp_path / "hub_module")
    hub_module.export_module(os.path.join(minilm_checkpoint, "bert_config.json"), init_checkpoint, vocab_file,
                             True, module_dir)

    with tf.Graph().as_default():
        info = hub.Module(module_dir)(signature="tokenization_info", as_dict=True)
        with tf.Session() as session:
            vocab, do_lower_case = session.run([info["vocab_file"], info["do_lower_case"]])
    tokenizer = tokenization.FullTokenizer(vocab_file=vocab.decode(), do_lower_case=bool(do_lower_case))

    def create_model(is_predicting, input_ids, input_mask, segment_ids, labels, num_labels):
        bert_module = hub.Module(module_dir, trainable=True)
        outputs = bert_module(inputs=dict(input_ids=input_ids, input_mask=input_mask, segment_ids=segment_ids),
                              signature="tokens", as_dict=True)
        return _notebook_head(outputs["pooled_output"], labels, num_labels, is_predicting)

    _, global_step, predictions = _train_and_predict(create_model, tokenizer, str(tmp_path / "notebook"))
    assert global_step == 2
    log_probs = np.array([p["probabilities"] for p in predictions])
    np.testing.assert_allclose(np.exp(log_probs).sum(axis=1), 1.0, atol=1e-5)
