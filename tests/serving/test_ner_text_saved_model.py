"""The exported NER model takes raw text: the `text` signature splits words, cuts windows and picks each word's
label in the graph, as run_ner and the Predictor do in Python."""

import glob
import os

import numpy as np
import pytest
from helpers import shared_path

from bert import tokenization
from bert.ner import data as ner_data
from bert.runtime import export
from bert.runtime.task_file import SAVED_MODEL_EXTRAS, load_task_description

pytestmark = pytest.mark.slow  # each needs a model fine-tuned for it (tests/serving/conftest.py)

TRAPS = ["", "   ", "dog", "new city,cat!(dog)the", "a\u00a0dog\u3000cat\tnew\ncity", "北京cat東京 dog",
         "ctrl\x00dog\x07 \x07 cat", "naïve dog's «cat» — ok...", "😀dog👍🏽 cat", "Σ dog"]


def saved_model(export_dir):
    return sorted(glob.glob(os.path.join(export_dir, "[0-9]*")))[-1]


def tags_from_text_signature(export_dir, texts):
    outputs = export.predict_with_saved_model(saved_model(export_dir), {"text": texts}, export.TEXT_SIGNATURE_KEY)
    results = []
    for row, text in enumerate(texts):
        count = sum(1 for tag in outputs["tags"][row] if tag)
        results.append([(outputs["words"][row][i].decode(), int(outputs["starts"][row][i]),
                         int(outputs["ends"][row][i]), outputs["tags"][row][i].decode()) for i in range(count)])
    return results


def tags_through_python_windows(export_dir, texts, max_seq_length=16, doc_stride=5):
    """What the Predictor computes: split_words and run_ner's windows in Python, the ids signature, and each
    word's label from the window that owns it."""
    description, vocab_file = load_task_description(os.path.join(saved_model(export_dir), SAVED_MODEL_EXTRAS))
    tokenizer = tokenization.FullTokenizer(vocab_file, description.do_lower_case)
    words = [ner_data.split_words(text) for text in texts]
    sentences = [ner_data.Sentence([word for word, _, _ in text_words], None, "text", []) for text_words in words]
    windows = [window for index, sentence in enumerate(sentences)
               for window in ner_data.sentence_windows(index, sentence, None, tokenizer, max_seq_length, doc_stride)]
    outputs = export.predict_with_saved_model(saved_model(export_dir), {
        name: np.array([getattr(window, name) for window in windows], np.int32)
        for name in ("input_ids", "input_mask", "segment_ids")})
    label_ids = ner_data.word_label_ids(windows, list(outputs["probabilities"]), sentences)
    return [[(word, start, end, description.labels[label]) for (word, start, end), label in zip(text_words, ids)]
            for text_words, ids in zip(words, label_ids)]


def test_tags_equal_run_ners_predictions(trained_ner_run):
    """The test sentences (one of 40 words over several windows of 16) as text: run_ner's test_predictions.txt."""
    texts = [" ".join(words) for words in trained_ner_run["words"]]
    tagged = tags_from_text_signature(trained_ner_run["export_dir"], texts)
    assert [[word for word, _, _, _ in text] for text in tagged] == trained_ner_run["words"]
    assert [[tag for _, _, _, tag in text] for text in tagged] == trained_ner_run["predicted_tags"]


def test_words_offsets_and_tags_equal_pythons_on_real_tweets(trained_ner_run):
    """WNUT-17 tweets as raw text (emoji, URLs, @names, punctuation against words) and traps (control, CJK and
    space characters): split_words' words and offsets, and the labels of run_ner's windows."""
    sentences, words = [], []
    with open(shared_path("data", "ner", "wnut17", "emerging.test.conll"), encoding="utf-8") as reader:
        for line in reader:
            if line.strip():
                words.append(line.split("\t")[0])
            elif words:
                sentences.append("".join(word if word in ",.!?:;)'" else " " + word for word in words).strip())
                words = []
    texts = sentences[:300] + TRAPS
    tagged = tags_from_text_signature(trained_ner_run["export_dir"], texts)
    expected = tags_through_python_windows(trained_ner_run["export_dir"], texts)
    for text, got, want in zip(texts, tagged, expected):
        assert got == want, text
    assert all(text[start:end] == word for text, words in zip(texts, tagged) for word, start, end, _ in words)
