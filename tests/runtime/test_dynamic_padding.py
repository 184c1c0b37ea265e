"""--dynamic_padding and --group_by_length: batches cut to their longest example give the fixed-length results."""

import json
import os
import random

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from helpers import TINY_VOCAB, make_tiny_model_dir, shared_path

from bert import modeling, tokenization
from bert.classifier import data as classifier_data
from bert.classifier import job as classifier_run
from bert.classifier import model as classifier_model
from bert.common.errors import UserError
from bert.pretraining import job as pretraining
from bert.runtime import input_pipeline, sequence_length
from bert.runtime.engine import make_estimator
from bert.runtime.outputs import read_key_value_results
from bert.runtime.sequence_length import LengthSettings
from bert.squad import job as squad_run
from bert.squad import model as squad_model

MAX_SEQ_LENGTH = 64
WORDS = [w for w in TINY_VOCAB[5:] if w.isalpha()]


@pytest.fixture(scope="module")
def no_dropout_model_dir(tmp_path_factory) -> str:
    return make_tiny_model_dir(str(tmp_path_factory.mktemp("tiny_no_dropout")), hidden_dropout_prob=0.0,
                               attention_probs_dropout_prob=0.0)


def _sentence(rng: random.Random, num_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(num_words))


@pytest.fixture(scope="module")
def mrpc_dir(tmp_path_factory) -> str:
    """An MRPC-format data set of pairs from 2 to ~45 tokens (a few longer than MAX_SEQ_LENGTH, truncated)."""
    path = str(tmp_path_factory.mktemp("mrpc_synthetic"))
    rng = random.Random(7)
    header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    for name, count in (("train.tsv", 96), ("dev.tsv", 27), ("test.tsv", 29)):
        with open(os.path.join(path, name), "w") as f:
            f.write(header)
            for i in range(count):
                length = rng.choice([1, 2, 3, 5, 8, 12, 20, 36])
                f.write(f"{rng.randint(0, 1)}\t{i}\t{i}\t{_sentence(rng, length)}\t"
                        f"{_sentence(rng, rng.randint(1, length))}\n")
    return path


def _records(path: str, lengths, max_seq_length: int = MAX_SEQ_LENGTH) -> str:
    """A classifier TFRecord whose example i has lengths[i] real tokens (ids = position + 1, label = i)."""
    rows = []
    for index, length in enumerate(lengths):
        pad = [0] * (max_seq_length - length)
        rows.append({"input_ids": list(range(1, length + 1)) + pad, "input_mask": [1] * length + pad,
                     "segment_ids": [0] * max_seq_length, "label_ids": index, "is_real_example": 1})
    input_pipeline.write_tfrecord(path, rows, classifier_data.classifier_feature_spec(max_seq_length))
    return path


def _batches(input_fn, batch_size: int, num_batches: int = None):
    with tf.Graph().as_default():
        tf.set_random_seed(3)
        dataset = input_fn({"batch_size": batch_size})
        shapes = tf.data.get_output_shapes(dataset)
        batch = tf.data.make_one_shot_iterator(dataset).get_next()
        out = []
        with tf.Session() as session:
            while num_batches is None or len(out) < num_batches:
                try:
                    out.append(session.run(batch))
                except tf.errors.OutOfRangeError:
                    break
    return shapes, out


# ---------------------------------------------------------------------------------------------------------------
# The input_fn
# ---------------------------------------------------------------------------------------------------------------


def test_batches_are_cut_to_their_longest_example_rounded_to_8(tmp_path):
    lengths = [3, 9, 2, 5, 64, 7, 30, 1, 17]
    path = _records(str(tmp_path / "r.tf_record"), lengths)
    settings = LengthSettings(MAX_SEQ_LENGTH, dynamic_padding=True)
    shapes, cut = _batches(classifier_data.file_based_input_fn_builder(path, MAX_SEQ_LENGTH, False, False,
                                                                       lengths=settings), 3)
    _, full = _batches(classifier_data.file_based_input_fn_builder(path, MAX_SEQ_LENGTH, False, False), 3)
    assert shapes["input_ids"].as_list() == [None, None]
    assert [b["input_ids"].shape for b in cut] == [(3, 16), (3, 64), (3, 32)]
    for cut_batch, full_batch in zip(cut, full):
        width = cut_batch["input_ids"].shape[1]
        for name in ("input_ids", "input_mask", "segment_ids"):
            np.testing.assert_array_equal(cut_batch[name], full_batch[name][:, :width])
            assert not full_batch["input_mask"][:, width:].any()  # only padding was cut
        np.testing.assert_array_equal(cut_batch["label_ids"], full_batch["label_ids"])


def test_default_keeps_static_full_length_batches(tmp_path):
    path = _records(str(tmp_path / "r.tf_record"), [3, 4, 5, 6])
    shapes, batches = _batches(classifier_data.file_based_input_fn_builder(path, MAX_SEQ_LENGTH, False, True), 2)
    assert shapes["input_ids"].as_list() == [2, MAX_SEQ_LENGTH]
    assert all(b["input_ids"].shape == (2, MAX_SEQ_LENGTH) for b in batches)


def test_xla_uses_bucket_lengths(tmp_path):
    settings = LengthSettings.for_run(128, dynamic_padding=True, use_xla=True)
    assert settings.buckets == (32, 64, 96, 128)
    assert sequence_length.bucket_lengths(100) == (32, 64, 96, 100)
    path = _records(str(tmp_path / "r.tf_record"), [3, 9, 33, 40, 120, 2, 64, 65], max_seq_length=128)
    _, batches = _batches(classifier_data.file_based_input_fn_builder(path, 128, False, False, lengths=settings), 2)
    assert [b["input_ids"].shape[1] for b in batches] == [32, 64, 128, 96]
    assert LengthSettings.for_run(128, dynamic_padding=True).buckets is None


def test_tpu_and_group_without_dynamic_padding_are_refused():
    with pytest.raises(UserError, match="--dynamic_padding does not work with --use_tpu"):
        LengthSettings.for_run(128, dynamic_padding=True, use_tpu=True)
    with pytest.raises(UserError, match="--group_by_length needs --dynamic_padding"):
        LengthSettings.for_run(128, dynamic_padding=False, group_by_length=True)
    assert LengthSettings.for_run(128, dynamic_padding=False, use_tpu=True) == LengthSettings(128)


def test_group_by_length_yields_every_example_in_batches_of_similar_length_in_shuffled_order(tmp_path):
    rng = np.random.RandomState(0)
    num_examples, batch_size = 400, 4
    lengths = rng.randint(1, MAX_SEQ_LENGTH + 1, num_examples).tolist()
    path = _records(str(tmp_path / "r.tf_record"), lengths)
    settings = LengthSettings(MAX_SEQ_LENGTH, dynamic_padding=True, group_by_length=True)
    # Three epochs' worth of batches: the stream shuffles cross epochs (as the original's repeat-then-shuffle),
    # so the count is checked over several (the finite-set test below checks exactly once).
    num_batches = 3 * num_examples // batch_size
    _, grouped = _batches(classifier_data.file_based_input_fn_builder(path, MAX_SEQ_LENGTH, True, True,
                                                                      lengths=settings), batch_size, num_batches)
    _, plain = _batches(classifier_data.file_based_input_fn_builder(path, MAX_SEQ_LENGTH, True, True,
                                                                    lengths=LengthSettings(MAX_SEQ_LENGTH, True)),
                        batch_size, num_batches)
    seen = np.concatenate([b["label_ids"] for b in grouped])
    counts = np.bincount(seen, minlength=num_examples)
    assert counts.min() >= 1 and counts.sum() == 3 * num_examples

    def spread(batch):
        real = batch["input_mask"].sum(axis=1)
        return real.max() - real.min()

    assert np.mean([spread(b) for b in grouped]) < 0.2 * np.mean([spread(b) for b in plain])
    widths = [b["input_ids"].shape[1] for b in grouped]
    assert np.mean(widths) < 0.8 * np.mean([b["input_ids"].shape[1] for b in plain])
    assert widths != sorted(widths)  # the batch order is shuffled, not shortest first
    assert all(b["input_ids"].shape[0] == batch_size for b in grouped)


def test_group_batches_by_length_on_a_finite_set_covers_each_example_once():
    with tf.Graph().as_default():
        lengths = [5, 1, 9, 3, 7, 2, 8, 4, 6, 10, 11]
        masks = [[1] * n + [0] * (12 - n) for n in lengths]
        examples = tf.data.Dataset.from_tensor_slices({"input_mask": masks, "label_ids": list(range(11))})
        batches = sequence_length.group_batches_by_length(examples, batch_size=2, drop_remainder=False,
                                                          batches_per_group=3)
        batch = tf.data.make_one_shot_iterator(batches).get_next()
        seen = []
        with tf.Session() as session:
            try:
                while True:
                    values = session.run(batch)
                    real = values["input_mask"].sum(axis=1)
                    seen.append(list(values["label_ids"]))
                    assert len(real) in (1, 2)
            except tf.errors.OutOfRangeError:
                pass
    assert sorted(i for b in seen for i in b) == list(range(11))
    # Windows of 6 examples sorted: each batch pairs neighbours in its window's length order.
    windows = [sorted(range(6), key=lambda i: lengths[i]), sorted(range(6, 11), key=lambda i: lengths[i])]
    expected = {tuple(w[k:k + 2]) for w in windows for k in range(0, len(w), 2)}
    assert {tuple(b) for b in seen} == expected


def test_order_by_length_and_restore_order():
    order = sequence_length.order_by_length([5, 2, 9, 2, 1])
    assert order == [4, 1, 3, 0, 2]
    assert sequence_length.restore_order(["e", "b", "d", "a", "c"], order) == ["a", "b", "c", "d", "e"]
    with pytest.raises(ValueError):
        sequence_length.restore_order(["a"], order)
    # Evaluation keeps the last partial batch (here index 4, batch 2) in place.
    assert sequence_length.order_for_evaluation([5, 2, 9, 2, 1], batch_size=2) == [1, 3, 0, 2, 4]


def test_model_takes_a_sequence_length_known_only_at_run_time(no_dropout_model_dir):
    config = modeling.BertConfig.from_json_file(os.path.join(no_dropout_model_dir, "bert_config.json"))
    rng = np.random.RandomState(1)
    ids = rng.randint(5, config.vocab_size, (3, 40)).astype(np.int32)
    mask = np.zeros((3, 40), np.int32)
    for row, n in enumerate([11, 3, 16]):
        mask[row, :n] = 1
    with tf.Graph().as_default():
        input_ids = tf.placeholder(tf.int32, [None, None])
        input_mask = tf.placeholder(tf.int32, [None, None])
        model = modeling.BertModel(config, is_training=False, input_ids=input_ids, input_mask=input_mask)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            outputs = [session.run([model.get_pooled_output(), model.get_sequence_output()],
                                   {input_ids: ids[:, :n], input_mask: mask[:, :n]}) for n in (40, 16)]
    np.testing.assert_allclose(outputs[1][0], outputs[0][0], atol=1e-5)
    np.testing.assert_allclose(outputs[1][1], outputs[0][1][:, :16], atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# Classifier: training losses, eval and predict files
# ---------------------------------------------------------------------------------------------------------------


class _StepRecorder(tf.train.SessionRunHook):
    """Fetches each training step's loss and input_ids shape (put in collections by `_recording`)."""

    def __init__(self):
        self.losses, self.shapes = [], []

    def before_run(self, run_context):
        return tf.train.SessionRunArgs([tf.get_collection("test_loss")[0],
                                        tf.get_collection("test_input_ids_shape")[0]])

    def after_run(self, run_context, run_values):
        loss, shape = run_values.results
        self.losses.append(float(loss))
        self.shapes.append(tuple(shape))


def _recording(model_fn):
    def wrapped(features, labels, mode, params):
        spec = model_fn(features, labels, mode, params)
        tf.add_to_collection("test_loss", spec.loss)
        tf.add_to_collection("test_input_ids_shape", tf.shape(features["input_ids"]))
        return spec

    return wrapped


def _train_steps(model_dir: str, data_dir: str, output_dir: str, lengths: LengthSettings, num_steps: int = 5):
    """Trains the tiny classifier as classifier_run does (same records, model_fn, estimator, input_fn); returns
    each step's (loss, input_ids shape)."""
    options = classifier_run.ClassifierOptions(
        task_name="MRPC", data_dir=data_dir, bert_config_file=os.path.join(model_dir, "bert_config.json"),
        vocab_file=os.path.join(model_dir, "vocab.txt"), output_dir=output_dir,
        init_checkpoint=os.path.join(model_dir, "bert_model.ckpt"), max_seq_length=MAX_SEQ_LENGTH,
        train_batch_size=8, learning_rate=1e-3, dynamic_padding=lengths.dynamic_padding)
    options.run.seed = 12345
    processor = classifier_data.get_processor("MRPC")
    tokenizer = tokenization.FullTokenizer(options.vocab_file, do_lower_case=True)
    config = modeling.BertConfig.from_json_file(options.bert_config_file)
    model_fn = classifier_model.model_fn_builder(config, 2, options.init_checkpoint, options.learning_rate,
                                                 num_steps, 1, False, False)
    estimator = make_estimator(_recording(model_fn), options.run, train_batch_size=8)
    phase = classifier_run._Phase(options, processor, tokenizer, estimator)
    path = phase._write_records(processor.get_train_examples(data_dir), "train.tf_record")
    recorder = _StepRecorder()
    estimator.train(phase._input_fn(path, is_training=True), max_steps=num_steps, hooks=[recorder])
    return recorder.losses, recorder.shapes


@pytest.mark.slow
def test_training_losses_with_dynamic_padding_equal_the_fixed_length_run(no_dropout_model_dir, mrpc_dir, tmp_path,
                                                                         monkeypatch):
    monkeypatch.setattr(classifier_model, "HEAD_DROPOUT_RATE", 0.0)
    fixed_losses, fixed_shapes = _train_steps(no_dropout_model_dir, mrpc_dir, str(tmp_path / "fixed"),
                                              LengthSettings(MAX_SEQ_LENGTH))
    cut_losses, cut_shapes = _train_steps(no_dropout_model_dir, mrpc_dir, str(tmp_path / "cut"),
                                          LengthSettings(MAX_SEQ_LENGTH, dynamic_padding=True))
    assert len(fixed_losses) == len(cut_losses) == 5
    np.testing.assert_allclose(cut_losses, fixed_losses, atol=1e-5, rtol=0)
    assert len(set(fixed_losses)) == 5  # the steps really differ (training moves, batches change)
    assert set(fixed_shapes) == {(8, MAX_SEQ_LENGTH)}
    assert all(shape[0] == 8 and shape[1] % 8 == 0 for shape in cut_shapes)
    assert any(shape[1] < MAX_SEQ_LENGTH for shape in cut_shapes)


def _classifier_options(model_dir: str, data_dir: str, output_dir: str, init_checkpoint: str, **kwargs):
    return classifier_run.ClassifierOptions(
        task_name="MRPC", data_dir=data_dir, bert_config_file=os.path.join(model_dir, "bert_config.json"),
        vocab_file=os.path.join(model_dir, "vocab.txt"), output_dir=output_dir, init_checkpoint=init_checkpoint,
        max_seq_length=MAX_SEQ_LENGTH, eval_batch_size=4, predict_batch_size=4, **kwargs)


@pytest.fixture(scope="module")
def trained_classifier(tiny_model_dir, mrpc_dir, tmp_path_factory) -> str:
    """A tiny fine-tuned classifier checkpoint (encoder and head), so runs without training share every weight."""
    output_dir = str(tmp_path_factory.mktemp("trained_classifier"))
    options = _classifier_options(tiny_model_dir, mrpc_dir, output_dir,
                                  os.path.join(tiny_model_dir, "bert_model.ckpt"), do_train=True,
                                  num_train_epochs=0.3, train_batch_size=8)
    classifier_run.run(options)
    return tf.train.latest_checkpoint(output_dir)


@pytest.mark.slow
def test_classifier_eval_and_predict_files_equal_the_fixed_length_run(tiny_model_dir, mrpc_dir, trained_classifier,
                                                                      tmp_path):
    outputs = {}
    for name, dynamic in (("fixed", False), ("cut", True)):
        output_dir = str(tmp_path / name)
        classifier_run.run(_classifier_options(tiny_model_dir, mrpc_dir, output_dir, trained_classifier,
                                               do_eval=True, do_predict=True, dynamic_padding=dynamic))
        outputs[name] = (read_key_value_results(os.path.join(output_dir, "eval_results.txt")),
                         np.loadtxt(os.path.join(output_dir, "test_results.tsv")))
    (fixed_eval, fixed_test), (cut_eval, cut_test) = outputs["fixed"], outputs["cut"]
    assert fixed_eval.keys() == cut_eval.keys()
    for key in fixed_eval:
        np.testing.assert_allclose(float(cut_eval[key]), float(fixed_eval[key]), atol=1e-5, rtol=0, err_msg=key)
    assert fixed_test.shape == (29, 2)
    np.testing.assert_allclose(cut_test, fixed_test, atol=1e-5, rtol=0)
    # The cut run wrote its records shortest first.
    spec = classifier_data.classifier_feature_spec(MAX_SEQ_LENGTH)
    written = [r["input_mask"].sum() for r in input_pipeline.read_tfrecord(str(tmp_path / "cut" /
                                                                               "predict.tf_record"), spec)]
    assert written[:28] == sorted(written[:28]) and len(set(written)) > 3  # the last, partial batch stays last


def test_classifier_refuses_dynamic_padding_on_tpu(tiny_model_dir, mrpc_dir, tmp_path):
    options = _classifier_options(tiny_model_dir, mrpc_dir, str(tmp_path),
                                  os.path.join(tiny_model_dir, "bert_model.ckpt"), do_eval=True, dynamic_padding=True)
    options.run.use_tpu = True
    with pytest.raises(UserError, match="use_tpu"):
        classifier_run.run(options)


# ---------------------------------------------------------------------------------------------------------------
# SQuAD predict and pre-training eval
# ---------------------------------------------------------------------------------------------------------------


def _checkpoint_with_heads(model_dir: str, out_dir: str, build_heads) -> str:
    """`model_dir`'s checkpoint plus seeded task-head variables made by `build_heads(config)`."""
    config = modeling.BertConfig.from_json_file(os.path.join(model_dir, "bert_config.json"))
    with tf.Graph().as_default():
        tf.set_random_seed(5)
        build_heads(config)
        tf.train.init_from_checkpoint(os.path.join(model_dir, "bert_model.ckpt"), {"bert/": "bert/"})
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            return tf.train.Saver().save(session, os.path.join(out_dir, "model.ckpt"), write_meta_graph=False)


def test_squad_prediction_files_equal_the_fixed_length_run(tiny_model_dir, tmp_path):
    data = json.load(open(shared_path("data", "squad", "squad_public.json")))
    article = data["data"][0]
    article["paragraphs"] = article["paragraphs"][:3]
    predict_file = str(tmp_path / "small.json")
    json.dump({"version": data.get("version", "v2.0"), "data": [article]}, open(predict_file, "w"))

    def squad_heads(config):
        ids = tf.zeros([1, 8], tf.int32)
        squad_model.create_model(config, False, ids, tf.ones_like(ids), tf.zeros_like(ids), False)

    checkpoint = _checkpoint_with_heads(tiny_model_dir, str(tmp_path), squad_heads)
    outputs = {}
    for name, dynamic in (("fixed", False), ("cut", True)):
        output_dir = str(tmp_path / name)
        squad_run.run(squad_run.SquadOptions(
            bert_config_file=os.path.join(tiny_model_dir, "bert_config.json"),
            vocab_file=os.path.join(tiny_model_dir, "vocab.txt"), output_dir=output_dir, predict_file=predict_file,
            init_checkpoint=checkpoint, max_seq_length=MAX_SEQ_LENGTH, doc_stride=24, max_query_length=16,
            do_predict=True, predict_batch_size=8, version_2_with_negative=True, dynamic_padding=dynamic))
        outputs[name] = {f: json.load(open(os.path.join(output_dir, f)))
                         for f in ("predictions.json", "nbest_predictions.json", "null_odds.json")}
    assert outputs["cut"]["predictions.json"] == outputs["fixed"]["predictions.json"]
    assert outputs["cut"]["null_odds.json"].keys() == outputs["fixed"]["null_odds.json"].keys()
    np.testing.assert_allclose(list(outputs["cut"]["null_odds.json"].values()),
                               list(outputs["fixed"]["null_odds.json"].values()), atol=1e-5, rtol=0)
    fixed_nbest, cut_nbest = outputs["fixed"]["nbest_predictions.json"], outputs["cut"]["nbest_predictions.json"]
    assert fixed_nbest.keys() == cut_nbest.keys() and len(fixed_nbest) > 10
    for qid in fixed_nbest:
        assert [e["text"] for e in cut_nbest[qid]] == [e["text"] for e in fixed_nbest[qid]]
        for key in ("probability", "start_logit", "end_logit"):
            np.testing.assert_allclose([e[key] for e in cut_nbest[qid]], [e[key] for e in fixed_nbest[qid]],
                                       atol=1e-5, rtol=0)
    spec = squad_run.squad.feature_spec(MAX_SEQ_LENGTH, is_training=False)
    written = [r["input_mask"].sum() for r in input_pipeline.read_tfrecord(str(tmp_path / "cut" /
                                                                               "eval.tf_record"), spec)]
    assert written == sorted(written) and written[0] < MAX_SEQ_LENGTH - 8


def test_pretraining_eval_with_dynamic_padding_equals_the_fixed_length_run(tmp_path):
    records = shared_path("golden", "pretraining", "sample.tfrecord")
    model_dir = make_tiny_model_dir(str(tmp_path / "model"), vocab_size=30522, max_position_embeddings=128)

    def pretraining_heads(config):
        ids = tf.zeros([1, 8], tf.int32)
        model = modeling.BertModel(config, False, ids)
        positions = tf.zeros([1, 2], tf.int32)
        pretraining.get_masked_lm_output(config, model.get_sequence_output(), model.get_embedding_table(),
                                         positions, positions, tf.ones([1, 2]))
        pretraining.get_next_sentence_output(config, model.get_pooled_output(), tf.zeros([1], tf.int32))

    checkpoint = _checkpoint_with_heads(model_dir, str(tmp_path), pretraining_heads)
    results = {}
    for name, dynamic in (("fixed", False), ("cut", True)):
        results[name] = pretraining.run(pretraining.PretrainingOptions(
            bert_config_file=os.path.join(model_dir, "bert_config.json"), input_file=records,
            output_dir=str(tmp_path / name), init_checkpoint=checkpoint, do_eval=True, eval_batch_size=8,
            max_eval_steps=4, dynamic_padding=dynamic))
    assert results["fixed"].keys() == results["cut"].keys()
    for key in ("masked_lm_accuracy", "masked_lm_loss", "next_sentence_accuracy", "next_sentence_loss"):
        np.testing.assert_allclose(float(results["cut"][key]), float(results["fixed"][key]), atol=1e-5, rtol=0,
                                   err_msg=key)
