"""extract_features: exact JSON number text, line handling, parity with an unsorted padded run and with the
original BertModel's MiniLM goldens, JSON layout, npz output, the script, and clear errors."""

import collections
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from helpers import REPO_ROOT, needs_bfloat16_kernels, shared_path
from task_data import GOLDEN_SENTENCES, write_lines

from bert import modeling, tokenization
from bert.features import extraction as feature_extraction
from bert.runtime import specs
from bert.runtime.performance import PerformanceSettings

SCRIPT = os.path.join(REPO_ROOT, "scripts", "extract_features.py")

# Lines of varied length (so length sorting reorders them), a pair, an empty line and an unknown word.
TINY_LINES = [
    "the dog was in the house .",
    "a cat",
    "the man said that the woman was good ||| they were not at the city",
    "",
    "the big old tree by the river , the small new car , the first book of the day",
    "zebra",
    "yes ||| no",
]


def tiny_paths(model_dir):
    return dict(bert_config=os.path.join(model_dir, "bert_config.json"),
                init_checkpoint=os.path.join(model_dir, "bert_model.ckpt"),
                vocab_file=os.path.join(model_dir, "vocab.txt"))


def tiny_extractor(model_dir, **overrides):
    settings = dict(tiny_paths(model_dir), layers="-1,-2", max_seq_length=16, batch_size=2)
    settings.update(overrides)
    return feature_extraction.FeatureExtractor(**settings)


def original_json_line(linex_index, tokens, layer_indexes, layer_outputs):
    """The original's record, built as it built it: OrderedDicts, round(float(x), 6) and json.dumps."""
    record = collections.OrderedDict(linex_index=linex_index)
    entries = []
    for position, token in enumerate(tokens):
        layers = []
        for k, index in enumerate(layer_indexes):
            layer = collections.OrderedDict(index=index)
            layer["values"] = [round(float(x), 6) for x in layer_outputs[k, position]]
            layers.append(layer)
        entries.append(collections.OrderedDict(token=token, layers=layers))
    record["features"] = entries
    return json.dumps(record) + "\n"


def padded_reference_outputs(model_dir, features, layer_indexes):
    """Layer outputs [num_examples, num_layers, max_seq_length, hidden] of one unsorted, fully padded batch."""
    paths = tiny_paths(model_dir)
    config = modeling.BertConfig.from_json_file(paths["bert_config"])
    with tf.Graph().as_default():
        model = modeling.BertModel(
            config, is_training=False,
            input_ids=tf.constant([f.input_ids for f in features]),
            input_mask=tf.constant([f.input_mask for f in features]),
            token_type_ids=tf.constant([f.input_type_ids for f in features]))
        specs.init_from_checkpoint(paths["init_checkpoint"], use_tpu=False)
        layers = model.get_all_encoder_layers()
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            return np.stack(session.run([layers[i] for i in layer_indexes]), axis=1)


# ----------------------------------------------------------------------------------------------------------------
# Number formatting
# ----------------------------------------------------------------------------------------------------------------


def reference_texts(rows):
    return [", ".join(json.dumps(round(float(x), 6)) for x in row).encode("ascii") for row in rows]


def test_number_text_equals_round_then_json_on_random_float32_bit_patterns():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 2 ** 32, 600_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    values = values[np.isfinite(values) & (np.abs(values) < 1e4)]
    rows = values[: values.size // 50 * 50].reshape(-1, 50)
    assert feature_extraction.format_rounded_floats(rows) == reference_texts(rows)


@pytest.mark.parametrize("scale", [1e-7, 1e-6, 3e-5, 1e-4, 1e-2, 1.0, 300.0])
def test_number_text_equals_round_then_json_at_every_magnitude(scale):
    rows = np.random.default_rng(1).normal(0.0, scale, (300, 40)).astype(np.float32)
    assert feature_extraction.format_rounded_floats(rows) == reference_texts(rows)


def test_number_text_handles_ties_signed_zero_and_notation_switch():
    # k / 2**n are exact binary fractions, many of them exact ties at the 7th decimal (round half to even);
    # 1e-4 is where repr() switches between "9.9e-05" and "0.0001".
    ties = (np.arange(-3000, 3000)[None, :] / 2.0 ** np.array([[7], [10], [20], [23]])).reshape(-1, 100)
    edges = [[0.0, -0.0, -4e-7, 4e-7, 5e-7, -5e-7, 1e-6, 9.9e-5, 9.95e-5, 9.9999e-5, 1e-4, -1e-4, 1.5e-5, 9999.0]]
    for rows in (ties.astype(np.float32), np.array(edges, np.float32)):
        assert feature_extraction.format_rounded_floats(rows) == reference_texts(rows)
    assert feature_extraction.format_rounded_floats(np.array([[-1e-7, 1e-5, 0.0001]], np.float32)) == [
        b"-0.0, 1e-05, 0.0001"]


def test_values_outside_the_tables_fall_back_to_exact_formatting():
    rows = np.array([[np.nan, np.inf, -np.inf], [1e4, -2.5e20, 0.1]], np.float32)
    texts = feature_extraction.format_rounded_floats(rows)
    assert texts == reference_texts(rows)
    assert texts[0] == b"NaN, Infinity, -Infinity"


def test_json_line_is_the_originals_text():
    rng = np.random.default_rng(2)
    outputs = rng.normal(0.0, 0.7, (3, 4, 8)).astype(np.float32)
    outputs[0, 0, 0] = 3e-5
    tokens = ["[CLS]", "caf\u00e9", "\"quoted\"", "[SEP]"]
    line = feature_extraction.JsonLineFormatter([-1, -3, 0]).line(17, tokens, outputs)
    assert line.decode("ascii") == original_json_line(17, tokens, [-1, -3, 0], outputs)


# ----------------------------------------------------------------------------------------------------------------
# Input lines, features and settings
# ----------------------------------------------------------------------------------------------------------------


def test_read_examples_splits_pairs_and_keeps_empty_lines(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes("one text\n\n  a ||| b  \nx ||| y ||| z\n|||\r\nlast, no newline".encode("utf-8"))
    examples = feature_extraction.read_examples(str(path))
    assert [(e.unique_id, e.text_a, e.text_b) for e in examples] == [
        (0, "one text", None), (1, "", None), (2, "a", "b"), (3, "x ||| y", "z"), (4, "|||", None),
        (5, "last, no newline", None)]


def test_features_of_a_pair_are_truncated_longer_side_first(tiny_model_dir):
    tokenizer = tokenization.FullTokenizer(tiny_paths(tiny_model_dir)["vocab_file"])
    example = feature_extraction.InputExample(0, "the dog was in the house", "a cat")
    feature = feature_extraction.convert_example_to_features(example, 9, tokenizer)
    assert feature.tokens == ["[CLS]", "the", "dog", "was", "in", "[SEP]", "a", "cat", "[SEP]"]
    assert feature.input_type_ids == [0] * 6 + [1] * 3
    empty = feature_extraction.convert_example_to_features(feature_extraction.InputExample(1, ""), 9, tokenizer)
    assert empty.tokens == ["[CLS]", "[SEP]"]
    assert empty.input_mask == [1, 1] + [0] * 7 and len(empty.input_ids) == 9


def test_layer_indexes_are_checked_against_the_model():
    assert feature_extraction.parse_layer_indexes("-1,-2,-3,-4", 6) == [-1, -2, -3, -4]
    assert feature_extraction.parse_layer_indexes([0, 5, -6], 6) == [0, 5, -6]
    with pytest.raises(ValueError, match=r"layer index -7 is out of range .* 6 hidden layers.*-6\.\.5"):
        feature_extraction.parse_layer_indexes("-1,-7", 6)
    with pytest.raises(ValueError, match="layer index 6 is out of range"):
        feature_extraction.parse_layer_indexes("6", 6)
    with pytest.raises(ValueError, match="comma-separated integers"):
        feature_extraction.parse_layer_indexes("-1;-2", 6)


def test_length_sorted_order_sorts_inside_windows_only():
    lengths = [5, 3, 9, 1, 7, 2, 8]
    assert feature_extraction.length_sorted_order(lengths, 3) == [1, 0, 2, 3, 5, 4, 6]
    assert feature_extraction.length_sorted_order(lengths, 100) == [3, 5, 1, 0, 4, 6, 2]


# ----------------------------------------------------------------------------------------------------------------
# End to end on the tiny model
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_jsonl(tiny_model_dir, tmp_path_factory):
    """JSON lines of TINY_LINES with --dynamic_padding (windows of 2 batches of 2 lines, so sorting and
    reordering both happen)."""
    folder = tmp_path_factory.mktemp("tiny_features")
    input_file = write_lines(folder / "in.txt", TINY_LINES)
    output_file = str(folder / "out.jsonl")
    extractor = tiny_extractor(tiny_model_dir, dynamic_padding=True)
    window = feature_extraction.SORT_WINDOW_BATCHES
    feature_extraction.SORT_WINDOW_BATCHES = 2
    try:
        count = feature_extraction.write_features_file(extractor, input_file, output_file)
    finally:
        feature_extraction.SORT_WINDOW_BATCHES = window
    assert count == len(TINY_LINES)
    with open(output_file, encoding="ascii") as reader:
        return extractor, input_file, reader.read().splitlines(keepends=True)


def test_jsonl_lines_are_in_input_order_with_the_originals_layout(tiny_jsonl):
    extractor, input_file, lines = tiny_jsonl
    features = extractor.convert(feature_extraction.read_examples(input_file))
    assert len(lines) == len(TINY_LINES)
    for line_number, (line, feature) in enumerate(zip(lines, features)):
        record = json.loads(line, object_pairs_hook=lambda pairs: pairs)  # keeps key order
        assert [key for key, _ in record] == ["linex_index", "features"]
        assert record[0][1] == line_number
        tokens = [entry[0][1] for entry in record[1][1]]
        assert tokens == feature.tokens
        for entry in record[1][1]:
            assert [key for key, _ in entry] == ["token", "layers"]
            assert [[key for key, _ in layer] for layer in entry[1][1]] == [["index", "values"]] * 2
            assert [layer[0][1] for layer in entry[1][1]] == [-1, -2]
    assert json.loads(lines[3])["features"][0]["token"] == "[CLS]"
    assert [f["token"] for f in json.loads(lines[3])["features"]] == ["[CLS]", "[SEP]"]


def test_jsonl_values_match_an_unsorted_fully_padded_run(tiny_jsonl, tiny_model_dir):
    extractor, input_file, lines = tiny_jsonl
    features = extractor.convert(feature_extraction.read_examples(input_file))
    reference = padded_reference_outputs(tiny_model_dir, features, [-1, -2])
    for line, feature, expected in zip(lines, features, reference):
        got = np.array([[layer["values"] for layer in entry["layers"]] for entry in json.loads(line)["features"]])
        real = np.transpose(expected[:, :len(feature.tokens)], (1, 0, 2))  # [T, K, H]
        np.testing.assert_allclose(got, real, atol=2e-6)


def test_npz_output_holds_the_same_values(tiny_model_dir, tiny_jsonl, tmp_path):
    extractor, input_file, lines = tiny_jsonl
    json_values = [np.array([[layer["values"] for layer in e["layers"]] for e in json.loads(line)["features"]])
                   for line in lines]
    for dtype, tolerance in (("float32", 1e-6), ("float16", 2e-3)):
        output_file = str(tmp_path / f"out_{dtype}.npz")
        feature_extraction.write_features_file(extractor, input_file, output_file, output_format="npz",
                                               npz_dtype=dtype)
        with np.load(output_file, allow_pickle=False) as data:
            assert data["values"].dtype == np.dtype(dtype)
            assert data["values"].shape == (sum(len(v) for v in json_values), 2, 32)
            np.testing.assert_array_equal(data["layers"], [-1, -2])
            np.testing.assert_array_equal(data["token_offsets"], np.cumsum([0] + [len(v) for v in json_values]))
        loaded = feature_extraction.load_npz_features(output_file)
        assert len(loaded) == len(TINY_LINES)
        for (tokens, values), line, expected in zip(loaded, lines, json_values):
            assert tokens == [e["token"] for e in json.loads(line)["features"]]
            np.testing.assert_allclose(np.transpose(values, (1, 0, 2)), expected, atol=tolerance, rtol=tolerance)


def test_library_api_returns_arrays_in_input_order(tiny_model_dir, tiny_jsonl):
    _, _, lines = tiny_jsonl
    texts = ["the dog was in the house .", "a cat", ("yes", "no"), ""]
    results = feature_extraction.extract_features(texts, layers=(-1, -2), max_seq_length=16, batch_size=3,
                                                  **tiny_paths(tiny_model_dir))
    expected_lines = [lines[0], lines[1], lines[6], lines[3]]
    assert len(results) == len(texts)
    for (tokens, values), line in zip(results, expected_lines):
        record = json.loads(line)
        assert tokens == [e["token"] for e in record["features"]]
        assert values.dtype == np.float32 and values.shape == (2, len(tokens), 32)
        expected = np.array([[layer["values"] for layer in e["layers"]] for e in record["features"]])
        np.testing.assert_allclose(np.transpose(values, (1, 0, 2)), expected, atol=2e-6)


@needs_bfloat16_kernels
def test_bf16_features_are_close_to_float32(tiny_model_dir):
    texts = ["the dog was in the house .", "a cat", ("yes", "no")]
    paths = tiny_paths(tiny_model_dir)
    exact = feature_extraction.extract_features(texts, layers=(-1,), max_seq_length=16, **paths)
    mixed = feature_extraction.extract_features(texts, layers=(-1,), max_seq_length=16, **paths,
                                                performance=PerformanceSettings(precision="bf16"))
    for (tokens, values), (mixed_tokens, mixed_values) in zip(exact, mixed):
        assert mixed_tokens == tokens and mixed_values.dtype == np.float32
        difference = np.abs(mixed_values - values).max()
        assert 0 < difference < 0.1, difference  # rounded to bfloat16's 8 bits, not garbage


@pytest.mark.slow
def test_script_writes_jsonl(tiny_model_dir, tmp_path):
    input_file = write_lines(tmp_path / "in.txt", ["the dog", "a cat ||| the man"])
    paths = tiny_paths(tiny_model_dir)
    command = [sys.executable, SCRIPT, f"--input_file={input_file}", f"--vocab_file={paths['vocab_file']}",
               f"--bert_config_file={paths['bert_config']}", f"--init_checkpoint={paths['init_checkpoint']}",
               "--max_seq_length=16", "--layers=-1", f"--output_file={tmp_path / 'out.jsonl'}"]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Predicted 2 examples in" in completed.stderr  # the progress report of long extractions
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [[e["token"] for e in r["features"]] for r in records] == [
        ["[CLS]", "the", "dog", "[SEP]"], ["[CLS]", "a", "cat", "[SEP]", "the", "man", "[SEP]"]]
    assert [[layer["index"] for layer in r["features"][0]["layers"]] for r in records] == [[-1], [-1]]


# ----------------------------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------------------------


def test_missing_output_folder_fails_before_any_model_work(tiny_model_dir, tmp_path):
    input_file = write_lines(tmp_path / "in.txt", ["the dog"])
    missing = str(tmp_path / "no_such_folder" / "out.jsonl")
    with pytest.raises(FileNotFoundError, match="no_such_folder.*does not exist"):
        feature_extraction.write_features_file(tiny_extractor(tiny_model_dir), input_file, missing)


def test_missing_input_and_bad_formats_are_reported(tiny_model_dir, tmp_path):
    extractor = tiny_extractor(tiny_model_dir)
    with pytest.raises(FileNotFoundError, match="input file not found: .*absent.txt"):
        feature_extraction.write_features_file(extractor, str(tmp_path / "absent.txt"), str(tmp_path / "o"))
    with pytest.raises(ValueError, match="output_format must be one of jsonl, npz"):
        feature_extraction.write_features_file(extractor, "x", str(tmp_path / "o"), output_format="csv")
    with pytest.raises(ValueError, match="npz_dtype must be one of"):
        feature_extraction.write_features_file(extractor, "x", str(tmp_path / "o"), "npz", npz_dtype="int8")


@pytest.mark.parametrize("overrides, error, message", [
    (dict(layers="-3"), ValueError, r"valid indexes are -2\.\.1"),
    (dict(max_seq_length=65), ValueError, "max_position_embeddings=64"),
    (dict(max_seq_length=2), ValueError, "at least 3"),
    (dict(batch_size=0), ValueError, "batch_size must be at least 1"),
    (dict(init_checkpoint="/nonexistent/bert_model.ckpt"), FileNotFoundError, "checkpoint"),
    (dict(vocab_file="/nonexistent/vocab.txt"), FileNotFoundError, "vocabulary file .* not found"),
])
def test_bad_settings_are_reported_clearly(tiny_model_dir, overrides, error, message):
    with pytest.raises(error, match=message):
        tiny_extractor(tiny_model_dir, **overrides)


def test_texts_must_be_strings_or_pairs():
    with pytest.raises(ValueError, match=r"texts\[1\] must be a string or a \(text_a, text_b\) pair"):
        feature_extraction.examples_from_texts(["fine", 3])


# ----------------------------------------------------------------------------------------------------------------
# Parity with the original BertModel on the real MiniLM checkpoint
# ----------------------------------------------------------------------------------------------------------------


def minilm_golden():
    """(all_layers float32 [6, 4, 64, 384], input_ids int32 [4, 64]) of the original BertModel."""
    with np.load(shared_path("golden", "minilm_model_outputs.npz")) as golden:
        return golden["all_layers"], golden["input_ids"]


def test_minilm_arrays_match_the_original_models_all_layers(minilm_checkpoint):
    all_layers, input_ids = minilm_golden()
    texts = [a if b is None else (a, b) for a, b in GOLDEN_SENTENCES]
    results = feature_extraction.extract_features(
        texts, os.path.join(minilm_checkpoint, "bert_config.json"), minilm_checkpoint,
        os.path.join(minilm_checkpoint, "vocab.txt"), layers=range(6), max_seq_length=64)
    for example, (tokens, values) in enumerate(results):
        num_tokens = int((input_ids[example] != 0).sum())
        assert len(tokens) == num_tokens and tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
        np.testing.assert_allclose(values, all_layers[:, example, :num_tokens], atol=1e-4, rtol=0)


def test_minilm_jsonl_matches_the_original_models_all_layers(minilm_checkpoint, tmp_path):
    all_layers, input_ids = minilm_golden()
    lines = [a if b is None else f"{a} ||| {b}" for a, b in GOLDEN_SENTENCES]
    input_file = write_lines(tmp_path / "in.txt", lines)
    output_file = str(tmp_path / "out.jsonl")
    extractor = feature_extraction.FeatureExtractor(
        os.path.join(minilm_checkpoint, "bert_config.json"), minilm_checkpoint,
        os.path.join(minilm_checkpoint, "vocab.txt"), layers="-1,-2,-3,-4,-5,-6", max_seq_length=64)
    feature_extraction.write_features_file(extractor, input_file, output_file)
    with open(output_file) as reader:
        records = [json.loads(line) for line in reader]
    assert len(records) == 4
    for example, record in enumerate(records):
        tokens = [entry["token"] for entry in record["features"]]
        num_tokens = int((input_ids[example] != 0).sum())
        assert extractor.tokenizer.convert_tokens_to_ids(tokens) == input_ids[example, :num_tokens].tolist()
        got = np.array([[layer["values"] for layer in entry["layers"]] for entry in record["features"]])
        expected = np.transpose(all_layers[::-1, example, :num_tokens], (1, 0, 2))  # layers -1..-6, [T, 6, H]
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
