"""create_pretraining_data: parity with the original's TFRecords, the record format, sharded mode, bad input."""

import os
import random
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from bert import tokenization
from bert.pretraining import data as pretraining_data
from bert.pretraining import job as pretraining
from bert.pretraining import records as pretraining_records
from bert.pretraining import sharded as pretraining_sharded
from bert.pretraining.data import DataOptions
from bert.runtime import input_pipeline
from helpers import REPO_ROOT, shared_path
from live_original import run_original_program

GOLDEN_OPTIONS = DataOptions(max_seq_length=128, max_predictions_per_seq=20, masked_lm_prob=0.15,
                             random_seed=12345, dupe_factor=5)
SPEC = pretraining.pretraining_feature_spec(128, 20)
SCRIPT = os.path.join(REPO_ROOT, "scripts", "create_pretraining_data.py")


def read_examples(path, spec=SPEC):
    return input_pipeline.read_tfrecord(str(path), spec)


def assert_same_examples(actual, expected):
    assert len(actual) == len(expected)
    for index, (got, want) in enumerate(zip(actual, expected)):
        assert got.keys() == want.keys()
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=f"example {index}, feature {name}")


@pytest.fixture(scope="module")
def uncased_tokenizer():
    return tokenization.FullTokenizer(shared_path("data", "vocab", "bert_uncased_vocab.txt"), do_lower_case=True)


@pytest.fixture(scope="module")
def tiny_vocab_file(tmp_path_factory):
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "dog", "sat", "ran", "on", "mat", "un",
             "##aff", "##able", ".", "a", "b"]
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(words) + "\n")
    return str(path)


def write_corpus(path, documents):
    """Writes documents (lists of sentences) one sentence per line, blank lines between documents."""
    path.write_text("\n\n".join("\n".join(sentences) for sentences in documents) + "\n", encoding="utf-8")
    return str(path)


def synthetic_documents(num_documents, seed=0):
    rng = random.Random(seed)
    words = "the cat dog sat ran on a mat unaffable b".split()
    return [[" ".join(rng.choice(words) for _ in range(rng.randint(2, 12))) + " ."
             for _ in range(rng.randint(1, 6))] for _ in range(num_documents)]


# ----------------------------------------------------------------------------------------------------------------
# Parity with the original
# ----------------------------------------------------------------------------------------------------------------


def test_matches_the_original_sample_tfrecord(uncased_tokenizer, tmp_path):
    output = tmp_path / "sample.tfrecord"
    written = pretraining_data.create_pretraining_data(
        [shared_path("data", "sample_text.txt")], [str(output)], uncased_tokenizer, GOLDEN_OPTIONS)
    expected = read_examples(shared_path("golden", "pretraining", "sample.tfrecord"))
    assert written == len(expected)
    assert_same_examples(read_examples(output), expected)


def test_script_matches_the_original_whole_word_mask_tfrecord(tmp_path):
    output = tmp_path / "sample_wwm.tfrecord"
    subprocess.run(
        [sys.executable, SCRIPT, f"--input_file={shared_path('data', 'sample_text.txt')}",
         f"--output_file={output}", f"--vocab_file={shared_path('data', 'vocab', 'bert_uncased_vocab.txt')}",
         "--do_lower_case=True", "--max_seq_length=128", "--max_predictions_per_seq=20", "--masked_lm_prob=0.15",
         "--random_seed=12345", "--dupe_factor=5", "--do_whole_word_mask=True"],
        check=True, capture_output=True)
    assert_same_examples(read_examples(output),
                         read_examples(shared_path("golden", "pretraining", "sample_wwm.tfrecord")))


@pytest.mark.slow
@pytest.mark.parametrize("whole_word_mask", [False, True])
def test_records_equal_the_original_programs_run_live(uncased_tokenizer, tmp_path, whole_word_mask):
    """The original create_pretraining_data.py, run here with another seed than the goldens', and ours: the same
    examples."""
    flags = dict(max_seq_length=96, max_predictions_per_seq=14, masked_lm_prob=0.2, random_seed=7, dupe_factor=2,
                 do_whole_word_mask=whole_word_mask)
    sample, vocab = shared_path("data", "sample_text.txt"), shared_path("data", "vocab", "bert_uncased_vocab.txt")
    run_original_program("create_pretraining_data.py", [
        f"--input_file={sample}", f"--output_file={tmp_path / 'original.tfrecord'}", f"--vocab_file={vocab}",
        "--do_lower_case=True", *(f"--{name}={value}" for name, value in flags.items())])
    pretraining_data.create_pretraining_data([sample], [str(tmp_path / "ours.tfrecord")], uncased_tokenizer,
                                             DataOptions(**flags))
    spec = pretraining.pretraining_feature_spec(96, 14)
    original = read_examples(tmp_path / "original.tfrecord", spec)
    assert len(original) > 20
    assert_same_examples(read_examples(tmp_path / "ours.tfrecord", spec), original)


def test_several_output_files_take_examples_in_turn(uncased_tokenizer, tmp_path):
    sample = shared_path("data", "sample_text.txt")
    single = tmp_path / "all.tfrecord"
    pretraining_data.create_pretraining_data([sample], [str(single)], uncased_tokenizer, GOLDEN_OPTIONS)
    shards = [tmp_path / f"part{i}.tfrecord" for i in range(3)]
    pretraining_data.create_pretraining_data([sample], [str(p) for p in shards], uncased_tokenizer, GOLDEN_OPTIONS)
    everything = read_examples(single)
    for index, shard in enumerate(shards):
        assert_same_examples(read_examples(shard), everything[index::3])


def test_documents_continue_across_files_like_the_original(uncased_tokenizer, tmp_path):
    # Without a trailing blank line the last document of one file and the first of the next are one document.
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("one sentence here .\nsecond sentence .")
    second.write_text("third sentence .\n\nanother document .\nwith two lines .\n")
    documents = pretraining_data.read_documents(
        (line for path in (str(first), str(second)) for line in pretraining_data.read_lines(path)),
        uncased_tokenizer)
    assert [len(document) for document in documents] == [3, 2]


# ----------------------------------------------------------------------------------------------------------------
# Algorithm details that must stay as in the original
# ----------------------------------------------------------------------------------------------------------------


def test_inlined_shuffle_makes_the_same_draws_as_random_shuffle():
    for length in (0, 1, 5, 128, 1000):
        reference_rng, rng = random.Random(length), random.Random(length)
        reference, items = list(range(length)), list(range(length))
        reference_rng.shuffle(reference)
        pretraining_data.shuffle(items, rng)
        assert items == reference
        assert rng.random() == reference_rng.random()


def test_whole_word_mask_joins_a_leading_subword_of_b_to_the_last_word_of_a(tiny_vocab_file):
    vocab = tokenization.load_vocab(tiny_vocab_file)
    masking_vocab = pretraining_data.MaskingVocab(vocab)
    # [CLS] cat [SEP] ##able [SEP]: the original groups positions 1 and 3 into one "word" across the [SEP].
    ids = [vocab["[CLS]"], vocab["cat"], vocab["[SEP]"], vocab["##able"], vocab["[SEP]"]]
    _, positions, _ = pretraining_data.create_masked_lm_predictions(
        ids, masked_lm_prob=0.2, max_predictions_per_seq=1, vocab=masking_vocab, rng=random.Random(0),
        do_whole_word_mask=True)
    assert positions == []  # the two-piece word does not fit one prediction, so nothing is masked
    _, positions, labels = pretraining_data.create_masked_lm_predictions(
        ids, masked_lm_prob=0.4, max_predictions_per_seq=2, vocab=masking_vocab, rng=random.Random(0),
        do_whole_word_mask=True)
    assert positions == [1, 3] and labels == [vocab["cat"], vocab["##able"]]


def test_masking_replaces_with_mask_keeps_or_draws_from_the_vocab_words(tiny_vocab_file):
    vocab = tokenization.load_vocab(tiny_vocab_file)
    masking_vocab = pretraining_data.MaskingVocab(vocab)
    ids = [vocab["[CLS]"]] + [vocab["cat"]] * 60 + [vocab["[SEP]"]] + [vocab["dog"]] * 60 + [vocab["[SEP]"]]
    rng = random.Random(3)
    output, positions, labels = pretraining_data.create_masked_lm_predictions(ids, 0.5, 200, masking_vocab, rng)
    assert len(positions) == round(len(ids) * 0.5) and positions == sorted(positions)
    assert 0 not in positions and 61 not in positions and len(ids) - 1 not in positions
    assert labels == [ids[p] for p in positions]
    masked = [output[p] for p in positions]
    assert 0.6 < masked.count(vocab["[MASK]"]) / len(masked) < 0.95
    unchanged = [i for i in range(len(ids)) if i not in positions]
    assert all(output[i] == ids[i] for i in unchanged)


def test_vocab_without_mask_token_is_rejected(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\n")
    with pytest.raises(ValueError, match=r"\[MASK\]"):
        pretraining_data.MaskingVocab(tokenization.load_vocab(str(path)))


# ----------------------------------------------------------------------------------------------------------------
# The TFRecord writer without TensorFlow
# ----------------------------------------------------------------------------------------------------------------


def test_crc32c_known_value_and_batch_agree():
    assert pretraining_records.crc32c(b"123456789") == 0xE3069283
    rng = np.random.RandomState(0)
    records = [rng.bytes(length) for length in list(range(12)) + [127, 128, 129, 1000, 1001, 1002, 1003]]
    batch = pretraining_records.crc32c_batch(records)
    assert [int(value) for value in batch] == [pretraining_records.crc32c(record) for record in records]


def test_framed_records_are_byte_identical_to_tensorflow_writer(tmp_path):
    rng = np.random.RandomState(1)
    payloads = [rng.bytes(rng.randint(0, 3000)) for _ in range(50)]
    reference = tmp_path / "tf.tfrecord"
    with tf.io.TFRecordWriter(str(reference)) as writer:
        for payload in payloads:
            writer.write(payload)
    assert b"".join(pretraining_records.frame_records(payloads)) == reference.read_bytes()


def test_encoded_example_parses_back_with_padding():
    encoder = pretraining_records.ExampleEncoder(max_seq_length=200, max_predictions_per_seq=4, max_id=40000)
    input_ids = [2, 127, 128, 16383, 16384, 39999, 3]
    payload = encoder.encode(input_ids, [0, 0, 0, 1, 1, 1, 1], [1, 150], [7, 30000], 1)
    features = tf.train.Example.FromString(payload).features.feature
    assert list(features["input_ids"].int64_list.value) == input_ids + [0] * 193
    assert list(features["input_mask"].int64_list.value) == [1] * 7 + [0] * 193
    assert list(features["segment_ids"].int64_list.value) == [0, 0, 0, 1, 1, 1, 1] + [0] * 193
    assert list(features["masked_lm_positions"].int64_list.value) == [1, 150, 0, 0]
    assert list(features["masked_lm_ids"].int64_list.value) == [7, 30000, 0, 0]
    assert list(features["masked_lm_weights"].float_list.value) == [1.0, 1.0, 0.0, 0.0]
    assert list(features["next_sentence_labels"].int64_list.value) == [1]
    with pytest.raises(ValueError, match="max_seq_length=200"):
        encoder.encode(list(range(201)), [0] * 201, [], [], 0)


# ----------------------------------------------------------------------------------------------------------------
# Sharded mode
# ----------------------------------------------------------------------------------------------------------------


def test_shards_are_cut_only_between_documents():
    lines = ["a b\n", "c d\n", "\n", "e f g\n", "\n", "\n", "h\n", "i\n"]
    shards = list(pretraining_sharded.split_into_shards(lines, chars_per_shard=5))
    # A shard ends at the first blank line after reaching 5 characters; the rest forms the last shard.
    assert [shard.lines for shard in shards] == [lines[:3], lines[3:5], lines[5:]]
    assert [shard.index for shard in shards] == [0, 1, 2]


def run_sharded(corpus, vocab_file, output_dir, num_workers, chars_per_shard, seed=7):
    outputs = [str(output_dir / f"out{i}.tfrecord") for i in range(2)]
    os.makedirs(output_dir, exist_ok=True)
    options = DataOptions(max_seq_length=32, max_predictions_per_seq=5, dupe_factor=3, random_seed=seed)
    written = pretraining_sharded.create_pretraining_data_sharded(
        [corpus], outputs, vocab_file, True, options, num_workers, chars_per_shard)
    return written, [open(path, "rb").read() for path in outputs]


def test_sharded_mode_is_deterministic_and_independent_of_worker_count(tiny_vocab_file, tmp_path):
    corpus = write_corpus(tmp_path / "corpus.txt", synthetic_documents(300))
    assert len(list(pretraining_sharded.split_into_shards(open(corpus).readlines(), 2000))) > 4
    written, first = run_sharded(corpus, tiny_vocab_file, tmp_path / "w2a", num_workers=2, chars_per_shard=2000)
    _, again = run_sharded(corpus, tiny_vocab_file, tmp_path / "w2b", num_workers=2, chars_per_shard=2000)
    _, one_worker = run_sharded(corpus, tiny_vocab_file, tmp_path / "w1", num_workers=1, chars_per_shard=2000)
    _, other_seed = run_sharded(corpus, tiny_vocab_file, tmp_path / "s", num_workers=2, chars_per_shard=2000,
                                seed=8)
    assert written > 300
    assert first == again == one_worker
    assert other_seed != first


def test_single_shard_equals_the_default_mode(tiny_vocab_file, tmp_path):
    corpus = write_corpus(tmp_path / "corpus.txt", synthetic_documents(40))
    _, sharded = run_sharded(corpus, tiny_vocab_file, tmp_path / "sharded", num_workers=1, chars_per_shard=10**9)
    outputs = [str(tmp_path / f"default{i}.tfrecord") for i in range(2)]
    tokenizer = tokenization.FullTokenizer(tiny_vocab_file, do_lower_case=True)
    pretraining_data.create_pretraining_data(
        [corpus], outputs, tokenizer, DataOptions(max_seq_length=32, max_predictions_per_seq=5, dupe_factor=3,
                                                  random_seed=7))
    assert sharded == [open(path, "rb").read() for path in outputs]


@pytest.mark.slow
def test_script_sharded_mode_writes_readable_records(tiny_vocab_file, tmp_path):
    corpus = write_corpus(tmp_path / "corpus.txt", synthetic_documents(100))
    output = tmp_path / "out.tfrecord"
    subprocess.run([sys.executable, SCRIPT, f"--input_file={corpus}", f"--output_file={output}",
                    f"--vocab_file={tiny_vocab_file}", "--max_seq_length=32", "--max_predictions_per_seq=5",
                    "--dupe_factor=2", "--num_workers=2", "--chars_per_shard=1000"],
                   check=True, capture_output=True)
    examples = read_examples(output, pretraining.pretraining_feature_spec(32, 5))
    assert len(examples) > 100
    assert all(example["input_ids"][0] == 2 for example in examples)  # [CLS]


# ----------------------------------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ("", "corpus is empty"),
    ("\n  \n\t\n", "corpus is empty"),
    ("one sentence .\n\nanother document .\n\nthird .\n", "two or more sentences"),
])
@pytest.mark.parametrize("num_workers", [0, 2])
def test_unusable_corpus_fails_clearly_and_writes_nothing(tiny_vocab_file, tmp_path, text, message, num_workers):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(text)
    output = tmp_path / "out.tfrecord"
    with pytest.raises(ValueError, match=message):
        if num_workers:
            pretraining_sharded.create_pretraining_data_sharded(
                [str(corpus)], [str(output)], tiny_vocab_file, True, DataOptions(), num_workers)
        else:
            tokenizer = tokenization.FullTokenizer(tiny_vocab_file)
            pretraining_data.create_pretraining_data([str(corpus)], [str(output)], tokenizer, DataOptions())
    assert not output.exists()


def test_a_failure_in_a_worker_process_reaches_the_caller(tmp_path):
    vocab = tmp_path / "no_unk_vocab.txt"
    vocab.write_text("[PAD]\n[CLS]\n[SEP]\n[MASK]\nthe\ncat\n")
    corpus = write_corpus(tmp_path / "corpus.txt", [["the cat", "the zebra"], ["cat", "the"]])
    with pytest.raises(ValueError, match="not in the vocabulary"):
        pretraining_sharded.create_pretraining_data_sharded(
            [corpus], [str(tmp_path / "out.tfrecord")], str(vocab), True, DataOptions(), num_workers=2)


def test_input_patterns_must_match_files(tmp_path):
    (tmp_path / "a.txt").write_text("x\n")
    assert pretraining_data.expand_input_patterns(f"{tmp_path}/a.txt") == [f"{tmp_path}/a.txt"]
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        pretraining_data.expand_input_patterns(f"{tmp_path}/a.txt,{tmp_path}/nothing_here*.txt")


def test_bad_output_files_are_refused(tiny_vocab_file, tmp_path):
    corpus = write_corpus(tmp_path / "corpus.txt", synthetic_documents(5))
    original = open(corpus).read()
    tokenizer = tokenization.FullTokenizer(tiny_vocab_file)
    with pytest.raises(ValueError, match="also an input file"):
        pretraining_data.create_pretraining_data([corpus], [corpus], tokenizer, DataOptions())
    assert open(corpus).read() == original
    with pytest.raises(FileNotFoundError, match="does not exist"):
        pretraining_data.create_pretraining_data([corpus], [str(tmp_path / "missing" / "out.tfrecord")],
                                                 tokenizer, DataOptions())
    with pytest.raises(ValueError, match="same file twice"):
        pretraining_data.create_pretraining_data([corpus], [str(tmp_path / "o"), str(tmp_path / "o")],
                                                 tokenizer, DataOptions())


def test_non_utf8_input_names_the_file(tiny_vocab_file, tmp_path):
    corpus = tmp_path / "latin1.txt"
    corpus.write_bytes("caf\xe9 au lait\nsecond line\n".encode("latin-1"))
    tokenizer = tokenization.FullTokenizer(tiny_vocab_file)
    with pytest.raises(ValueError, match="latin1.txt is not UTF-8"):
        pretraining_data.create_pretraining_data([str(corpus)], [str(tmp_path / "o")], tokenizer, DataOptions())


@pytest.mark.parametrize("field, value", [("max_seq_length", 4), ("dupe_factor", 0), ("masked_lm_prob", 1.5),
                                          ("max_predictions_per_seq", -1)])
def test_invalid_options_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        DataOptions(**{field: value}).validate()


@pytest.mark.slow
def test_script_reports_a_non_matching_glob(tiny_vocab_file, tmp_path):
    result = subprocess.run([sys.executable, SCRIPT, f"--input_file={tmp_path}/none*.txt",
                             f"--output_file={tmp_path}/out", f"--vocab_file={tiny_vocab_file}"],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "matches no file" in result.stderr
    assert not (tmp_path / "out").exists()
