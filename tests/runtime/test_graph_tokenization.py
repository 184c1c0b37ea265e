"""FullTokenizer as TensorFlow ops: the same ids as the Python tokenizer, cased and uncased, on the shared golden
corpus (4,000+ lines of real and adversarial text, compared with the original's ids) and on generated traps."""

import gzip
import json

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from helpers import shared_path

from bert import tokenization
from bert.runtime.encoding import encode_text
from bert.runtime.graph_tokenization import GraphTokenizer, pack_pairs


def graph_ids(vocab, do_lower_case, texts):
    with tf.Graph().as_default(), tf.Session() as session:
        tokenizer = GraphTokenizer(vocab, do_lower_case)
        placeholder = tf.placeholder(tf.string, [None])
        ids = tokenizer.ids(placeholder)
        session.run(tf.tables_initializer())
        return session.run(ids, {placeholder: texts}).to_list()


@pytest.fixture(scope="module")
def vocab():
    return tokenization.load_vocab(shared_path("data", "vocab", "bert_uncased_vocab.txt"))


@pytest.mark.slow
@pytest.mark.parametrize("do_lower_case,key", [(True, "ids_uncased"), (False, "ids_cased")])
def test_ids_equal_the_originals_on_the_golden_corpus(vocab, do_lower_case, key):
    with gzip.open(shared_path("golden", "tokenization_public.json.gz"), "rt", encoding="utf-8") as reader:
        golden = json.load(reader)
    ids = graph_ids(vocab, do_lower_case, [line["text"] for line in golden])
    differing = [line["text"][:80] for line, got in zip(golden, ids) if got != line[key]]
    assert not differing, f"{len(differing)} of {len(golden)} lines differ, e.g. {differing[:3]}"


TRAPS = [
    "[CLS] literal [SEP] markers [MASK]", "control\x00chars\x07and\u200bformat\ufeffmarks\ufffd",
    "ΣΊΣΥΦΟΣ ΟΔΟΣ. Σ ΑΣ", "ΑΣ\u0301Β ΑΣ\u0301 Σ.Α ΑΣ'Σ", "naïve café Ångström ǅemal İstanbul",
    "北京欢迎你 東京 서울 ｶﾀｶﾅ ＡＢＣ", "line\u2028sep\u2029par",
    "tab\tnew\nline\r\x0bvt\x0cff\x1cfs\x85nel\u00a0nbsp\u3000ideo", "emoji 😀👍🏽 and ®™ ©", "x" * 250, "",
    "don't stop-believing! (ok?) «quotes» „German“ 'single'", "ﬁnal ﬂow ß ẞ ŉ", "ΣΣΣ σΣ ςΣς",
]


@pytest.mark.slow
@pytest.mark.parametrize("do_lower_case", [True, False])
def test_ids_equal_full_tokenizers_on_traps_and_random_unicode(vocab, do_lower_case):
    rng = np.random.RandomState(0)
    extra = [0x3A3, 0x2028, 0x200b, 0x301, 0x4E00, 0xAC00, 0xFF21, 0x1F600]
    alphabet = [chr(c) for c in list(range(0x20, 0x250)) + list(range(0x370, 0x400)) + extra]
    generated = ["".join(rng.choice(alphabet, size=rng.randint(1, 40))) for _ in range(300)]
    texts = TRAPS + generated
    python = tokenization.FullTokenizer(shared_path("data", "vocab", "bert_uncased_vocab.txt"), do_lower_case)
    expected = [python.convert_tokens_to_ids(python.tokenize(text)) for text in texts]
    ids = graph_ids(vocab, do_lower_case, texts)
    differing = [(text, got, want) for text, got, want in zip(texts, ids, expected) if got != want]
    assert not differing, differing[:3]


@pytest.mark.slow
@pytest.mark.parametrize("max_seq_length", [5, 8, 16])
def test_packed_pairs_equal_encode_text_with_its_truncation(vocab, max_seq_length):
    """Every split of lengths around the room, single texts and empty second texts, against encode_text."""
    python = tokenization.FullTokenizer(shared_path("data", "vocab", "bert_uncased_vocab.txt"), True)
    words = "the a cat dog sat on mat by sea with".split()
    texts = [" ".join(words[:n]) for n in range(0, 11)]
    pairs = [(a, b) for a in texts[1:] for b in texts]
    with tf.Graph().as_default(), tf.Session() as session:
        tokenizer = GraphTokenizer(vocab, True)
        text_a, text_b = tf.placeholder(tf.string, [None]), tf.placeholder(tf.string, [None])
        features = pack_pairs(tokenizer.ids(text_a), tokenizer.ids(text_b), max_seq_length, vocab["[CLS]"],
                              vocab["[SEP]"])
        session.run(tf.tables_initializer())
        packed = session.run(features, {text_a: [a for a, _ in pairs], text_b: [b for _, b in pairs]})
    for row, (a, b) in enumerate(pairs):
        expected = encode_text(python, a, b, max_seq_length)
        length = len(expected.tokens)
        for name in ("input_ids", "input_mask", "segment_ids"):
            assert list(packed[name][row][:length]) == getattr(expected, name)[:length], (a, b, name)
            assert not packed[name][row][length:].any()
