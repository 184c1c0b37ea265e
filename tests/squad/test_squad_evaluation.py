"""The SQuAD evaluator: official v1.1 / v2.0 numbers on hand-made cases, the command line, bad input."""

import json
import os
import subprocess
import sys

import pytest

from bert.squad import evaluation as squad_evaluation
from helpers import REPO_ROOT

SCRIPT = os.path.join(REPO_ROOT, "scripts", "evaluate_squad.py")


def dataset(questions, version):
    qas = [{"id": qid, "question": "?", "answers": [{"text": text, "answer_start": 0} for text in answers]}
           for qid, answers in questions]
    return {"version": version, "data": [{"title": "t", "paragraphs": [{"context": "c", "qas": qas}]}]}


V1_QUESTIONS = [
    ("q1", ["The Eiffel Tower", "Eiffel Tower"]),
    ("q2", ["Paris, France"]),
    ("q3", ["a dog", "two cats"]),
    ("q4", ["1889"]),
]
V1_PREDICTIONS = {"q1": "eiffel  tower!", "q2": "Paris", "q3": "the two cats and a dog"}

V2_QUESTIONS = [
    ("a1", ["Denver Broncos", "the Broncos"]),
    ("a2", ["1905"]),
    ("a3", ["red car"]),
    ("n1", []),
    ("n2", []),
]
V2_PREDICTIONS = {"a1": "Broncos", "a2": "", "a3": "a red truck", "n1": "", "n2": "something"}
NA_PROBS = {"a1": 0.1, "a2": 0.9, "a3": 0.3, "n1": 0.8, "n2": 0.95}


@pytest.mark.parametrize("text,expected", [
    ("The  Eiffel Tower!", "eiffel tower"),
    ("an apple, a pear & the end.", "apple pear end"),
    ("Theatre anthem", "theatre anthem"),  # articles only as whole words
    ("", ""),
])
def test_normalize_answer(text, expected):
    assert squad_evaluation.normalize_answer(text) == expected


def test_v1_takes_best_gold_answer_and_counts_missing_as_wrong(capsys):
    results = squad_evaluation.evaluate_v1(dataset(V1_QUESTIONS, "1.1")["data"], V1_PREDICTIONS)
    # q1 exact; q2 F1 2/3 (paris vs paris france); q3 best gold "two cats": precision 2/4, recall 1 -> 2/3; q4 0.
    assert results == {"exact_match": 25.0, "f1": pytest.approx(100.0 * (1 + 2 / 3 + 2 / 3) / 4)}
    assert "1 of 4 questions have no prediction and will receive score 0 (q4)" in capsys.readouterr().err


def test_v1_and_v2_differ_on_empty_answers_as_official():
    data = dataset([("q", ["the"])], "1.1")["data"]
    # v1.1: both normalize to "" -> exact 1 but F1 0 (no common token); v2.0 treats "" as no-answer, F1 1.
    assert squad_evaluation.evaluate_v1(data, {"q": "a"}) == {"exact_match": 100.0, "f1": 0.0}
    assert squad_evaluation.f1_score("a", "the") == 1.0


def test_v2_has_answer_and_no_answer_split():
    results = squad_evaluation.evaluate_v2(dataset(V2_QUESTIONS, "v2.0")["data"], V2_PREDICTIONS)
    assert list(results) == ["exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total", "NoAns_exact",
                             "NoAns_f1", "NoAns_total"]
    assert results["exact"] == 40.0 and results["f1"] == 50.0 and results["total"] == 5
    assert results["HasAns_exact"] == pytest.approx(100 / 3) and results["HasAns_f1"] == 50.0
    assert results["HasAns_total"] == 3
    assert (results["NoAns_exact"], results["NoAns_f1"], results["NoAns_total"]) == (50.0, 50.0, 2)


def test_v2_best_threshold_and_na_prob_thresh():
    data = dataset(V2_QUESTIONS, "v2.0")["data"]
    results = squad_evaluation.evaluate_v2(data, V2_PREDICTIONS, NA_PROBS)
    assert results["exact"] == 40.0 and results["f1"] == 50.0  # nothing exceeds the default threshold 1.0
    # Sweep from "all unanswerable" (2 right): a1 +1 at 0.1, a3 +0.5 F1 at 0.3, n1 +0, a2 +0, n2 -1.
    assert (results["best_exact"], results["best_exact_thresh"]) == (60.0, 0.1)
    assert (results["best_f1"], results["best_f1_thresh"]) == (70.0, 0.3)
    results = squad_evaluation.evaluate_v2(data, V2_PREDICTIONS, NA_PROBS, na_prob_thresh=0.85)
    # a2 (0.9) and n2 (0.95) are now predicted unanswerable: a2 stays wrong, n2 becomes right.
    assert results["exact"] == 60.0 and results["f1"] == 70.0 and results["NoAns_exact"] == 100.0


def test_v2_missing_prediction_counts_as_wrong(capsys):
    predictions = {k: v for k, v in V2_PREDICTIONS.items() if k != "a1"}
    results = squad_evaluation.evaluate_v2(dataset(V2_QUESTIONS, "v2.0")["data"], predictions)
    assert results["total"] == 5 and results["exact"] == 20.0 and results["f1"] == 30.0
    assert results["HasAns_total"] == 3 and results["HasAns_f1"] == pytest.approx(50 / 3)
    assert "1 of 5 questions have no prediction and will receive score 0 (a1)" in capsys.readouterr().err


def test_extra_predictions_are_ignored_and_missing_ones_score_zero_as_official(capsys):
    # Official v1.1: total counts every question of the data file; ids not in it are never looked at.
    predictions = {"q1": "eiffel tower", "q2": "Paris", "zz": "x", "yy": "y"}
    results = squad_evaluation.evaluate_v1(dataset(V1_QUESTIONS, "1.1")["data"], predictions)
    assert results == {"exact_match": 25.0, "f1": pytest.approx(100.0 * (1 + 2 / 3) / 4)}
    err = capsys.readouterr().err
    assert "Ignoring 2 predictions for question ids that are not in the data file (zz, yy)" in err
    assert "2 of 4 questions have no prediction and will receive score 0 (q3, q4)" in err
    # Official v2.0 with extra ids in the predictions and na_prob files: the same numbers as without them.
    data = dataset(V2_QUESTIONS, "v2.0")["data"]
    with_extra = squad_evaluation.evaluate_v2(data, dict(V2_PREDICTIONS, zz="x"), dict(NA_PROBS, zz=0.0))
    assert with_extra == squad_evaluation.evaluate_v2(data, V2_PREDICTIONS, NA_PROBS)
    assert (with_extra["exact"], with_extra["best_exact"], with_extra["best_f1_thresh"]) == (40.0, 60.0, 0.3)
    # A data file holding part of the dev set, scored with the whole set's predictions: a1 and n1 are right.
    part = dataset([("a1", ["Denver Broncos", "the Broncos"]), ("n1", [])], "v2.0")["data"]
    results = squad_evaluation.evaluate_v2(part, V2_PREDICTIONS, NA_PROBS)
    assert (results["exact"], results["f1"], results["total"]) == (100.0, 100.0, 2)
    assert (results["HasAns_total"], results["NoAns_total"]) == (1, 1)
    assert (results["best_exact"], results["best_exact_thresh"]) == (100.0, 0.1)


def test_only_predictions_sharing_no_id_are_an_error():
    with pytest.raises(ValueError, match=r"the predictions file shares no question id with the data file"):
        squad_evaluation.evaluate_v1(dataset(V1_QUESTIONS, "1.1")["data"], {"q9": "x"})
    with pytest.raises(ValueError, match="shares no question id"):
        squad_evaluation.evaluate_v2(dataset(V2_QUESTIONS, "v2.0")["data"], {})
    with pytest.raises(ValueError, match="no value for 1 questions"):
        squad_evaluation.evaluate_v2(dataset(V2_QUESTIONS, "v2.0")["data"], V2_PREDICTIONS, {k: v for k, v in NA_PROBS.items() if k != "n2"})


def write_json(path, value):
    path.write_text(json.dumps(value), encoding="utf-8")
    return str(path)


def run_script(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=120)


def test_command_line_v2_with_na_prob_file(tmp_path):
    data = write_json(tmp_path / "dev.json", dataset(V2_QUESTIONS, "v2.0"))
    preds = write_json(tmp_path / "predictions.json", V2_PREDICTIONS)
    na = write_json(tmp_path / "null_odds.json", NA_PROBS)
    completed = run_script(data, preds, "--na-prob-file", na)
    assert completed.returncode == 0, completed.stderr
    results = json.loads(completed.stdout)
    assert results["exact"] == 40.0 and results["best_f1"] == 70.0 and results["best_f1_thresh"] == 0.3
    completed = run_script(data, preds, "--na-prob-file", na, "--na-prob-thresh", "0.85")
    assert json.loads(completed.stdout)["exact"] == 60.0


def test_command_line_v1(tmp_path):
    data = write_json(tmp_path / "dev.json", dataset(V1_QUESTIONS, "1.1"))
    preds = write_json(tmp_path / "predictions.json", V1_PREDICTIONS)
    completed = run_script(data, preds)
    assert completed.returncode == 0, completed.stderr
    results = json.loads(completed.stdout)
    assert list(results) == ["exact_match", "f1"] and results["exact_match"] == 25.0


def test_command_line_errors(tmp_path):
    data = write_json(tmp_path / "dev.json", dataset(V2_QUESTIONS, "v2.0"))
    nbest = write_json(tmp_path / "nbest.json", {"a1": [{"text": "x"}]})
    completed = run_script(data, nbest)
    assert completed.returncode == 1
    assert "the value for question a1 is a list, expected an answer string" in completed.stderr
    broken = tmp_path / "broken.json"
    broken.write_text('{"a1": "x",\n"a2": }', encoding="utf-8")
    completed = run_script(data, str(broken))
    assert completed.returncode == 1 and "broken.json is not valid JSON" in completed.stderr
    assert "line 2, column 7" in completed.stderr
    completed = run_script(data, str(tmp_path / "absent.json"))
    assert completed.returncode == 1 and "absent.json not found" in completed.stderr


def test_version_detection(tmp_path):
    assert squad_evaluation.squad_version({"version": "1.1"}) == 1
    assert squad_evaluation.squad_version({"version": "v2.0"}) == 2
    with pytest.raises(ValueError, match="cannot tell the SQuAD version"):
        squad_evaluation.squad_version({"data": []})
    data = write_json(tmp_path / "dev.json", dataset(V1_QUESTIONS, "1.1"))
    preds = write_json(tmp_path / "predictions.json", V1_PREDICTIONS)
    with pytest.raises(ValueError, match="applies to SQuAD 2.0 only"):
        squad_evaluation.evaluate_files(data, preds, na_prob_file=preds)
