"""NER data: CoNLL reading (BOM, tab-only separators, -DOCSTART-, spaces), tag schemes to BIO, the label list,
first-sub-token alignment, windows that own every word exactly once, and the most-frequent-tag baseline."""

import numpy as np
import pytest

from bert import tokenization
from bert.common.errors import UserError
from bert.ner import data as ner_data
from bert.runtime import input_pipeline
from bert.squad import data as squad
from helpers import TINY_VOCAB


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    return tokenization.FullTokenizer(str(path), do_lower_case=True)


def write(path, text, encoding="utf-8"):
    path.write_text(text, encoding=encoding)
    return str(path)


def test_reads_bom_tab_only_separators_docstart_and_last_column(tmp_path):
    path = write(tmp_path / "f.conll",
                 "-DOCSTART- -X- -X- O\n\nThe DT O\nDog NN B-PER\n\t\nbig\tI-LOC\n   \ncat x y B-LOC\n",
                 encoding="utf-8-sig")
    sentences = ner_data.read_conll(path, "file")
    assert [s.words for s in sentences] == [["The", "Dog"], ["big"], ["cat"]]
    assert [s.tags for s in sentences] == [["O", "B-PER"], ["I-LOC"], ["B-LOC"]]
    assert sentences[1].where(0) == f"{path}:6"


def test_untagged_file_and_missing_tag_column(tmp_path):
    path = write(tmp_path / "test.txt", "the\ndog\n\ncat\n")
    sentences = ner_data.read_conll(path, "file", require_tags=False)
    assert [s.words for s in sentences] == [["the", "dog"], ["cat"]] and sentences[0].tags is None
    with pytest.raises(UserError, match=r"test.txt:1: the line 'the' has no tag column"):
        ner_data.read_conll(path, "file")
    mixed = write(tmp_path / "mixed.txt", "the O\ndog\n")
    with pytest.raises(UserError, match=r"mixed.txt:2: .*no tag column"):
        ner_data.read_conll(mixed, "file", require_tags=False)
    with pytest.raises(UserError, match=r"training file \S+nothing.txt not found"):
        ner_data.read_conll(str(tmp_path / "nothing.txt"), "training file")


def test_alternative_tags(tmp_path):
    path = write(tmp_path / "t.conll", "Siachen\tB-location,B-group\nGlacier\tI-location,I-group\n")
    assert ner_data.read_conll(path, "f", alternative_tags="first")[0].tags == ["B-location", "I-location"]
    with pytest.raises(UserError, match=r"t.conll:1: the tag 'B-location,B-group' lists alternatives"):
        ner_data.read_conll(path, "f")


@pytest.mark.parametrize("scheme, tags, bio", [
    ("iob1", ["I-PER", "I-PER", "B-PER", "O", "I-LOC"], ["B-PER", "I-PER", "B-PER", "O", "B-LOC"]),
    ("bioes", ["S-PER", "B-LOC", "I-LOC", "E-LOC", "O", "B-PER", "E-PER"],
     ["B-PER", "B-LOC", "I-LOC", "I-LOC", "O", "B-PER", "I-PER"]),
    ("bio", ["B-PER", "I-PER", "O", "I-LOC"], ["B-PER", "I-PER", "O", "B-LOC"]),
])
def test_schemes_convert_to_bio(scheme, tags, bio):
    assert ner_data.to_bio(tags, scheme) == bio


def _sentence(tags, path="train.txt"):
    return ner_data.Sentence(["w"] * len(tags), list(tags), path, list(range(10, 10 + len(tags))))


def test_scheme_detection_and_malformed_tags():
    assert ner_data.detect_scheme([_sentence(["B-PER", "E-PER"])]) == "bioes"
    assert ner_data.detect_scheme([_sentence(["I-PER", "B-PER"])]) == "bio"
    converted = ner_data.converted([_sentence(["S-PER", "O"])], "bioes")
    assert converted[0].tags == ["B-PER", "O"]
    with pytest.raises(UserError, match=r"train.txt:11: malformed tag 'E-PER' for the BIO scheme"):
        ner_data.converted([_sentence(["B-PER", "E-PER"])], "bio")
    for bad in ("B-", "b-PER", "PER", "B_PER"):
        with pytest.raises(UserError, match="malformed tag"):
            ner_data.converted([_sentence([bad])], "bioes")


def test_label_list_and_unknown_tags():
    labels = ner_data.label_list_from([_sentence(["B-PER", "O"]), _sentence(["B-LOC", "I-LOC"])])
    assert labels == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]  # I-PER included though only B-PER was seen
    ner_data.check_known_tags([_sentence(["I-PER"], "dev.txt")], labels)
    with pytest.raises(UserError, match=r"dev.txt:11: tag 'B-ORG' \(entity type 'ORG'\) does not occur"):
        ner_data.check_known_tags([_sentence(["O", "B-ORG"], "dev.txt")], labels)


def test_first_sub_token_carries_the_label(tokenizer):
    words = ["the", "dogs", "walked", "houses", "."]
    assert ner_data.word_pieces(words, tokenizer) == [["the"], ["dog", "##s"], ["[UNK]"], ["house", "##s"], ["."]]
    assert ner_data.word_pieces(["\u200b"], tokenizer) == [["[UNK]"]]  # dropped by the tokenizer, still a word
    labels = ["O", "B-X", "I-X"]
    sentence = ner_data.Sentence(words, ["O", "B-X", "O", "B-X", "I-X"], "f", [1, 2, 3, 4, 5])
    [window] = ner_data.make_windows([sentence], labels, tokenizer, max_seq_length=12, doc_stride=4)
    tokens = tokenizer.convert_ids_to_tokens(window.input_ids[:9])
    assert tokens == ["[CLS]", "the", "dog", "##s", "[UNK]", "house", "##s", ".", "[SEP]"]
    assert window.label_weights == [0, 1, 1, 0, 1, 1, 0, 1, 0, 0, 0, 0]
    assert window.label_ids == [0, 0, 1, 0, 0, 1, 0, 2, 0, 0, 0, 0]
    assert window.input_mask == [1] * 9 + [0] * 3
    assert window.word_positions == {0: 1, 1: 2, 2: 4, 3: 5, 4: 7}


@pytest.mark.parametrize("max_seq_length, doc_stride", [(8, 2), (8, 6), (10, 3), (12, 20)])
def test_windows_predict_every_word_exactly_once(tokenizer, max_seq_length, doc_stride):
    rng = np.random.RandomState(max_seq_length + doc_stride)
    vocabulary = ["the", "dogs", "house", "cats", "city", "walked", "big", "."]
    words = [str(w) for w in rng.choice(vocabulary, size=30)]
    sentence = ner_data.Sentence(words, ["O"] * 30, "f", list(range(30)))
    windows = ner_data.sentence_windows(0, sentence, {"O": 0}, tokenizer, max_seq_length, doc_stride)
    assert len(windows) > 1
    owners = {}
    for index, window in enumerate(windows):
        assert sum(window.label_weights) == len(window.word_positions)
        for word, position in window.word_positions.items():
            assert word not in owners, f"word {word} owned twice"
            owners[word] = index
            assert window.label_weights[position] == 1
            first_piece = ner_data.word_pieces([words[word]], tokenizer)[0][0]
            assert tokenizer.convert_ids_to_tokens([window.input_ids[position]]) == [first_piece]
    assert sorted(owners) == list(range(30))

    # The owner is the window where the word's first sub-token has the most context (as SQuAD scores tokens).
    pieces = ner_data.word_pieces(words, tokenizer)
    first = np.cumsum([0] + [len(p) for p in pieces])[:-1]
    spans = squad.make_doc_spans(int(sum(len(p) for p in pieces)), max_seq_length - 2, doc_stride)
    for word, owner in owners.items():
        def context(span):
            return min(first[word] - span.start, span.start + span.length - 1 - first[word])

        best = max(context(s) for s in spans if s.start <= first[word] < s.start + s.length)
        assert context(spans[owner]) == best


def test_predictions_are_assembled_from_the_owning_windows(tokenizer):
    words = ["the", "dogs", "house", "cats", "city", "big", "the", "dogs", "."]
    sentence = ner_data.Sentence(words, None, "f", list(range(9)))
    windows = ner_data.make_windows([sentence], ["O", "B-X"], tokenizer, max_seq_length=6, doc_stride=2)
    # Each window predicts label 1 exactly at the positions it owns, 0 elsewhere: the result must be all 1.
    probabilities = []
    for window in windows:
        p = np.tile([0.9, 0.1], (6, 1))
        for position in window.word_positions.values():
            p[position] = [0.2, 0.8]
        probabilities.append(p)
    assert ner_data.word_label_ids(windows, probabilities, [sentence]) == [[1] * 9]
    padded = ner_data.padded_for_tpu(windows, 4, 6)
    assert len(padded) % 4 == 0 and all(w.word_positions == {} for w in padded[len(windows):])


def test_records_round_trip(tokenizer, tmp_path):
    sentence = ner_data.Sentence(["the", "dogs"], ["O", "B-X"], "f", [1, 2])
    windows = ner_data.make_windows([sentence], ["O", "B-X", "I-X"], tokenizer, 8, 4)
    path = str(tmp_path / "r.tf_record")
    assert ner_data.write_windows(windows, path, 8) == 1
    [row] = input_pipeline.read_tfrecord(path, ner_data.ner_feature_spec(8))
    assert row["label_ids"].tolist() == windows[0].label_ids
    assert row["label_weights"].tolist() == [0, 1, 1, 0, 0, 0, 0, 0]


def test_window_settings_are_checked():
    with pytest.raises(UserError, match="--doc_stride=0"):
        ner_data.check_window_settings(128, 0)
    with pytest.raises(UserError, match="--max_seq_length=2"):
        ner_data.check_window_settings(2, 64)


def test_most_frequent_tag_baseline():
    train = [ner_data.Sentence(["Paris", "Paris", "Paris", "York", "in"], ["B-LOC", "B-LOC", "B-PER", "I-LOC", "O"],
                               "f", [1, 2, 3, 4, 5])]
    test = [ner_data.Sentence(["in", "Paris", "York", "London", "York"], None, "g", [1, 2, 3, 4, 5])]
    # York's I-LOC continues Paris's B-LOC; after the unseen London (O) it is repaired to B-LOC.
    assert ner_data.most_frequent_tag_baseline(train, test) == [["O", "B-LOC", "I-LOC", "O", "B-LOC"]]


def test_raw_text_is_split_into_words_where_basic_tokenizer_splits():
    assert ner_data.split_words("Hello, John Smith!  I live in 北京 now.") == [
        ("Hello", 0, 5), (",", 5, 6), ("John", 7, 11), ("Smith", 12, 17), ("!", 17, 18), ("I", 20, 21),
        ("live", 22, 26), ("in", 27, 29), ("北", 30, 31), ("京", 31, 32), ("now", 33, 36), (".", 36, 37)]
    assert ner_data.split_words("") == [] and ner_data.split_words(" \t a\u3000b ") == [("a", 3, 4), ("b", 5, 6)]
