"""SQuAD evaluation with the numbers of the official v1.1 and v2.0 scripts.

Answers are compared after normalization (lower case, no punctuation, no articles a/an/the, single spaces).
Exact match and token F1 take the best over a question's gold answers. SQuAD 2.0 adds unanswerable questions
(no gold answer: only "" is right), the split into HasAns/NoAns, an optional no-answer probability per question
(`na_probs`, e.g. run_squad's null_odds.json) thresholded at `na_prob_thresh`, and the best such threshold.

Deliberate differences from the official scripts, for clearer failures: predictions (or na_probs) for question
ids the data file does not contain are an error, not silently ignored; in 2.0 a missing prediction counts as
wrong with a warning, as in v1.1, where the official 2.0 script would crash computing HasAns/NoAns.
"""

import collections
import re
import string
import sys
from typing import Dict, Iterator, List, Mapping, Optional, Tuple

from bert import file_io

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)
_MAX_IDS_IN_MESSAGE = 5


def normalize_answer(text: str) -> str:
    """Lower-cases and removes punctuation, the articles a/an/the and extra whitespace."""
    text = text.lower()
    text = "".join(char for char in text if char not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _answer_tokens(text: str) -> List[str]:
    return normalize_answer(text).split() if text else []


def exact_match_score(prediction: str, ground_truth: str) -> int:
    return int(normalize_answer(prediction) == normalize_answer(ground_truth))


def _token_f1(prediction_tokens: List[str], ground_truth_tokens: List[str]) -> float:
    common = collections.Counter(prediction_tokens) & collections.Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(prediction_tokens)
    recall = num_same / len(ground_truth_tokens)
    return 2 * precision * recall / (precision + recall)


def f1_score_v1(prediction: str, ground_truth: str) -> float:
    """Token-level F1 of the normalized answers, as v1.1 computes it (0 when either is empty)."""
    return _token_f1(_answer_tokens(prediction), _answer_tokens(ground_truth))


def f1_score(prediction: str, ground_truth: str) -> float:
    """Token-level F1 as v2.0 computes it: when either answer is empty (no answer), 1 if both are, else 0."""
    prediction_tokens = _answer_tokens(prediction)
    ground_truth_tokens = _answer_tokens(ground_truth)
    if not prediction_tokens or not ground_truth_tokens:
        return float(prediction_tokens == ground_truth_tokens)
    return _token_f1(prediction_tokens, ground_truth_tokens)


# ----------------------------------------------------------------------------------------------------------------
# Data files
# ----------------------------------------------------------------------------------------------------------------


def squad_version(dataset_json: Mapping, data_file: str = "the data file") -> int:
    """1 or 2, from the "version" field ("1.1", "v2.0", ...).

    Raises:
      ValueError: no "version" field, or one that names neither SQuAD 1.x nor 2.x.
    """
    version = str(dataset_json.get("version", "")) if isinstance(dataset_json, Mapping) else ""
    major = version.lstrip("vV").split(".")[0]
    if major not in ("1", "2"):
        raise ValueError(f"{data_file}: cannot tell the SQuAD version from its \"version\" field "
                         f"({version or 'missing'}); expected 1.1 or v2.0")
    return int(major)


def iter_questions(dataset: List[Mapping]) -> Iterator[Mapping]:
    """Every question ("qas" entry) of the "data" list of a SQuAD file, in file order."""
    for article in dataset:
        for paragraph in article["paragraphs"]:
            yield from paragraph["qas"]


def _check_known_ids(ids, known_ids, what: str) -> None:
    unknown = [qid for qid in ids if qid not in known_ids]
    if unknown:
        shown = ", ".join(unknown[:_MAX_IDS_IN_MESSAGE]) + (", ..." if len(unknown) > _MAX_IDS_IN_MESSAGE else "")
        raise ValueError(f"{what} has {len(unknown)} question ids that are not in the data file ({shown}): "
                         f"it belongs to another data file")


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


# ----------------------------------------------------------------------------------------------------------------
# SQuAD 1.1
# ----------------------------------------------------------------------------------------------------------------


def evaluate_v1(dataset: List[Mapping], predictions: Mapping[str, str]) -> Dict[str, float]:
    """Official v1.1 numbers: {"exact_match", "f1"} in percent; missing predictions score 0 (with a warning)."""
    questions = list(iter_questions(dataset))
    _check_known_ids(predictions, {qa["id"] for qa in questions}, "the predictions file")
    exact_match = f1 = 0.0
    for qa in questions:
        if qa["id"] not in predictions:
            _warn(f"Unanswered question {qa['id']} will receive score 0.")
            continue
        ground_truths = [answer["text"] for answer in qa["answers"]]
        prediction = predictions[qa["id"]]
        exact_match += max(exact_match_score(prediction, truth) for truth in ground_truths)
        f1 += max(f1_score_v1(prediction, truth) for truth in ground_truths)
    total = len(questions)
    return {"exact_match": 100.0 * exact_match / total, "f1": 100.0 * f1 / total}


# ----------------------------------------------------------------------------------------------------------------
# SQuAD 2.0
# ----------------------------------------------------------------------------------------------------------------


def _gold_answers(qa: Mapping) -> List[str]:
    """Gold texts that survive normalization; [""] for an unanswerable question."""
    answers = [answer["text"] for answer in qa["answers"] if normalize_answer(answer["text"])]
    return answers or [""]


def _raw_scores(questions: List[Mapping], predictions: Mapping[str, str]) -> Tuple[Dict[str, int], Dict]:
    """Exact and F1 of each answered question (max over gold answers), before any no-answer threshold."""
    exact_scores, f1_scores = {}, {}
    for qa in questions:
        qid = qa["id"]
        if qid not in predictions:
            _warn(f"Missing prediction for {qid}: it counts as wrong.")
            continue
        gold_answers = _gold_answers(qa)
        exact_scores[qid] = max(exact_match_score(predictions[qid], gold) for gold in gold_answers)
        f1_scores[qid] = max(f1_score(predictions[qid], gold) for gold in gold_answers)
    return exact_scores, f1_scores


def _apply_no_answer_threshold(scores: Mapping[str, float], na_probs: Mapping[str, float],
                               has_answer: Mapping[str, bool], na_prob_thresh: float) -> Dict[str, float]:
    """Questions whose na_prob exceeds the threshold are predicted unanswerable: right iff they are."""
    return {qid: float(not has_answer[qid]) if na_probs[qid] > na_prob_thresh else score
            for qid, score in scores.items()}


def _percentages(exact: Mapping[str, float], f1: Mapping[str, float], qids: List[str]) -> Dict[str, float]:
    total = len(qids)
    return {
        "exact": 100.0 * sum(exact.get(qid, 0) for qid in qids) / total,
        "f1": 100.0 * sum(f1.get(qid, 0) for qid in qids) / total,
        "total": total,
    }


def _best_threshold(predictions: Mapping[str, str], scores: Mapping[str, float], na_probs: Mapping[str, float],
                    has_answer: Mapping[str, bool]) -> Tuple[float, float]:
    """The score (percent) at the best no-answer threshold, and that threshold.

    Start with every answered question predicted unanswerable, then admit the answers one by one in increasing
    na_prob, keeping the best running score (official v2.0 sweep; ties keep the lower threshold).
    """
    current = sum(1 for qid in scores if not has_answer[qid])
    best, best_thresh = current, 0.0
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):
        if qid not in scores:
            continue
        if has_answer[qid]:
            current += scores[qid]
        elif predictions[qid]:
            current -= 1
        if current > best:
            best, best_thresh = current, na_probs[qid]
    return 100.0 * best / len(has_answer), best_thresh


def evaluate_v2(dataset: List[Mapping], predictions: Mapping[str, str],
                na_probs: Optional[Mapping[str, float]] = None, na_prob_thresh: float = 1.0) -> Dict[str, float]:
    """Official v2.0 numbers: exact, f1, total, HasAns_*/NoAns_* and, given `na_probs`, best_exact/f1(_thresh).

    Without `na_probs` every answered question has na_prob 0 (never thresholded away).

    Raises:
      ValueError: ids unknown to the data, or `na_probs` lacking an answered question.
    """
    questions = list(iter_questions(dataset))
    has_answer = collections.OrderedDict((qa["id"], bool(qa["answers"])) for qa in questions)
    _check_known_ids(predictions, has_answer, "the predictions file")
    explicit_na_probs = na_probs is not None
    if explicit_na_probs:
        _check_known_ids(na_probs, has_answer, "the no-answer probability file")
        missing = [qid for qid in predictions if qid not in na_probs]
        if missing:
            raise ValueError(f"the no-answer probability file has no value for {len(missing)} questions that have "
                             f"predictions (first: {missing[0]})")
    else:
        na_probs = {qid: 0.0 for qid in predictions}

    exact_raw, f1_raw = _raw_scores(questions, predictions)
    exact = _apply_no_answer_threshold(exact_raw, na_probs, has_answer, na_prob_thresh)
    f1 = _apply_no_answer_threshold(f1_raw, na_probs, has_answer, na_prob_thresh)
    results = collections.OrderedDict(_percentages(exact, f1, list(has_answer)))
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [qid for qid, answerable in has_answer.items() if answerable == wanted]
        if qids:
            for key, value in _percentages(exact, f1, qids).items():
                results[f"{prefix}_{key}"] = value
    if explicit_na_probs:
        results["best_exact"], results["best_exact_thresh"] = _best_threshold(predictions, exact_raw, na_probs,
                                                                              has_answer)
        results["best_f1"], results["best_f1_thresh"] = _best_threshold(predictions, f1_raw, na_probs, has_answer)
    return results


def _check_values(mapping, value_type, what: str, expected: str) -> None:
    """Fails on anything but an object of question id → `value_type` (e.g. nbest_predictions.json given instead
    of predictions.json)."""
    if not isinstance(mapping, dict):
        raise ValueError(f"{what} must hold an object mapping question ids to {expected}s")
    for qid, value in mapping.items():
        if isinstance(value, bool) or not isinstance(value, value_type):
            raise ValueError(f"{what}: the value for question {qid} is a {type(value).__name__}, "
                             f"expected {expected}")


def evaluate_files(data_file: str, predictions_file: str, na_prob_file: Optional[str] = None,
                   na_prob_thresh: float = 1.0) -> Dict[str, float]:
    """Evaluates a predictions file against a SQuAD data file, choosing v1.1 or v2.0 by the data's version.

    Raises:
      FileNotFoundError, ValueError: unreadable files, an unknown version, ids that do not match, or an
      na_prob_file given for SQuAD 1.1 data.
    """
    dataset_json = file_io.read_json(data_file, "data file")
    version = squad_version(dataset_json, data_file)
    predictions = file_io.read_json(predictions_file, "predictions file")
    _check_values(predictions, str, f"predictions file {predictions_file}", "an answer string")
    if version == 1:
        if na_prob_file:
            raise ValueError(f"--na-prob-file applies to SQuAD 2.0 only; {data_file} is version "
                             f"{dataset_json['version']}")
        return evaluate_v1(dataset_json["data"], predictions)
    na_probs = None
    if na_prob_file:
        na_probs = file_io.read_json(na_prob_file, "no-answer probability file")
        _check_values(na_probs, (int, float), f"no-answer probability file {na_prob_file}", "a number")
    return evaluate_v2(dataset_json["data"], predictions, na_probs, na_prob_thresh)
