"""Classification data: GLUE readers, feature conversion as the original, TFRecord round trip, input errors."""

import os

import numpy as np
import pytest

from bert import tokenization
from bert.classifier import data as classifier_data
from bert.runtime import input_pipeline
from helpers import shared_path

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "dog", "is", "hairy", "no", "it", "not", ".", "?",
         "jack", "##son", "##ville", "a", "cat"]


@pytest.fixture
def tokenizer(tmp_path):
    vocab_file = tmp_path / "vocab.txt"
    vocab_file.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return tokenization.FullTokenizer(str(vocab_file), do_lower_case=True)


def write_tsv(folder, name, rows):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
        for row in rows:
            f.write("\t".join(row) + "\n")


def test_pair_features_match_original_layout(tokenizer):
    example = classifier_data.InputExample("dev-1", "is jacksonville ?", "no it is not .", "1")
    features = classifier_data.convert_single_example(0, example, ["0", "1"], 16, tokenizer)
    tokens = tokenizer.convert_ids_to_tokens(features.input_ids[:13])
    assert tokens == ["[CLS]", "is", "jack", "##son", "##ville", "?", "[SEP]", "no", "it", "is", "not", ".", "[SEP]"]
    assert features.segment_ids == [0] * 7 + [1] * 6 + [0] * 3
    assert features.input_mask == [1] * 13 + [0] * 3
    assert features.input_ids[13:] == [0, 0, 0]
    assert features.label_id == 1 and features.is_real_example


def test_single_sentence_is_truncated_to_fit_cls_and_sep(tokenizer):
    example = classifier_data.InputExample("x", "the dog is hairy the dog is hairy", None, "0")
    features = classifier_data.convert_single_example(0, example, ["0", "1"], 6, tokenizer)
    assert tokenizer.convert_ids_to_tokens(features.input_ids) == ["[CLS]", "the", "dog", "is", "hairy", "[SEP]"]
    assert features.segment_ids == [0] * 6


def test_truncate_seq_pair_trims_longer_side_and_b_on_ties():
    a, b = list("abcdef"), list("xy")
    classifier_data._truncate_seq_pair(a, b, 5)
    assert a == list("abc") and b == list("xy")
    a, b = list("ab"), list("xy")
    classifier_data._truncate_seq_pair(a, b, 3)
    assert a == list("ab") and b == ["x"]


def test_padding_example_is_all_zero_and_not_real(tokenizer):
    features = classifier_data.convert_single_example(0, classifier_data.PaddingInputExample(), ["0", "1"], 8,
                                                      tokenizer)
    assert features.input_ids == [0] * 8 and features.input_mask == [0] * 8
    assert features.label_id == 0 and not features.is_real_example
    padded = classifier_data.pad_for_tpu([object()] * 5, 4)
    assert len(padded) == 8 and all(isinstance(p, classifier_data.PaddingInputExample) for p in padded[5:])


def test_regression_label_is_float(tokenizer):
    example = classifier_data.InputExample("x", "a cat", "a dog", "3.8")
    features = classifier_data.convert_single_example(0, example, None, 8, tokenizer)
    assert features.label_id == pytest.approx(3.8)


def test_tfrecord_round_trip(tokenizer, tmp_path):
    examples = [classifier_data.InputExample("a", "the dog", "a cat", "1"),
                classifier_data.InputExample("b", "jacksonville", None, "0"),
                classifier_data.PaddingInputExample()]
    path = str(tmp_path / "train.tf_record")
    classifier_data.file_based_convert_examples_to_features(examples, ["0", "1"], 10, tokenizer, path)
    rows = input_pipeline.read_tfrecord(path, classifier_data.classifier_feature_spec(10))
    expected = classifier_data.convert_examples_to_features(examples, ["0", "1"], 10, tokenizer)
    assert len(rows) == 3
    for row, feature in zip(rows, expected):
        np.testing.assert_array_equal(row["input_ids"], feature.input_ids)
        np.testing.assert_array_equal(row["segment_ids"], feature.segment_ids)
        assert row["label_ids"] == feature.label_id
        assert row["is_real_example"] == int(feature.is_real_example)


def test_real_mrpc_files_read_as_original():
    data_dir = os.path.dirname(shared_path("data", "glue", "MRPC", "train.tsv"))
    processor = classifier_data.get_processor("MRPC")
    train = processor.get_train_examples(data_dir)
    dev = processor.get_dev_examples(data_dir)
    test = processor.get_test_examples(data_dir)
    assert (len(train), len(dev), len(test)) == (3668, 408, 1725)
    assert train[0].guid == "train-1" and train[0].label == "1"
    assert train[0].text_a.startswith("Amrozi accused his brother")
    assert train[0].text_b.startswith("Referring to him as only")
    assert all(ex.label == "0" for ex in test)
    assert processor.get_labels() == ["0", "1"]


@pytest.mark.parametrize("task, files, expected", [
    ("cola", {"train.tsv": [["gj04", "1", "", "The dog barks ."]]}, ("The dog barks .", None, "1")),
    ("sst-2", {"train.tsv": [["sentence", "label"], ["a fine film", "1"]]}, ("a fine film", None, "1")),
    ("qnli", {"train.tsv": [["index", "question", "sentence", "label"], ["0", "Who?", "Him.", "entailment"]]},
     ("Who?", "Him.", "entailment")),
    ("rte", {"train.tsv": [["index", "s1", "s2", "label"], ["0", "A b.", "C d.", "not_entailment"]]},
     ("A b.", "C d.", "not_entailment")),
    ("wnli", {"train.tsv": [["index", "s1", "s2", "label"], ["0", "A b.", "C d.", "1"]]}, ("A b.", "C d.", "1")),
    ("qqp", {"train.tsv": [["id", "qid1", "qid2", "q1", "q2", "dup"], ["7", "1", "2", "Why?", "How?", "0"]]},
     ("Why?", "How?", "0")),
    ("sts-b", {"train.tsv": [["i", "g", "f", "y", "o", "s1", "s2", "sentence1", "sentence2", "score"],
                             ["0", "m", "f", "2012", "1", "a", "b", "A man.", "A person.", "4.250"]]},
     ("A man.", "A person.", "4.250")),
    ("mnli", {"train.tsv": [["h"] * 12, ["31193", "x", "x", "x", "x", "x", "x", "x", "Premise.", "Hyp.", "x",
                                        "neutral"]]}, ("Premise.", "Hyp.", "neutral")),
])
def test_glue_layouts(tmp_path, task, files, expected):
    for name, rows in files.items():
        write_tsv(tmp_path, name, rows)
    examples = classifier_data.get_processor(task).get_train_examples(str(tmp_path))
    assert len(examples) == 1
    assert (examples[0].text_a, examples[0].text_b, examples[0].label) == expected


def test_mnli_guid_uses_pair_id(tmp_path):
    write_tsv(tmp_path, "dev_matched.tsv", [["h"] * 12, ["9815", *["x"] * 7, "P.", "H.", "x", "entailment"]])
    assert classifier_data.get_processor("mnli").get_dev_examples(str(tmp_path))[0].guid == "dev_matched-9815"


def test_xnli_reads_one_language(tmp_path):
    write_tsv(tmp_path, "xnli.dev.tsv", [["language", "gold_label"] + ["h"] * 6,
                                         ["zh", "neutral", "", "", "", "", "前提", "假设"],
                                         ["fr", "neutral", "", "", "", "", "a", "b"]])
    write_tsv(os.path.join(tmp_path, "multinli"), "multinli.train.zh.tsv",
              [["premise", "hypo", "label"], ["前提", "假设", "contradictory"]])
    processor = classifier_data.get_processor("xnli")
    dev = processor.get_dev_examples(str(tmp_path))
    assert [(e.guid, e.text_a, e.label) for e in dev] == [("dev-1", "前提", "neutral")]
    assert processor.get_train_examples(str(tmp_path))[0].label == "contradiction"


def test_unknown_task_lists_known_ones():
    with pytest.raises(ValueError, match=r"Task not found: 'foo'.*mrpc.*sts-b"):
        classifier_data.get_processor("foo")


def test_short_row_names_file_and_line(tmp_path):
    write_tsv(tmp_path, "train.tsv", [["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
                                      ["1", "1", "2", "A.", "B."], ["0", "3", "4", "only four"]])
    with pytest.raises(ValueError, match=r"train\.tsv, line 3: expected at least 5 .*found 4"):
        classifier_data.get_processor("mrpc").get_train_examples(str(tmp_path))


def test_unknown_label_names_file_and_line(tmp_path):
    write_tsv(tmp_path, "dev.tsv", [["Quality", "a", "b", "c", "d"], ["2", "1", "2", "A.", "B."]])
    with pytest.raises(ValueError, match=r"dev\.tsv, line 2: label '2' is not one of"):
        classifier_data.get_processor("mrpc").get_dev_examples(str(tmp_path))


def test_non_numeric_regression_label(tmp_path):
    write_tsv(tmp_path, "train.tsv", [["h"] * 10, ["0"] * 7 + ["A.", "B.", "high"]])
    with pytest.raises(ValueError, match="label 'high' is not a number"):
        classifier_data.get_processor("sts-b").get_train_examples(str(tmp_path))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="train.tsv"):
        classifier_data.get_processor("rte").get_train_examples(str(tmp_path))
