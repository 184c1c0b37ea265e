"""Entity-level scores of BIO tag sequences with the semantics of the CoNLL `conlleval` script.

conlleval reads chunks leniently: `B-X` always opens a chunk of type X, `I-X` continues the open chunk only when
that chunk has type X and otherwise opens a new one (so an `I-` after `O` or after another type is a chunk start),
and `O` closes it. A predicted entity counts only when its type and both boundaries equal a gold entity's.
`repair_bio` rewrites tags into strictly valid BIO with exactly the chunks conlleval reads, which is what
prediction files contain. Scores here are fractions in [0, 1] (conlleval prints percentages).
"""

import collections
from typing import Dict, Iterable, List, Sequence, Set, Tuple

OUTSIDE = "O"

Span = Tuple[str, int, int]  # (entity type, first word index, last word index), both inclusive


def split_tag(tag: str) -> Tuple[str, str]:
    """('B'|'I'|'O', entity type) of a BIO tag; 'O' has the empty type."""
    if tag == OUTSIDE:
        return OUTSIDE, ""
    prefix, _, entity_type = tag.partition("-")
    return prefix, entity_type


def spans(tags: Sequence[str]) -> List[Span]:
    """The chunks conlleval reads in one sentence's BIO tags, in order."""
    found = []
    open_type, open_start = None, None
    for position, tag in enumerate(tags):
        prefix, entity_type = split_tag(tag)
        continues = prefix == "I" and entity_type == open_type
        if open_type is not None and not continues:
            found.append((open_type, open_start, position - 1))
            open_type = None
        if prefix in ("B", "I") and not continues:
            open_type, open_start = entity_type, position
    if open_type is not None:
        found.append((open_type, open_start, len(tags) - 1))
    return found


def repair_bio(tags: Sequence[str]) -> List[str]:
    """Valid BIO tags with the same chunks as `tags` under conlleval: an `I-X` that opens a chunk becomes `B-X`."""
    repaired = []
    previous_type = None
    for tag in tags:
        prefix, entity_type = split_tag(tag)
        if prefix == "I" and entity_type != previous_type:
            tag = "B-" + entity_type
        repaired.append(tag)
        previous_type = entity_type if prefix in ("B", "I") else None
    return repaired


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def _f1(precision: float, recall: float) -> float:
    return _ratio(2.0 * precision * recall, precision + recall)


def entity_scores(gold: Iterable[Sequence[str]], predicted: Iterable[Sequence[str]]) -> Dict[str, float]:
    """Micro precision/recall/F1 over exact (type, start, end) entities, F1 per entity type and token accuracy.

    Args:
      gold: the gold BIO tags of each sentence.
      predicted: the predicted tags of the same sentences (any BIO, read as conlleval reads it).

    Returns:
      {"precision", "recall", "f1", "token_accuracy", "f1_<type>" for every type in gold or predictions,
       "num_gold_entities", "num_predicted_entities"}.
    """
    correct, gold_count, predicted_count = collections.Counter(), collections.Counter(), collections.Counter()
    tokens, correct_tokens = 0, 0
    gold, predicted = list(gold), list(predicted)
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted ones")
    for gold_tags, predicted_tags in zip(gold, predicted):
        if len(gold_tags) != len(predicted_tags):
            raise ValueError(f"a sentence has {len(gold_tags)} gold tags but {len(predicted_tags)} predicted ones")
        gold_spans: Set[Span] = set(spans(gold_tags))
        predicted_spans: Set[Span] = set(spans(predicted_tags))
        gold_count.update(span[0] for span in gold_spans)
        predicted_count.update(span[0] for span in predicted_spans)
        correct.update(span[0] for span in gold_spans & predicted_spans)
        tokens += len(gold_tags)
        correct_tokens += sum(g == p for g, p in zip(gold_tags, predicted_tags))

    precision = _ratio(sum(correct.values()), sum(predicted_count.values()))
    recall = _ratio(sum(correct.values()), sum(gold_count.values()))
    scores = {"precision": precision, "recall": recall, "f1": _f1(precision, recall),
              "token_accuracy": _ratio(correct_tokens, tokens),
              "num_gold_entities": sum(gold_count.values()),
              "num_predicted_entities": sum(predicted_count.values())}
    for entity_type in sorted(set(gold_count) | set(predicted_count)):
        type_precision = _ratio(correct[entity_type], predicted_count[entity_type])
        type_recall = _ratio(correct[entity_type], gold_count[entity_type])
        scores["f1_" + entity_type] = _f1(type_precision, type_recall)
    return scores
