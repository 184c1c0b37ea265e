"""From start/end logits of every window to answer texts: n-best lists, SQuAD 2.0 null scores, JSON files.

For each question, the best `n_best_size` start and end positions of each of its windows are paired into
candidate spans; invalid ones (outside the paragraph, reversed, too long, not in their max-context window) are
dropped, the rest ranked by start_logit + end_logit and mapped back to the original paragraph text. In SQuAD 2.0
mode the "no answer" candidate ([CLS], position 0) competes through `null_score_diff_threshold`.
"""

import collections
import dataclasses
import json
import math
from typing import Dict, List, Optional, Sequence, Tuple

import tensorflow.compat.v1 as tf

from bert import tokenization
from bert.common.file_io import written_then_renamed
from bert.squad.data import InputFeatures, SquadExample

RawResult = collections.namedtuple("RawResult", ["unique_id", "start_logits", "end_logits"])

_PrelimPrediction = collections.namedtuple(
    "PrelimPrediction", ["feature_index", "start_index", "end_index", "start_logit", "end_logit"])
# `words`: the (first, last) document words the text was cut from; None for the null answer and the placeholder.
_NbestPrediction = collections.namedtuple("NbestPrediction", ["text", "start_logit", "end_logit", "words"],
                                          defaults=(None,))

# Stands for "no window seen yet" when looking for the smallest null score, as in the original.
_NO_NULL_SCORE = 1000000


@dataclasses.dataclass(frozen=True)
class PredictionOptions:
    """Post-processing settings (the original's flags of the same names and defaults)."""

    n_best_size: int = 20
    max_answer_length: int = 30
    do_lower_case: bool = True
    version_2_with_negative: bool = False
    null_score_diff_threshold: float = 0.0
    verbose_logging: bool = False


@dataclasses.dataclass
class _NullCandidate:
    """The window with the smallest null score (start_logits[0] + end_logits[0]) of a question."""

    score: float = _NO_NULL_SCORE
    feature_index: int = 0
    start_logit: float = 0.0
    end_logit: float = 0.0

    def update(self, feature_index: int, result: RawResult) -> None:
        score = result.start_logits[0] + result.end_logits[0]
        if score < self.score:
            self.score = score
            self.feature_index = feature_index
            self.start_logit = result.start_logits[0]
            self.end_logit = result.end_logits[0]


def _get_best_indexes(logits: Sequence[float], n_best_size: int) -> List[int]:
    """Indexes of the `n_best_size` largest logits, largest first (ties keep index order)."""
    ranked = sorted(enumerate(logits), key=lambda pair: pair[1], reverse=True)
    return [index for index, _ in ranked[:n_best_size]]


def _compute_softmax(scores: Sequence[float]) -> List[float]:
    """Softmax in Python floats, shifted by the maximum for stability."""
    if not scores:
        return []
    max_score = max(scores)
    exp_scores = [math.exp(score - max_score) for score in scores]
    total = sum(exp_scores)
    return [value / total for value in exp_scores]


def _is_valid_span(feature: InputFeatures, start_index: int, end_index: int, max_answer_length: int) -> bool:
    """A span must lie in the paragraph part of the window, start where this window has max context, not run
    backwards and not exceed `max_answer_length` wordpieces."""
    if start_index >= len(feature.tokens) or end_index >= len(feature.tokens):
        return False
    if start_index not in feature.token_to_orig_map or end_index not in feature.token_to_orig_map:
        return False
    if not feature.token_is_max_context.get(start_index, False):
        return False
    if end_index < start_index:
        return False
    return end_index - start_index + 1 <= max_answer_length


def _prelim_predictions(features: Sequence[InputFeatures], results: Sequence[RawResult],
                        options: PredictionOptions) -> Tuple[List[_PrelimPrediction], _NullCandidate]:
    """Valid candidate spans of all windows of one question (best first), and its null candidate.

    In SQuAD 2.0 mode the null candidate of the window with the smallest null score is one of the candidates.
    """
    candidates = []
    null = _NullCandidate()
    for feature_index, (feature, result) in enumerate(zip(features, results)):
        if options.version_2_with_negative:
            null.update(feature_index, result)
        for start_index in _get_best_indexes(result.start_logits, options.n_best_size):
            for end_index in _get_best_indexes(result.end_logits, options.n_best_size):
                if _is_valid_span(feature, start_index, end_index, options.max_answer_length):
                    candidates.append(_PrelimPrediction(feature_index, start_index, end_index,
                                                        result.start_logits[start_index],
                                                        result.end_logits[end_index]))
    if options.version_2_with_negative:
        candidates.append(_PrelimPrediction(null.feature_index, 0, 0, null.start_logit, null.end_logit))
    candidates.sort(key=lambda c: c.start_logit + c.end_logit, reverse=True)
    return candidates, null


def _span_text(example: SquadExample, feature: InputFeatures, start_index: int, end_index: int,
               options: PredictionOptions) -> str:
    """The original paragraph text of a wordpiece span, trimmed to what the wordpieces cover."""
    tok_text = " ".join(feature.tokens[start_index:end_index + 1])
    tok_text = tok_text.replace(" ##", "").replace("##", "")
    tok_text = " ".join(tok_text.strip().split())
    orig_doc_start = feature.token_to_orig_map[start_index]
    orig_doc_end = feature.token_to_orig_map[end_index]
    orig_text = " ".join(example.doc_tokens[orig_doc_start:orig_doc_end + 1])
    return get_final_text(tok_text, orig_text, options.do_lower_case, options.verbose_logging)


def _nbest_predictions(example: SquadExample, features: Sequence[InputFeatures],
                       candidates: Sequence[_PrelimPrediction], null: _NullCandidate,
                       options: PredictionOptions) -> List[_NbestPrediction]:
    """The best `n_best_size` distinct answer texts; in 2.0 mode "" is always among them."""
    seen_texts = set()
    nbest = []
    for candidate in candidates:
        if len(nbest) >= options.n_best_size:
            break
        words = None
        if candidate.start_index > 0:
            feature = features[candidate.feature_index]
            text = _span_text(example, feature, candidate.start_index, candidate.end_index, options)
            if text in seen_texts:
                continue
            words = (feature.token_to_orig_map[candidate.start_index], feature.token_to_orig_map[candidate.end_index])
        else:
            text = ""
        seen_texts.add(text)
        nbest.append(_NbestPrediction(text, candidate.start_logit, candidate.end_logit, words))
    if options.version_2_with_negative and "" not in seen_texts:
        nbest.append(_NbestPrediction("", null.start_logit, null.end_logit))
    if not nbest:  # no valid span at all (rare): a placeholder keeps the output complete
        nbest.append(_NbestPrediction("empty", 0.0, 0.0))
    return nbest


def _nbest_json(nbest: Sequence[_NbestPrediction]) -> List[collections.OrderedDict]:
    probabilities = _compute_softmax([entry.start_logit + entry.end_logit for entry in nbest])
    return [collections.OrderedDict([("text", entry.text), ("probability", probability),
                                     ("start_logit", entry.start_logit), ("end_logit", entry.end_logit)])
            for entry, probability in zip(nbest, probabilities)]


def _choose_answer(nbest: Sequence[_NbestPrediction], null: _NullCandidate,
                   options: PredictionOptions) -> Tuple[int, float]:
    """SQuAD 2.0: predicts "" when null score - best non-null score > threshold; returns (the chosen entry's index
    in `nbest`, score diff).

    When no non-null candidate survives (the original crashed here), the answer is "" and the score diff is the
    null score itself.
    """
    null_index = next(index for index, entry in enumerate(nbest) if not entry.text)
    best_non_null = next((index for index, entry in enumerate(nbest) if entry.text), None)
    if best_non_null is None:
        return null_index, null.score
    score_diff = null.score - nbest[best_non_null].start_logit - nbest[best_non_null].end_logit
    if score_diff > options.null_score_diff_threshold:
        return null_index, score_diff
    return best_non_null, score_diff


@dataclasses.dataclass
class _ExamplePrediction:
    nbest: List[_NbestPrediction]
    chosen: int  # index in nbest of the answer
    null_score_diff: Optional[float]  # SQuAD 2.0 only


def _predict_examples(all_examples: Sequence[SquadExample], all_features: Sequence[InputFeatures],
                      all_results: Sequence[RawResult], options: PredictionOptions) -> List[_ExamplePrediction]:
    features_by_example = collections.defaultdict(list)
    for feature in all_features:
        features_by_example[feature.example_index].append(feature)
    result_by_unique_id = {result.unique_id: result for result in all_results}
    predictions = []
    for example_index, example in enumerate(all_examples):
        features = features_by_example[example_index]
        results = [_result_of(feature, result_by_unique_id) for feature in features]
        candidates, null = _prelim_predictions(features, results, options)
        nbest = _nbest_predictions(example, features, candidates, null, options)
        if options.version_2_with_negative:
            predictions.append(_ExamplePrediction(nbest, *_choose_answer(nbest, null, options)))
        else:
            predictions.append(_ExamplePrediction(nbest, 0, None))
    return predictions


def compute_predictions(all_examples: Sequence[SquadExample], all_features: Sequence[InputFeatures],
                        all_results: Sequence[RawResult], options: PredictionOptions):
    """Answers, n-best lists and (2.0) null-score differences for every example, keyed by question id.

    Returns:
      (predictions, nbest, null_odds): OrderedDicts in example order; null_odds is empty unless
      `options.version_2_with_negative`.

    Raises:
      ValueError: a feature has no result (the results do not belong to these features).
    """
    predictions = collections.OrderedDict()
    all_nbest_json = collections.OrderedDict()
    null_odds = collections.OrderedDict()
    for example, prediction in zip(all_examples, _predict_examples(all_examples, all_features, all_results, options)):
        all_nbest_json[example.qas_id] = _nbest_json(prediction.nbest)
        predictions[example.qas_id] = prediction.nbest[prediction.chosen].text
        if options.version_2_with_negative:
            null_odds[example.qas_id] = prediction.null_score_diff
    return predictions, all_nbest_json, null_odds


@dataclasses.dataclass
class Answer:
    """A question's answer located in its context: `context[start:end] == text` ("" with start = end = 0 when
    SQuAD 2.0 mode predicts no answer)."""

    text: str
    start: int  # character offsets in the context
    end: int
    probability: float  # the answer's share among the n-best, as in nbest_predictions.json
    score: float  # start_logit + end_logit
    null_score_diff: Optional[float] = None  # SQuAD 2.0: null score minus the best answer's (null_odds.json)


def answers_in_contexts(all_examples: Sequence[SquadExample], contexts: Sequence[str],
                        all_features: Sequence[InputFeatures], all_results: Sequence[RawResult],
                        options: PredictionOptions) -> List[Answer]:
    """The answer `compute_predictions` gives each example, with its place in the example's context (the text its
    doc_tokens were split from)."""
    answers = []
    for example, context, prediction in zip(all_examples, contexts,
                                            _predict_examples(all_examples, all_features, all_results, options)):
        entry = prediction.nbest[prediction.chosen]
        probability = _compute_softmax([e.start_logit + e.end_logit for e in prediction.nbest])[prediction.chosen]
        start, end = _character_span(context, example.doc_tokens, entry) if entry.words else (0, 0)
        answers.append(Answer(entry.text, start, end, probability, entry.start_logit + entry.end_logit,
                              prediction.null_score_diff))
    return answers


def _character_span(context: str, doc_tokens: Sequence[str], entry: _NbestPrediction) -> Tuple[int, int]:
    """Where `entry.text`, cut from the space-joined words `entry.words`, lies in `context`."""
    first, last = entry.words
    word_starts = []
    position = 0
    for word in doc_tokens[:last + 1]:
        position = context.index(word, position)
        word_starts.append(position)
        position += len(word)
    joined = " ".join(doc_tokens[first:last + 1])
    offset = max(joined.find(entry.text), 0)  # get_final_text returns a part of `joined` (or all of it)

    def in_context(joined_position: int) -> int:
        word, word_offset = first, 0
        while word < last and joined_position >= word_offset + len(doc_tokens[word]) + 1:
            word_offset += len(doc_tokens[word]) + 1
            word += 1
        return word_starts[word] + joined_position - word_offset

    return in_context(offset), in_context(offset + len(entry.text) - 1) + 1


def _result_of(feature: InputFeatures, result_by_unique_id: Dict[int, RawResult]) -> RawResult:
    if feature.unique_id not in result_by_unique_id:
        raise ValueError(f"no model output for feature {feature.unique_id} (example {feature.example_index}); "
                         f"the results do not match the features")
    return result_by_unique_id[feature.unique_id]


def write_json(path: str, value) -> None:
    """JSON with indent 4 and a final newline, the layout of the original's output files."""
    with written_then_renamed(path) as writer:
        writer.write(json.dumps(value, indent=4) + "\n")


def write_predictions(all_examples: Sequence[SquadExample], all_features: Sequence[InputFeatures],
                      all_results: Sequence[RawResult], options: PredictionOptions, output_prediction_file: str,
                      output_nbest_file: str, output_null_log_odds_file: str) -> Dict[str, str]:
    """Writes predictions.json, nbest_predictions.json and, in 2.0 mode, null_odds.json; returns the answers."""
    tf.logging.info("Writing predictions to: %s", output_prediction_file)
    tf.logging.info("Writing nbest to: %s", output_nbest_file)
    predictions, nbest, null_odds = compute_predictions(all_examples, all_features, all_results, options)
    write_json(output_prediction_file, predictions)
    write_json(output_nbest_file, nbest)
    if options.version_2_with_negative:
        write_json(output_null_log_odds_file, null_odds)
    return predictions


# ----------------------------------------------------------------------------------------------------------------
# Mapping a normalized answer back to the original text
# ----------------------------------------------------------------------------------------------------------------


def _strip_spaces(text: str) -> Tuple[str, Dict[int, int]]:
    """`text` without spaces, and for each of its characters the position in `text`."""
    chars = []
    ns_to_s_map = {}
    for index, char in enumerate(text):
        if char == " ":
            continue
        ns_to_s_map[len(chars)] = index
        chars.append(char)
    return "".join(chars), ns_to_s_map


def get_final_text(pred_text: str, orig_text: str, do_lower_case: bool, verbose_logging: bool = False) -> str:
    """Projects a predicted span, in tokenizer-normalized form, onto the original text.

    `orig_text` are the whole words the span touches ("Steve Smith's"); `pred_text` is what the wordpieces say
    ("steve smith", lower-cased, accents stripped). The original text is basic-tokenized; if, with spaces
    removed, it is as long as the original, characters align one to one and the answer is cut from the original
    ("Steve Smith"). When any step fails, the whole `orig_text` is returned.
    """
    tok_text = " ".join(tokenization.BasicTokenizer(do_lower_case=do_lower_case).tokenize(orig_text))
    start_position = tok_text.find(pred_text)
    if start_position == -1:
        if verbose_logging:
            tf.logging.info("Unable to find text: '%s' in '%s'", pred_text, orig_text)
        return orig_text
    end_position = start_position + len(pred_text) - 1

    orig_ns_text, orig_ns_to_s_map = _strip_spaces(orig_text)
    tok_ns_text, tok_ns_to_s_map = _strip_spaces(tok_text)
    if len(orig_ns_text) != len(tok_ns_text):
        if verbose_logging:
            tf.logging.info("Length not equal after stripping spaces: '%s' vs '%s'", orig_ns_text, tok_ns_text)
        return orig_text

    tok_s_to_ns_map = {s_index: ns_index for ns_index, s_index in tok_ns_to_s_map.items()}
    orig_start_position = _map_to_original(start_position, tok_s_to_ns_map, orig_ns_to_s_map)
    if orig_start_position is None:
        if verbose_logging:
            tf.logging.info("Couldn't map start position")
        return orig_text
    orig_end_position = _map_to_original(end_position, tok_s_to_ns_map, orig_ns_to_s_map)
    if orig_end_position is None:
        if verbose_logging:
            tf.logging.info("Couldn't map end position")
        return orig_text
    return orig_text[orig_start_position:orig_end_position + 1]


def _map_to_original(tok_position: int, tok_s_to_ns_map: Dict[int, int], orig_ns_to_s_map: Dict[int, int]):
    """Position in the original text of the character at `tok_position` of the tokenized text, or None."""
    ns_position = tok_s_to_ns_map.get(tok_position)
    if ns_position is None:
        return None
    return orig_ns_to_s_map.get(ns_position)
