"""Entity scores against hand-worked cases of conlleval semantics: exact spans and types, the I- after O rule,
per-type F1, token accuracy, and the span repair that keeps the chunks conlleval reads."""

import pytest

from bert.ner import metrics as ner_metrics


@pytest.mark.parametrize("tags, expected", [
    (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 1), ("LOC", 3, 3)]),
    (["I-PER", "I-PER"], [("PER", 0, 1)]),  # I- at the start opens a chunk
    (["O", "I-PER", "O"], [("PER", 1, 1)]),  # I- after O opens a chunk
    (["B-PER", "I-LOC", "I-LOC"], [("PER", 0, 0), ("LOC", 1, 2)]),  # I- of another type opens a new chunk
    (["B-PER", "B-PER", "I-PER"], [("PER", 0, 0), ("PER", 1, 2)]),  # B- always opens a chunk
    (["B-PER", "I-PER", "I-PER"], [("PER", 0, 2)]),  # a chunk running to the end of the sentence
    (["O", "O"], []),
])
def test_spans_follow_conlleval(tags, expected):
    assert ner_metrics.spans(tags) == expected


@pytest.mark.parametrize("tags, repaired", [
    (["O", "I-PER", "I-PER", "O"], ["O", "B-PER", "I-PER", "O"]),
    (["I-PER"], ["B-PER"]),
    (["B-PER", "I-LOC"], ["B-PER", "B-LOC"]),
    (["B-PER", "I-PER", "B-PER"], ["B-PER", "I-PER", "B-PER"]),
])
def test_repair_gives_valid_bio_with_the_same_spans(tags, repaired):
    assert ner_metrics.repair_bio(tags) == repaired
    assert ner_metrics.spans(repaired) == ner_metrics.spans(tags)


def test_hand_worked_scores():
    # Gold entities: PER(0-1), LOC(3), ORG(5-6), LOC(8)  -> 4
    gold = [["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG", "I-ORG", "O", "B-LOC"]]
    # Predicted: PER(0) (wrong end), LOC(3) (correct), ORG(5-6) read from I- I- (correct under the I- rule),
    # PER(8) (wrong type) -> 4 predicted, 2 correct
    predicted = [["B-PER", "O", "O", "B-LOC", "O", "I-ORG", "I-ORG", "O", "B-PER"]]
    scores = ner_metrics.entity_scores(gold, predicted)
    assert scores["precision"] == pytest.approx(2 / 4)
    assert scores["recall"] == pytest.approx(2 / 4)
    assert scores["f1"] == pytest.approx(0.5)
    assert scores["num_gold_entities"] == 4 and scores["num_predicted_entities"] == 4
    # Per type: LOC 1 of 1 predicted correct, 1 of 2 gold found -> F1 2/3; ORG 1.0; PER 0 correct -> 0.
    assert scores["f1_LOC"] == pytest.approx(2 / 3)
    assert scores["f1_ORG"] == pytest.approx(1.0)
    assert scores["f1_PER"] == 0.0
    # Tokens: index 1 (I-PER vs O), 5 (B-ORG vs I-ORG) and 8 (B-LOC vs B-PER) differ -> 6 of 9.
    assert scores["token_accuracy"] == pytest.approx(6 / 9)


def test_span_boundaries_must_match_exactly_and_sentences_do_not_join():
    gold = [["B-PER", "I-PER", "I-PER"], ["B-PER"]]
    predicted = [["B-PER", "I-PER", "O"], ["B-PER"]]
    scores = ner_metrics.entity_scores(gold, predicted)
    assert scores["precision"] == pytest.approx(1 / 2) and scores["recall"] == pytest.approx(1 / 2)
    # A chunk at the end of one sentence does not continue into the next one.
    assert ner_metrics.entity_scores([["B-PER"], ["I-PER"]], [["B-PER"], ["B-PER"]])["f1"] == 1.0


def test_no_predictions_and_no_gold_give_zero_not_a_division_error():
    scores = ner_metrics.entity_scores([["B-PER", "O"]], [["O", "O"]])
    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.0, 0.0, 0.0)
    assert scores["token_accuracy"] == 0.5
    scores = ner_metrics.entity_scores([["O"]], [["O"]])
    assert scores["f1"] == 0.0 and scores["token_accuracy"] == 1.0


def test_mismatched_sentence_lengths_are_refused():
    with pytest.raises(ValueError, match="2 gold tags but 1 predicted"):
        ner_metrics.entity_scores([["O", "O"]], [["O"]])
