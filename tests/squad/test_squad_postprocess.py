"""SQuAD post-processing: n-best lists, answer de-tokenization, SQuAD 2.0 null handling and the output files."""

import json
import math

import pytest

from bert.squad import data as squad
from bert.squad import postprocess as squad_postprocess
from bert.squad.postprocess import PredictionOptions, RawResult

# One window: [CLS] who ? [SEP] steve smith ' s dog [SEP]; document words "Steve", "Smith's", "dog".
TOKENS = ["[CLS]", "who", "?", "[SEP]", "steve", "smith", "'", "s", "dog", "[SEP]"]
DOC_TOKENS = ["Steve", "Smith's", "dog"]


def make_feature(unique_id=1000000000, example_index=0):
    token_to_orig_map = {4: 0, 5: 1, 6: 1, 7: 1, 8: 2}
    return squad.InputFeatures(
        unique_id=unique_id, example_index=example_index, doc_span_index=0, tokens=TOKENS,
        token_to_orig_map=token_to_orig_map, token_is_max_context={k: True for k in token_to_orig_map},
        input_ids=[0] * 12, input_mask=[0] * 12, segment_ids=[0] * 12)


def logits(**values):
    """12 logits of -5 except the given positions (p4=2.0 sets position 4)."""
    out = [-5.0] * 12
    for key, value in values.items():
        out[int(key[1:])] = value
    return out


EXAMPLE = squad.SquadExample("q1", "who?", DOC_TOKENS)


def predict(result, **options):
    return squad_postprocess.compute_predictions([EXAMPLE], [make_feature()], [result], PredictionOptions(**options))


def test_best_span_is_cut_from_the_original_text():
    result = RawResult(1000000000, logits(p4=3.0, p5=1.0), logits(p5=2.5, p8=1.0))
    predictions, nbest, null_odds = predict(result, n_best_size=3)
    assert predictions == {"q1": "Steve Smith"}  # not "Steve Smith's": get_final_text trims the word
    texts = [entry["text"] for entry in nbest["q1"]]
    assert texts[0] == "Steve Smith" and len(texts) == len(set(texts)) <= 3
    assert list(nbest["q1"][0]) == ["text", "probability", "start_logit", "end_logit"]
    assert nbest["q1"][0]["start_logit"] == 3.0 and nbest["q1"][0]["end_logit"] == 2.5
    assert math.isclose(sum(entry["probability"] for entry in nbest["q1"]), 1.0)
    assert null_odds == {}


def test_invalid_spans_are_dropped():
    # Best start in the question, best end before the start, and a span longer than max_answer_length.
    # Valid: dog (4.5 + 2.0) and Steve (-2.0 + 8.0); "Steve Smith's dog" spans 5 wordpieces.
    result = RawResult(1000000000, logits(p1=9.0, p8=4.5, p4=-2.0), logits(p4=8.0, p8=2.0))
    predictions, nbest, _ = predict(result, n_best_size=3, max_answer_length=4)
    assert predictions["q1"] == "dog"
    assert [entry["text"] for entry in nbest["q1"]] == ["dog", "Steve"]
    predictions, nbest, _ = predict(result, n_best_size=3, max_answer_length=5)
    assert predictions["q1"] == "dog"
    assert [entry["text"] for entry in nbest["q1"]] == ["dog", "Steve", "Steve Smith's dog"]


def test_no_valid_span_in_version_1_predicts_placeholder():
    result = RawResult(1000000000, logits(p1=9.0), logits(p2=9.0))
    predictions, nbest, _ = predict(result, n_best_size=1)
    assert predictions == {"q1": "empty"}
    assert nbest["q1"] == [{"text": "empty", "probability": 1.0, "start_logit": 0.0, "end_logit": 0.0}]


def test_version_2_without_non_null_candidate_predicts_empty_with_null_score():
    # The original crashed here (best_non_null_entry was None); the fix predicts "" and writes the null score.
    result = RawResult(1000000000, logits(p0=0.25, p1=9.0), logits(p0=-0.75, p2=9.0))
    predictions, nbest, null_odds = predict(result, n_best_size=1, version_2_with_negative=True)
    assert predictions == {"q1": ""}
    assert null_odds == {"q1": 0.25 + -0.75}
    assert nbest["q1"] == [{"text": "", "probability": 1.0, "start_logit": 0.25, "end_logit": -0.75}]


@pytest.mark.parametrize("threshold,expected", [(0.0, "Steve"), (-1.5, "")])
def test_version_2_null_score_diff_threshold(threshold, expected):
    # null score 1.0 - best non-null (start 2.0 at "steve" + end 0.5 at "steve") = -1.5 (to float precision)
    result = RawResult(1000000000, logits(p0=0.5, p4=2.0), logits(p0=0.5, p4=0.5))
    predictions, nbest, null_odds = predict(result, n_best_size=2, version_2_with_negative=True,
                                            null_score_diff_threshold=threshold - 1e-9)
    assert null_odds["q1"] == pytest.approx(-1.5)
    assert predictions["q1"] == expected
    assert "" in [entry["text"] for entry in nbest["q1"]]


def test_version_2_null_comes_from_window_with_smallest_null_score():
    example = squad.SquadExample("q1", "who?", DOC_TOKENS)
    features = [make_feature(1000000000), make_feature(1000000001)]
    features[1].doc_span_index = 1
    results = [RawResult(1000000000, logits(p0=1.0, p4=2.0), logits(p0=1.0, p4=2.0)),
               RawResult(1000000001, logits(p0=-1.0, p8=3.0), logits(p0=0.5, p8=3.0))]
    options = PredictionOptions(n_best_size=2, version_2_with_negative=True)
    predictions, nbest, null_odds = squad_postprocess.compute_predictions([example], features, results, options)
    assert null_odds["q1"] == -0.5 - 6.0
    assert predictions["q1"] == "dog"
    null_entry = [entry for entry in nbest["q1"] if entry["text"] == ""][0]
    assert (null_entry["start_logit"], null_entry["end_logit"]) == (-1.0, 0.5)


def test_missing_result_is_a_clear_error():
    with pytest.raises(ValueError, match="no model output for feature 1000000000"):
        squad_postprocess.compute_predictions([EXAMPLE], [make_feature()], [], PredictionOptions())


def test_write_predictions_files(tmp_path):
    result = RawResult(1000000000, logits(p0=0.5, p4=2.0), logits(p0=0.5, p4=0.5))
    paths = [str(tmp_path / name) for name in ("predictions.json", "nbest_predictions.json", "null_odds.json")]
    answers = squad_postprocess.write_predictions([EXAMPLE], [make_feature()], [result],
                                                  PredictionOptions(n_best_size=2, version_2_with_negative=True),
                                                  *paths)
    text = (tmp_path / "predictions.json").read_text()
    assert text == json.dumps({"q1": answers["q1"]}, indent=4) + "\n"
    assert json.loads((tmp_path / "null_odds.json").read_text())["q1"] == pytest.approx(-1.5)
    assert len(json.loads((tmp_path / "nbest_predictions.json").read_text())["q1"]) == 2
    (tmp_path / "null_odds.json").unlink()
    squad_postprocess.write_predictions([EXAMPLE], [make_feature()], [result], PredictionOptions(), *paths)
    assert not (tmp_path / "null_odds.json").exists()


@pytest.mark.parametrize("pred_text,orig_text,do_lower_case,expected", [
    ("steve smith", "Steve Smith's", True, "Steve Smith"),
    ("jose", "José,", True, "José"),
    ("1895", "(1895-1943).", True, "1895"),
    ("Smith", "Smith's", False, "Smith"),
    ("nowhere", "Steve Smith's", True, "Steve Smith's"),  # not found: the whole original text
])
def test_get_final_text(pred_text, orig_text, do_lower_case, expected):
    assert squad_postprocess.get_final_text(pred_text, orig_text, do_lower_case) == expected


def test_best_indexes_and_softmax():
    assert squad_postprocess._get_best_indexes([0.1, 0.5, 0.5, -1.0], 3) == [1, 2, 0]
    probabilities = squad_postprocess._compute_softmax([1000.0, 1000.0])
    assert probabilities == [0.5, 0.5]
    assert squad_postprocess._compute_softmax([]) == []
