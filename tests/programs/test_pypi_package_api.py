"""What the PyPI release bert-tensorflow 1.0.4 added to the GitHub files, for code written against that package:
preserving "[unusedN]" vocabulary entries (tokenization and --preserve_unused_tokens), BertModel's
get_word_embedding_output, the dense_layer_2d/3d/3d_proj helpers of modeling and --tpu_job_name."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from cli_helpers import last_line, run_script

from bert import modeling, tokenization
from bert.runtime.options import RunSettings

VOCAB = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[", "]", "unused", "##1", "##0",
         "hello", "world", ".", "a", "b"]


@pytest.fixture()
def vocab_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("".join(token + "\n" for token in VOCAB))
    return str(path)


def test_preserve_token_needs_the_switch_an_unused_name_and_a_vocabulary_entry():
    vocab = {"[unused1]": 2, "hello": 12}
    assert tokenization.preserve_token("[unused1]", vocab, preserve_unused_tokens=True)
    assert not tokenization.preserve_token("[unused1]", vocab)  # off by default, as 1.0.4's flag
    assert not tokenization.preserve_token("[unused7]", vocab, preserve_unused_tokens=True)  # not in vocab
    assert not tokenization.preserve_token("hello", vocab, preserve_unused_tokens=True)  # not an [unusedN]
    assert not tokenization.preserve_token("x[unused1]", {"x[unused1]": 0}, preserve_unused_tokens=True)


def test_full_tokenizer_keeps_unused_entries_whole_only_when_asked(vocab_file):
    text = "Hello [unused1] world [unused1]. [UNUSED1]"
    plain = tokenization.FullTokenizer(vocab_file, do_lower_case=True)
    preserving = tokenization.FullTokenizer(vocab_file, do_lower_case=True, preserve_unused_tokens=True)
    split = ["[", "unused", "##1", "]"]
    assert plain.tokenize(text) == ["hello", *split, "world", *split, ".", *split]
    # A word is kept only when it is exactly the entry: "[unused1]." and "[UNUSED1]" are split as before.
    assert preserving.tokenize(text) == ["hello", "[unused1]", "world", *split, ".", *split]
    assert preserving.convert_tokens_to_ids(["[unused1]"]) == [2]


def test_basic_tokenizer_takes_the_1_0_4_vocab_argument(vocab_file):
    vocab = tokenization.load_vocab(vocab_file)
    assert tokenization.BasicTokenizer(True, vocab).tokenize("A [unused0]") == ["a", "[", "unused0", "]"]
    preserving = tokenization.BasicTokenizer(do_lower_case=True, vocab=vocab, preserve_unused_tokens=True)
    assert preserving.tokenize("A [unused0]") == ["a", "[unused0]"]


@pytest.mark.slow
@pytest.mark.parametrize("num_workers", ["0", "1"])
def test_create_pretraining_data_flag_keeps_the_entry_in_the_records(tmp_path, vocab_file, num_workers):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("hello [unused1] world .\na b a b .\n\nworld [unused1] hello .\nb a b a .\n")

    def token_ids(preserve: str):
        output = tmp_path / f"out_{preserve}_{num_workers}.tfrecord"
        result = run_script("create_pretraining_data", [
            f"--input_file={corpus}", f"--output_file={output}", f"--vocab_file={vocab_file}",
            "--max_seq_length=16", "--max_predictions_per_seq=3", "--dupe_factor=2",
            f"--num_workers={num_workers}", f"--preserve_unused_tokens={preserve}"])
        assert result.returncode == 0, last_line(result.stderr)
        ids = set()
        for record in tf.io.tf_record_iterator(str(output)):
            features = tf.train.Example.FromString(record).features.feature
            tokens = list(features["input_ids"].int64_list.value)
            # Masking replaced some tokens ([MASK] or a random word); put the originals back.
            masked = zip(features["masked_lm_positions"].int64_list.value,
                         features["masked_lm_ids"].int64_list.value, features["masked_lm_weights"].float_list.value)
            for position, original, weight in masked:
                if weight:
                    tokens[position] = original
            ids.update(tokens)
        return ids

    unused1, bracket = VOCAB.index("[unused1]"), VOCAB.index("[")
    preserved = token_ids("true")
    assert unused1 in preserved and bracket not in preserved
    plain = token_ids("false")
    assert unused1 not in plain and bracket in plain


def _dense_graph(build):
    """Runs `build(inputs)` on fixed random inputs; returns (inputs, output, {variable name: value})."""
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        inputs = np.random.RandomState(0).randn(2, 3, 8).astype(np.float32)
        output = build(tf.constant(inputs))
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            values = session.run({v.op.name: v for v in tf.global_variables()})
            return inputs, session.run(output), values


def test_dense_layer_2d_and_3d_are_dense_with_the_original_variables():
    initializer = modeling.create_initializer(0.5)
    inputs, output, values = _dense_graph(
        lambda x: modeling.dense_layer_2d(x, 6, initializer, tf.tanh, name="ffn"))
    assert {name: value.shape for name, value in values.items()} == {"ffn/kernel": (8, 6), "ffn/bias": (6,)}
    np.testing.assert_allclose(output, np.tanh(inputs @ values["ffn/kernel"] + values["ffn/bias"]), atol=1e-5)

    inputs, output, values = _dense_graph(
        lambda x: modeling.dense_layer_3d(x, 2, 4, initializer, None, name="query"))
    assert {name: value.shape for name, value in values.items()} == {"query/kernel": (8, 8), "query/bias": (8,)}
    expected = (inputs @ values["query/kernel"] + values["query/bias"]).reshape(2, 3, 2, 4)
    np.testing.assert_allclose(output, expected, atol=1e-5)


def test_dense_layer_3d_proj_joins_the_heads_through_one_square_kernel():
    initializer = modeling.create_initializer(0.5)
    inputs, output, values = _dense_graph(lambda x: modeling.dense_layer_3d_proj(
        tf.reshape(x, [2, 3, 2, 4]), 8, 2, 4, initializer, None, name="dense"))
    assert values["dense/kernel"].shape == (8, 8) and output.shape == (2, 3, 8)
    np.testing.assert_allclose(output, inputs @ values["dense/kernel"] + values["dense/bias"], atol=1e-5)


def test_word_embedding_output_is_the_lookup_before_positions_and_types():
    config = modeling.BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=16, max_position_embeddings=16)
    ids = np.array([[4, 12, 13, 5], [4, 15, 5, 0]], dtype=np.int32)
    with tf.Graph().as_default():
        model = modeling.BertModel(config, is_training=False, input_ids=tf.constant(ids))
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            words, table, embeddings = session.run([model.get_word_embedding_output(), model.get_embedding_table(),
                                                    model.get_embedding_output()])
    np.testing.assert_array_equal(words, table[ids])
    assert not np.allclose(words, embeddings)  # the block output adds positions and types and normalises


@pytest.mark.needs_tf215
def test_tpu_job_name_reaches_the_tpu_config(tmp_path):
    from bert.runtime.estimator import make_run_config

    named = make_run_config(RunSettings(str(tmp_path), tpu_job_name="my_worker"))
    assert named.tpu_config.tpu_job_name == "my_worker"
    assert make_run_config(RunSettings(str(tmp_path))).tpu_config.tpu_job_name is None
