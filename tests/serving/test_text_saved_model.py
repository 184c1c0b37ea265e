"""The exported classifier takes raw text in the graph: its `text` signature gives run_classifier's probabilities and
labels for the test pairs with no Python tokenizer, and its ids signature is unchanged."""

import os

import numpy as np
import pytest

from bert import tokenization
from bert.classifier import data as classifier_data
from bert.runtime import export

pytestmark = pytest.mark.slow  # each needs a model fine-tuned for it (tests/serving/conftest.py)


def run_text_signature(saved_model_dir, texts_a, texts_b):
    return export.predict_with_saved_model(saved_model_dir, {"text_a": texts_a, "text_b": texts_b},
                                           export.TEXT_SIGNATURE_KEY)


def test_raw_text_gives_run_classifiers_probabilities_and_labels(trained_run):
    outputs = run_text_signature(trained_run["saved_model"], trained_run["texts_a"], trained_run["texts_b"])
    np.testing.assert_allclose(outputs["probabilities"], trained_run["expected"], atol=1e-5, rtol=0)
    expected_labels = [str(int(np.argmax(row))) for row in trained_run["expected"]]
    assert [label.decode() for label in outputs["label"]] == expected_labels
    single = run_text_signature(trained_run["saved_model"], trained_run["texts_a"][:2], ["", ""])
    assert single["probabilities"].shape == (2, 2)


def test_the_ids_signature_still_serves_ids(trained_run, tiny_model_dir):
    tokenizer = tokenization.FullTokenizer(os.path.join(tiny_model_dir, "vocab.txt"), True)
    features = [classifier_data.convert_single_example(10, classifier_data.InputExample("t", a, b, "0"), ["0", "1"],
                                                       32, tokenizer)
                for a, b in zip(trained_run["texts_a"], trained_run["texts_b"])]
    outputs = export.predict_with_saved_model(trained_run["saved_model"], {
        name: np.array([getattr(feature, name) for feature in features], np.int32)
        for name in ("input_ids", "input_mask", "segment_ids")})
    np.testing.assert_allclose(outputs["probabilities"], trained_run["expected"], atol=1e-5, rtol=0)
