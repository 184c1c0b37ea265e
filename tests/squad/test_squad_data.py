"""SQuAD data: reading the JSON, answer alignment to wordpieces, sliding windows, TFRecords, input errors."""

import collections
import json
import logging

import numpy as np
import pytest

from bert import tokenization
from bert.runtime import input_pipeline
from bert.squad import data as squad

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "leader", "was", "john", "smith", "(", ")", "-", ".",
         "?", ",", "1895", "1943", "he", "lived", "in", "japanese", "cities", "when", "born", "who", "what", "where",
         "did", "live", "name", "of", "is", "country", "japan", "##ese"]

CONTEXT = "The leader was John Smith (1895-1943). He lived in Japanese cities."


def qa(qid, question, answer=None, answer_start=None, is_impossible=False):
    entry = {"id": qid, "question": question, "answers": [], "is_impossible": is_impossible}
    if answer is not None:
        entry["answers"] = [{"text": answer, "answer_start": CONTEXT.index(answer) if answer_start is None
                             else answer_start}]
    return entry


QUESTIONS = [
    qa("born", "When was Smith born?", "1895"),
    qa("leader", "Who was the leader?", "John Smith"),
    qa("country", "What country?", "Japan"),
    qa("impossible", "Where did the leader live?", is_impossible=True),
]


def write_squad(tmp_path, questions, context=CONTEXT, name="train.json"):
    path = tmp_path / name
    data = {"version": "v2.0", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": questions}]}]}
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


@pytest.fixture
def tokenizer(tmp_path):
    vocab_file = tmp_path / "vocab.txt"
    vocab_file.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return tokenization.FullTokenizer(str(vocab_file), do_lower_case=True)


def convert(examples, tokenizer, is_training, max_seq_length=40, doc_stride=128, max_query_length=16):
    features = []
    squad.convert_examples_to_features(examples, tokenizer, max_seq_length, doc_stride, max_query_length,
                                       is_training, features.append)
    return features


def test_split_paragraph_maps_characters_to_words():
    words, offsets = squad.split_paragraph(" ab  c\u202fd\n")
    assert words == ["ab", "c", "d"]
    assert offsets == [-1, 0, 0, 0, 0, 1, 1, 2, 2]


def test_read_training_examples_locates_answers_in_words(tmp_path):
    path = write_squad(tmp_path, QUESTIONS)
    examples = squad.read_squad_examples(path, is_training=True, version_2_with_negative=True)
    by_id = {e.qas_id: e for e in examples}
    assert [e.qas_id for e in examples] == ["born", "leader", "country", "impossible"]
    born = by_id["born"]
    assert born.doc_tokens[born.start_position:born.end_position + 1] == ["(1895-1943)."]
    leader = by_id["leader"]
    assert leader.doc_tokens[leader.start_position:leader.end_position + 1] == ["John", "Smith"]
    assert (by_id["impossible"].start_position, by_id["impossible"].end_position) == (-1, -1)
    assert by_id["impossible"].orig_answer_text == "" and by_id["impossible"].is_impossible


def test_version_1_training_rejects_unanswerable_questions(tmp_path):
    path = write_squad(tmp_path, QUESTIONS)
    with pytest.raises(ValueError, match="exactly 1 answer"):
        squad.read_squad_examples(path, is_training=True, version_2_with_negative=False)


def test_prediction_examples_have_no_positions(tmp_path):
    path = write_squad(tmp_path, QUESTIONS + [{"id": "multi", "question": "q", "answers": []}])
    examples = squad.read_squad_examples(path, is_training=False)
    assert len(examples) == 5
    assert all(e.start_position is None and not e.is_impossible for e in examples)


def test_training_features_point_at_answer_wordpieces(tmp_path, tokenizer):
    examples = squad.read_squad_examples(write_squad(tmp_path, QUESTIONS), True, version_2_with_negative=True)
    features = convert(examples, tokenizer, is_training=True)
    assert len(features) == len(examples)  # the paragraph fits one window
    answers = {f.example_index: f.tokens[f.start_position:f.end_position + 1] for f in features}
    assert answers[0] == ["1895"]  # narrowed from the word "(1895-1943)." by _improve_answer_span
    assert answers[1] == ["john", "smith"]
    assert answers[2] == ["japanese"]  # "Japan" is inside the wordpiece "japanese": the word is kept
    impossible = features[3]
    assert (impossible.start_position, impossible.end_position) == (0, 0) and impossible.is_impossible


def test_feature_layout_and_maps(tmp_path, tokenizer):
    examples = squad.read_squad_examples(write_squad(tmp_path, QUESTIONS[:1]), is_training=False)
    feature = convert(examples, tokenizer, is_training=False)[0]
    assert feature.tokens[:7] == ["[CLS]", "when", "was", "smith", "born", "?", "[SEP]"]
    assert feature.tokens[-1] == "[SEP]"
    num_tokens = len(feature.tokens)
    assert feature.input_ids[:num_tokens] == tokenizer.convert_tokens_to_ids(feature.tokens)
    assert feature.input_ids[num_tokens:] == [0] * (40 - num_tokens)
    assert feature.input_mask == [1] * num_tokens + [0] * (40 - num_tokens)
    assert feature.segment_ids == [0] * 7 + [1] * (num_tokens - 7) + [0] * (40 - num_tokens)
    assert feature.unique_id == 1000000000 and feature.start_position is None
    # "(1895-1943)." is document word 5 and became six wordpieces at positions 12..17.
    assert [feature.token_to_orig_map[i] for i in range(12, 18)] == [5] * 6
    assert sorted(feature.token_to_orig_map) == list(range(7, num_tokens - 1))


def test_sliding_windows_keep_answers_or_point_at_cls(tmp_path, tokenizer):
    examples = squad.read_squad_examples(write_squad(tmp_path, QUESTIONS), True, version_2_with_negative=True)
    features = convert(examples, tokenizer, is_training=True, max_seq_length=16, doc_stride=3, max_query_length=5)
    assert len(features) > 2 * len(examples)
    assert [f.unique_id for f in features] == list(range(1000000000, 1000000000 + len(features)))
    expected = {0: ["1895"], 1: ["john", "smith"], 2: ["japanese"]}
    hits = {index: 0 for index in expected}
    for feature in features:
        assert len(feature.input_ids) == 16
        if feature.start_position == 0:
            assert feature.end_position == 0
            continue
        answer = feature.tokens[feature.start_position:feature.end_position + 1]
        assert answer == expected[feature.example_index]
        hits[feature.example_index] += 1
    assert all(count >= 1 for count in hits.values())
    assert all(f.start_position == 0 for f in features if f.example_index == 3)


def test_each_token_has_exactly_one_max_context_window(tmp_path, tokenizer):
    examples = squad.read_squad_examples(write_squad(tmp_path, QUESTIONS[:1]), is_training=False)
    features = convert(examples, tokenizer, is_training=False, max_seq_length=16, doc_stride=4, max_query_length=5)
    num_doc_tokens = len(tokenizer.tokenize(CONTEXT))
    doc_offset = len(tokenizer.tokenize(QUESTIONS[0]["question"])) + 2
    spans = squad.make_doc_spans(num_doc_tokens, 16 - doc_offset - 1, 4)
    assert len(features) == len(spans) > 1
    windows_per_token = collections.Counter()
    for feature in features:
        span = spans[feature.doc_span_index]
        for position, is_max in feature.token_is_max_context.items():
            if is_max:
                windows_per_token[span.start + position - doc_offset] += 1
    assert windows_per_token == {index: 1 for index in range(num_doc_tokens)}


def test_doc_spans_and_max_context_follow_the_original():
    spans = squad.make_doc_spans(num_doc_tokens=10, max_tokens_for_doc=4, doc_stride=3)
    assert spans == [squad.DocSpan(0, 4), squad.DocSpan(3, 4), squad.DocSpan(6, 4)]
    # Token 3 ends span 0 and starts span 1: both give it no context on one side, so the earlier span keeps it.
    assert squad.is_max_context(spans, 0, 3)
    assert not squad.is_max_context(spans, 1, 3)
    # Token 4: span 1 has left 1 / right 2 context, span 0 does not contain it.
    assert squad.is_max_context(spans, 1, 4)
    assert squad.make_doc_spans(0, 4, 3) == []


def test_improve_answer_span_narrows_to_tokenized_answer(tokenizer):
    doc = ["(", "1895", "-", "1943", ")", "."]
    assert squad._improve_answer_span(doc, 0, 5, tokenizer, "1895") == (1, 1)
    assert squad._improve_answer_span(doc, 0, 5, tokenizer, "1895-1943") == (1, 3)
    assert squad._improve_answer_span(["japanese"], 0, 0, tokenizer, "Japan") == (0, 0)


def test_feature_writer_round_trip(tmp_path, tokenizer):
    examples = squad.read_squad_examples(write_squad(tmp_path, QUESTIONS), True, version_2_with_negative=True)
    features = convert(examples, tokenizer, is_training=True, max_seq_length=24, doc_stride=8, max_query_length=6)
    path = str(tmp_path / "train.tf_record")
    writer = squad.FeatureWriter(path, is_training=True, max_seq_length=24)
    for feature in features:
        writer.process_feature(feature)
    writer.close()
    assert writer.num_features == len(features)
    spec = squad.feature_spec(24, is_training=True)
    assert [f.name for f in spec] == ["unique_ids", "input_ids", "input_mask", "segment_ids", "start_positions",
                                      "end_positions", "is_impossible"]
    rows = input_pipeline.read_tfrecord(path, spec)
    for row, feature in zip(rows, features):
        assert int(row["unique_ids"]) == feature.unique_id
        np.testing.assert_array_equal(row["input_ids"], feature.input_ids)
        assert (int(row["start_positions"]), int(row["end_positions"])) == (feature.start_position,
                                                                            feature.end_position)
        assert int(row["is_impossible"]) == int(feature.is_impossible)
    assert [f.name for f in squad.feature_spec(24, is_training=False)] == ["unique_ids", "input_ids", "input_mask",
                                                                           "segment_ids"]


# ----------------------------------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------------------------------


def test_malformed_json_names_file_and_position(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"version": "v2.0",\n "data": [ {"title": "x",, } ]}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.json is not valid JSON: .* line 2, column \d+"):
        squad.read_squad_examples(str(path), is_training=False)


def test_missing_file_and_wrong_structure(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        squad.read_squad_examples(str(tmp_path / "nope.json"), is_training=False)
    path = tmp_path / "list.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ValueError, match="\"data\" list"):
        squad.read_squad_examples(str(path), is_training=False)
    path = write_squad(tmp_path, [{"id": "x", "answers": []}], name="noquestion.json")
    with pytest.raises(ValueError, match="question 0 has no \"question\" field"):
        squad.read_squad_examples(path, is_training=False)


def test_mismatched_answer_start_is_skipped_and_counted(tmp_path):
    tf_logger = logging.getLogger("tensorflow")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    tf_logger.addHandler(handler)
    try:
        questions = [qa("ok", "Who was the leader?", "John Smith"),
                     qa("shifted", "Who was the leader?", "John Smith", answer_start=0),
                     qa("outside", "Who was the leader?", "John Smith", answer_start=len(CONTEXT) + 5)]
        examples = squad.read_squad_examples(write_squad(tmp_path, questions), is_training=True)
    finally:
        tf_logger.removeHandler(handler)
    assert [e.qas_id for e in examples] == ["ok"]
    messages = [record.getMessage() for record in records]
    assert any("Could not find answer" in m for m in messages)
    assert any("Skipped 2 of 3 questions" in m for m in messages)


@pytest.mark.parametrize("max_seq_length,max_query_length", [(67, 64), (10, 8)])
def test_max_seq_length_must_exceed_query_length_plus_3(tokenizer, max_seq_length, max_query_length):
    example = squad.SquadExample("q", "who", ["john"])
    with pytest.raises(ValueError, match=rf"max_seq_length \({max_seq_length}\) must be greater than "
                                         rf"max_query_length \({max_query_length}\) \+ 3"):
        convert([example], tokenizer, is_training=False, max_seq_length=max_seq_length,
                max_query_length=max_query_length)


def test_doc_stride_must_be_positive(tokenizer):
    with pytest.raises(ValueError, match="doc_stride"):
        convert([squad.SquadExample("q", "who", ["john"])], tokenizer, is_training=False, doc_stride=0)
