"""The exported SQuAD model takes a question and its context as raw strings: the `text` signature cuts the windows,
runs the model and picks the answer in the graph, and gives run_squad's predictions.json answers and null odds
with the answer's characters in the context."""

import glob
import json
import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from helpers import make_tiny_model_dir, shared_path
from task_data import squad_options, write_squad_data

from bert.runtime import export
from bert.runtime.options import RunSettings
from bert.squad import job as squad_run

pytestmark = pytest.mark.slow  # each needs a model fine-tuned for it


def answer_with_text_signature(export_dir, questions):
    saved_model = sorted(glob.glob(os.path.join(export_dir, "[0-9]*")))[-1]
    return export.predict_with_saved_model(saved_model, {"question": [question for _, question, _ in questions],
                                                         "context": [context for _, _, context in questions]},
                                           export.TEXT_SIGNATURE_KEY)


def assert_answers_are_run_squads(outputs, questions, predictions, nbest, null_odds):
    """Each answer is predictions.json's, lies at [start, end) in its context, scores as the n-best's best
    non-null entry, and (2.0) its null score difference is null_odds.json's."""
    for index, (qid, _, context) in enumerate(questions):
        answer = outputs["answer"][index].decode("utf-8")
        start, end = outputs["start"][index], outputs["end"][index]
        assert answer == predictions[qid], qid
        assert context[start:end] == answer, qid
        best = next(entry for entry in nbest[qid] if entry["text"])
        if answer:
            assert outputs["score"][index] == pytest.approx(best["start_logit"] + best["end_logit"], abs=1e-4)
        if null_odds is not None:
            assert outputs["null_score_diff"][index] == pytest.approx(null_odds[qid], abs=1e-4), qid
        else:
            assert "null_score_diff" not in outputs


def test_answers_equal_run_squads_over_several_windows(trained_squad_run):
    """SQuAD 2.0, contexts cut into several windows of 48 (some answers "")."""
    run = trained_squad_run
    outputs = answer_with_text_signature(run["export_dir"], run["questions"])
    assert_answers_are_run_squads(outputs, run["questions"], run["predictions"], run["nbest"], run["null_odds"])


@pytest.fixture(scope="module")
def real_vocab_checkpoint(tmp_path_factory):
    """A tiny random BERT with the real uncased vocabulary (so that real text becomes real WordPiece tokens), its
    span head trained a few steps on synthetic SQuAD 2.0 data: (model folder, checkpoint)."""
    root = tmp_path_factory.mktemp("real_vocab")
    vocab = open(shared_path("data", "vocab", "bert_uncased_vocab.txt"), encoding="utf-8").read().splitlines()
    model = make_tiny_model_dir(str(root / "model"), vocab_words=vocab, max_position_embeddings=64)
    output_dir = root / "trained"
    squad_run.run(squad_options(
        model, output_dir, init_checkpoint=f"{model}/bert_model.ckpt", do_train=True, max_seq_length=64,
        train_file=write_squad_data(root / "train.json", num_paragraphs=4, seed=0), train_batch_size=8,
        version_2_with_negative=True, run=RunSettings(output_dir=str(output_dir), seed=1)))
    return model, tf.train.latest_checkpoint(str(output_dir))


@pytest.mark.parametrize("version_2_with_negative", [False, True])
def test_answers_equal_run_squads_on_real_articles(real_vocab_checkpoint, tmp_path, version_2_with_negative):
    """626 questions on 87 real Wikipedia paragraphs (accents, quotes, dashes, numbers), 6-10 windows each: the
    graph's windows, maximal-context rule, n-best and character offsets against run_squad's files."""
    model, checkpoint = real_vocab_checkpoint
    squad_file = shared_path("data", "squad", "squad_public.json")
    output_dir, export_dir = tmp_path / "out", tmp_path / "export"

    def run(output_dir, **overrides):
        squad_run.run(squad_options(
            model, output_dir, init_checkpoint=checkpoint, predict_file=squad_file, max_seq_length=64,
            doc_stride=24, max_query_length=16, version_2_with_negative=version_2_with_negative, do_predict=True,
            run=RunSettings(output_dir=str(output_dir), seed=1), **overrides))

    def load(name):
        return json.loads((output_dir / f"{name}.json").read_text(encoding="utf-8"))

    threshold = 0.0
    if version_2_with_negative:  # a threshold at the median null odds: half the questions get no answer
        run(tmp_path / "first")
        odds = json.loads((tmp_path / "first" / "null_odds.json").read_text(encoding="utf-8"))
        threshold = float(np.median(list(odds.values())))
    run(output_dir, null_score_diff_threshold=threshold, export_dir=str(export_dir))
    with open(squad_file, encoding="utf-8") as reader:
        articles = json.load(reader)["data"]
    questions = [(qa["id"], qa["question"], paragraph["context"])
                 for article in articles for paragraph in article["paragraphs"] for qa in paragraph["qas"]]
    outputs = answer_with_text_signature(str(export_dir), questions)
    assert_answers_are_run_squads(outputs, questions, load("predictions"), load("nbest_predictions"),
                                  load("null_odds") if version_2_with_negative else None)
    if version_2_with_negative:
        assert {bool(answer) for answer in outputs["answer"]} == {True, False}
