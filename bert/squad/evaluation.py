"""SQuAD evaluation with the numbers of the official v1.1 and v2.0 scripts.

Answers are compared after normalization (lower case, no punctuation, no articles a/an/the, single spaces).
Exact match and token F1 take the best over a question's gold answers. SQuAD 2.0 adds unanswerable questions
(no gold answer: only "" is right), the split into HasAns/NoAns, an optional no-answer probability per question
(`na_probs`, e.g. run_squad's null_odds.json) thresholded at `na_prob_thresh`, and the best such threshold.

As the official scripts do, only the data file's questions are scored: predictions (and na_probs) for other ids
are ignored (one warning gives their count), so a predictions file for part of a dev set, or a data file that is
part of it, gives the official numbers. Only a predictions file sharing no id with the data file is an error.
A question without prediction scores 0 and is counted in the totals, as v1.1 does; one warning gives how many
(v1.1 prints a line per question; the official v2.0 script crashes computing HasAns/NoAns instead).
"""

import collections
import re
import string
import sys
from typing import Dict, Iterator, List, Mapping, Optional, Tuple

from bert.common import file_io
from bert.common.errors import UserError

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
        raise UserError(f"{data_file}: cannot tell the SQuAD version from its \"version\" field "
                         f"({version or 'missing'}); expected 1.1 or v2.0")
    return int(major)


def iter_questions(dataset: List[Mapping]) -> Iterator[Mapping]:
    """Every question ("qas" entry) of the "data" list of a SQuAD file, in file order."""
    for article in dataset:
        for paragraph in article["paragraphs"]:
            yield from paragraph["qas"]


def read_questions(dataset: List[Mapping], data_file: str = "the data file") -> List[Mapping]:
    """The questions of a SQuAD "data" list, checked to have an "id" and an "answers" list.

    Raises:
      UserError: the structure is not SQuAD's (data → paragraphs → qas), or there is no question at all.
    """
    try:
        questions = list(iter_questions(dataset))
        for qa in questions:
            if not isinstance(qa["id"], str) or not isinstance(qa["answers"], list):
                raise TypeError
    except (KeyError, TypeError):
        raise UserError(f"{data_file} is not a SQuAD data file: expected \"data\" → \"paragraphs\" → \"qas\" "
                        f"entries, each with an \"id\" and an \"answers\" list") from None
    if not questions:
        raise UserError(f"{data_file} holds no question: nothing to evaluate")
    return questions


def _shown(ids: List[str]) -> str:
    return ", ".join(ids[:_MAX_IDS_IN_MESSAGE]) + (", ..." if len(ids) > _MAX_IDS_IN_MESSAGE else "")


def scored_predictions(predictions: Mapping[str, str], questions: List[Mapping],
                       what: str = "the predictions file") -> Dict[str, str]:
    """The predictions for the data file's questions; predictions for other ids are ignored (as the official
    scripts do) with one warning giving their count, and questions without a prediction get one warning.

    Raises:
      UserError: no prediction is for a question of the data file (it belongs to another data file).
    """
    question_ids = [qa["id"] for qa in questions]
    known = set(question_ids)
    scored = {qid: answer for qid, answer in predictions.items() if qid in known}
    if not scored:
        raise UserError(f"{what} shares no question id with the data file ({len(predictions)} predictions, e.g. "
                        f"{_shown(list(predictions)) or 'none'}; questions e.g. {_shown(question_ids)}): it belongs "
                        f"to another data file")
    extra = [qid for qid in predictions if qid not in known]
    if extra:
        _warn(f"Ignoring {len(extra)} predictions for question ids that are not in the data file "
              f"({_shown(extra)}), as the official script does.")
    missing = [qid for qid in question_ids if qid not in scored]
    if missing:
        _warn(f"{len(missing)} of {len(question_ids)} questions have no prediction and will receive score 0 "
              f"({_shown(missing)}).")
    return scored


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


# ----------------------------------------------------------------------------------------------------------------
# SQuAD 1.1
# ----------------------------------------------------------------------------------------------------------------


def evaluate_v1(dataset: List[Mapping], predictions: Mapping[str, str],
                predictions_name: str = "the predictions file") -> Dict[str, float]:
    """Official v1.1 numbers: {"exact_match", "f1"} in percent; missing predictions score 0 (with a warning)."""
    questions = read_questions(dataset)
    predictions = scored_predictions(predictions, questions, predictions_name)
    exact_match = f1 = 0.0
    for qa in questions:
        if qa["id"] not in predictions:
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
                na_probs: Optional[Mapping[str, float]] = None, na_prob_thresh: float = 1.0,
                predictions_name: str = "the predictions file") -> Dict[str, float]:
    """Official v2.0 numbers: exact, f1, total, HasAns_*/NoAns_* and, given `na_probs`, best_exact/f1(_thresh).

    Without `na_probs` every answered question has na_prob 0 (never thresholded away).

    Raises:
      UserError: no prediction for a question of the data, or `na_probs` lacking an answered question.
    """
    questions = read_questions(dataset)
    has_answer = collections.OrderedDict((qa["id"], bool(qa["answers"])) for qa in questions)
    predictions = scored_predictions(predictions, questions, predictions_name)
    explicit_na_probs = na_probs is not None
    if explicit_na_probs:
        na_probs = {qid: value for qid, value in na_probs.items() if qid in has_answer}
        missing = [qid for qid in predictions if qid not in na_probs]
        if missing:
            raise UserError(f"the no-answer probability file has no value for {len(missing)} questions that have "
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
        raise UserError(f"{what} must hold an object mapping question ids to {expected}s")
    for qid, value in mapping.items():
        if isinstance(value, bool) or not isinstance(value, value_type):
            raise UserError(f"{what}: the value for question {qid} is a {type(value).__name__}, "
                             f"expected {expected}")


def evaluate_files(data_file: str, predictions_file: str, na_prob_file: Optional[str] = None,
                   na_prob_thresh: float = 1.0) -> Dict[str, float]:
    """Evaluates a predictions file against a SQuAD data file, choosing v1.1 or v2.0 by the data's version.

    Raises:
      UserError: unreadable files, an unknown version, no shared ids, or an na_prob_file given for SQuAD 1.1
      data.
    """
    dataset_json = file_io.read_json(data_file, "data file")
    version = squad_version(dataset_json, data_file)
    read_questions(dataset_json.get("data"), data_file)
    predictions = file_io.read_json(predictions_file, "predictions file")
    _check_values(predictions, str, f"predictions file {predictions_file}", "an answer string")
    if version == 1:
        if na_prob_file:
            raise UserError(f"--na-prob-file applies to SQuAD 2.0 only; {data_file} is version "
                             f"{dataset_json['version']}")
        return evaluate_v1(dataset_json["data"], predictions, f"predictions file {predictions_file}")
    na_probs = None
    if na_prob_file:
        na_probs = file_io.read_json(na_prob_file, "no-answer probability file")
        _check_values(na_probs, (int, float), f"no-answer probability file {na_prob_file}", "a number")
    return evaluate_v2(dataset_json["data"], predictions, na_probs, na_prob_thresh,
                       f"predictions file {predictions_file}")
