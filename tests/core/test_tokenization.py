"""Tests of bert.tokenization: parity with the original's goldens, its unit-test behaviours, Unicode corners,
an independent per-character restatement of the algorithm as a fuzz oracle, caching and error handling."""

import gzip
import json
import random
import subprocess
import sys
import unicodedata

import pytest

from bert import tokenization
from helpers import shared_path
from live_original import load_original_module

SMALL_VOCAB = ["[UNK]", "[CLS]", "[SEP]", "want", "##want", "##ed", "wa", "un", "runn", "##ing", ","]


@pytest.fixture(scope="module")
def golden_lines():
    with gzip.open(shared_path("golden", "tokenization_public.json.gz"), "rt", encoding="utf-8") as reader:
        return json.load(reader)


@pytest.fixture(scope="module")
def bert_vocab_file():
    return shared_path("data", "vocab", "bert_uncased_vocab.txt")


@pytest.fixture
def small_vocab_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("".join(token + "\n" for token in SMALL_VOCAB), encoding="utf-8")
    return str(path)


def small_vocab():
    return {token: index for index, token in enumerate(SMALL_VOCAB)}


# ----------------------------------------------------------------------------------------------------------------
# Golden parity with the original release
# ----------------------------------------------------------------------------------------------------------------


def tokenize_as_the_golden(module, texts, vocab_file, do_lower_case):
    """The golden's fields (basic tokens, word pieces, ids) for each text, from `module`'s tokenizers (ours or the
    original's tokenization.py)."""
    key = "uncased" if do_lower_case else "cased"
    full = module.FullTokenizer(vocab_file, do_lower_case=do_lower_case)
    basic = module.BasicTokenizer(do_lower_case=do_lower_case)
    fields = []
    for text in texts:
        pieces = full.tokenize(text)
        fields.append({"basic_" + key: basic.tokenize(text), "wp_" + key: pieces,
                       "ids_" + key: full.convert_tokens_to_ids(pieces)})
    return fields


def _mismatches(produced, expected):
    """(line index, field) of every expected field that `produced` does not reproduce."""
    return [(index, field) for index, (got, want) in enumerate(zip(produced, expected))
            for field, value in got.items() if value != want[field]]


@pytest.mark.parametrize("do_lower_case", [True, False])
def test_golden_parity_every_line(golden_lines, bert_vocab_file, do_lower_case):
    assert len(golden_lines) > 4000
    produced = tokenize_as_the_golden(tokenization, [line["text"] for line in golden_lines], bert_vocab_file,
                                      do_lower_case)
    assert _mismatches(produced, golden_lines) == []


@pytest.mark.slow
@pytest.mark.parametrize("do_lower_case", [True, False])
def test_tokens_equal_the_original_tokenizers_run_live(golden_lines, bert_vocab_file, do_lower_case):
    """The original's tokenization.py, run here on the golden corpus, and ours: the same tokens and ids."""
    texts = [line["text"] for line in golden_lines]
    original = tokenize_as_the_golden(load_original_module("tokenization"), texts, bert_vocab_file, do_lower_case)
    assert _mismatches(tokenize_as_the_golden(tokenization, texts, bert_vocab_file, do_lower_case), original) == []


def test_golden_parity_holds_with_warm_caches(golden_lines, bert_vocab_file):
    full = tokenization.FullTokenizer(bert_vocab_file, do_lower_case=True)
    first_pass = [full.tokenize(line["text"]) for line in golden_lines]
    second_pass = [full.tokenize(line["text"]) for line in golden_lines]
    assert second_pass == first_pass == [line["wp_uncased"] for line in golden_lines]


def test_golden_ids_round_trip_to_tokens(golden_lines, bert_vocab_file):
    full = tokenization.FullTokenizer(bert_vocab_file, do_lower_case=True)
    for line in golden_lines[-100:]:
        assert full.convert_ids_to_tokens(line["ids_uncased"]) == line["wp_uncased"]


# ----------------------------------------------------------------------------------------------------------------
# Behaviours of the original unit tests
# ----------------------------------------------------------------------------------------------------------------


def test_full_tokenizer(small_vocab_file):
    tokenizer = tokenization.FullTokenizer(small_vocab_file)
    tokens = tokenizer.tokenize("UNwant\u00E9d,running")
    assert tokens == ["un", "##want", "##ed", ",", "runn", "##ing"]
    assert tokenizer.convert_tokens_to_ids(tokens) == [7, 4, 5, 10, 8, 9]
    assert tokenizer.convert_ids_to_tokens([7, 4, 5, 10, 8, 9]) == tokens


def test_full_tokenizer_attributes(small_vocab_file):
    tokenizer = tokenization.FullTokenizer(small_vocab_file, do_lower_case=False)
    assert list(tokenizer.vocab.items()) == [(token, index) for index, token in enumerate(SMALL_VOCAB)]
    assert tokenizer.inv_vocab == {index: token for index, token in enumerate(SMALL_VOCAB)}
    assert isinstance(tokenizer.basic_tokenizer, tokenization.BasicTokenizer)
    assert tokenizer.basic_tokenizer.do_lower_case is False
    assert isinstance(tokenizer.wordpiece_tokenizer, tokenization.WordpieceTokenizer)
    assert tokenizer.wordpiece_tokenizer.vocab is tokenizer.vocab


def test_chinese_characters_become_words():
    tokenizer = tokenization.BasicTokenizer()
    assert tokenizer.tokenize("ah\u535A\u63A8zz") == ["ah", "\u535A", "\u63A8", "zz"]


def test_basic_tokenizer_lower():
    tokenizer = tokenization.BasicTokenizer(do_lower_case=True)
    assert tokenizer.tokenize(" \tHeLLo!how  \n Are yoU?  ") == ["hello", "!", "how", "are", "you", "?"]
    assert tokenizer.tokenize("H\u00E9llo") == ["hello"]


def test_basic_tokenizer_no_lower():
    tokenizer = tokenization.BasicTokenizer(do_lower_case=False)
    assert tokenizer.tokenize(" \tHeLLo!how  \n Are yoU?  ") == ["HeLLo", "!", "how", "Are", "yoU", "?"]
    assert tokenizer.tokenize("H\u00E9llo") == ["H\u00E9llo"]


def test_wordpiece_tokenizer():
    tokenizer = tokenization.WordpieceTokenizer(vocab=small_vocab())
    assert tokenizer.tokenize("") == []
    assert tokenizer.tokenize("unwanted running") == ["un", "##want", "##ed", "runn", "##ing"]
    assert tokenizer.tokenize("unwantedX running") == ["[UNK]", "runn", "##ing"]


def test_wordpiece_custom_unknown_token():
    tokenizer = tokenization.WordpieceTokenizer(vocab=small_vocab(), unk_token="<?>")
    assert tokenizer.tokenize("xyz want") == ["<?>", "want"]


def test_wordpiece_max_input_chars_per_word():
    tokenizer = tokenization.WordpieceTokenizer(vocab=small_vocab(), max_input_chars_per_word=8)
    assert tokenizer.tokenize("unwanted") == ["un", "##want", "##ed"]  # exactly 8 characters: still split
    assert tokenizer.tokenize("unwantedwant") == ["[UNK]"]
    assert tokenization.WordpieceTokenizer(vocab={"a": 0, "##a": 1}).tokenize("a" * 200) == ["a"] + ["##a"] * 199
    assert tokenization.WordpieceTokenizer(vocab={"a": 0, "##a": 1}).tokenize("a" * 201) == ["[UNK]"]


def test_wordpiece_replacing_vocab_resets_lookups():
    tokenizer = tokenization.WordpieceTokenizer(vocab=small_vocab())
    assert tokenizer.tokenize("unwanted") == ["un", "##want", "##ed"]
    tokenizer.vocab = {"unwanted": 0}
    assert tokenizer.tokenize("unwanted wanted") == ["unwanted", "[UNK]"]


def test_convert_helpers():
    vocab = small_vocab()
    inv_vocab = {index: token for token, index in vocab.items()}
    tokens = ["un", "##want", "##ed", "runn", "##ing"]
    assert tokenization.convert_tokens_to_ids(vocab, tokens) == [7, 4, 5, 8, 9]
    assert tokenization.convert_ids_to_tokens(inv_vocab, [7, 4, 5, 8, 9]) == tokens
    assert tokenization.convert_by_vocab(vocab, []) == []
    with pytest.raises(KeyError):
        tokenization.convert_tokens_to_ids(vocab, ["not-in-vocab"])


def test_is_whitespace():
    for char in [" ", "\t", "\r", "\n", "\u00A0", "\u3000", "\u2009"]:
        assert tokenization._is_whitespace(char), repr(char)
    for char in ["A", "-", "\u2028", "\x0b", "\u200b"]:  # line separator is Zl, \x0b is Cc, ZWSP is Cf
        assert not tokenization._is_whitespace(char), repr(char)


def test_is_control():
    for char in ["\u0005", "\x00", "\x7f", "\x85", "\u200b", "\u00ad", "\ufeff"]:
        assert tokenization._is_control(char), repr(char)
    for char in ["A", " ", "\t", "\r", "\n", "\U0001F4A9", "\ufffd"]:
        assert not tokenization._is_control(char), repr(char)


def test_is_punctuation():
    for char in ["-", "$", "`", ".", "^", "~", "@", "\u00bf", "\u3002", "\u2014"]:
        assert tokenization._is_punctuation(char), repr(char)
    for char in ["A", " ", "7", "\u20ac", "\u1fef", "\u00a8"]:  # euro sign Sc, Greek varia Sk, diaeresis Sk
        assert not tokenization._is_punctuation(char), repr(char)


def test_is_chinese_char_range_edges():
    inside = [0x4E00, 0x9FFF, 0x3400, 0x4DBF, 0x20000, 0x2A6DF, 0x2A700, 0x2B73F, 0x2B740, 0x2B81F, 0x2B820,
              0x2CEAF, 0xF900, 0xFAFF, 0x2F800, 0x2FA1F]
    outside = [0x33FF, 0x4DC0, 0xA000, 0x1FFFF, 0x2A6E0, 0x2A6FF, 0x2CEB0, 0xF8FF, 0xFB00, 0x2F7FF, 0x2FA20,
               0x3042, 0xAC00, 0x2F00]  # hiragana, hangul and Kangxi radicals are not CJK ideographs here
    assert [cp for cp in inside if not tokenization._is_chinese_char(cp)] == []
    assert [cp for cp in outside if tokenization._is_chinese_char(cp)] == []


# ----------------------------------------------------------------------------------------------------------------
# Unicode corners (expectations produced by the original)
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, uncased, cased",
    [
        ("a\u1fefb", ["a", "`", "b"], ["a\u1fefb"]),  # Greek varia decomposes to "`" only when lower-casing
        ("\u039f\u0394\u039f\u03a3 \u03a3\u0391", ["\u03bf\u03b4\u03bf\u03c2", "\u03c3\u03b1"], None),  # final sigma
        ("\u0130stanbul", ["istanbul"], ["\u0130stanbul"]),
        ("a\u2028b", ["a", "b"], ["a", "b"]),  # Zl is no whitespace to BERT, but whitespace splitting sees it
        ("a\x0bb\x1fc", ["abc"], ["abc"]),  # control characters vanish and join their neighbours
        ("x\u200by a\u00adb", ["xy", "ab"], ["xy", "ab"]),
        ("\ufffd\x00", [], []),
        ("\u01c5x \u2167", ["\u01c6x", "\u2177"], ["\u01c5x", "\u2167"]),
        ("\u3000x\xa0y", ["x", "y"], ["x", "y"]),
    ],
)
def test_unicode_corners(text, uncased, cased):
    assert tokenization.BasicTokenizer(do_lower_case=True).tokenize(text) == uncased
    if cased is not None:
        assert tokenization.BasicTokenizer(do_lower_case=False).tokenize(text) == cased


def test_bytes_are_decoded_as_utf8():
    tokenizer = tokenization.BasicTokenizer()
    assert tokenizer.tokenize("Caf\u00e9 \u535A!".encode("utf-8")) == ["cafe", "\u535A", "!"]
    assert tokenizer.tokenize(b"ab\xffcd") == ["abcd"]  # invalid UTF-8 is dropped


def test_convert_to_unicode_and_printable_text():
    assert tokenization.convert_to_unicode("x") == "x"
    assert tokenization.convert_to_unicode("\u00e9".encode("utf-8")) == "\u00e9"
    assert tokenization.printable_text(b"a\xffb") == "ab"
    for convert in (tokenization.convert_to_unicode, tokenization.printable_text):
        with pytest.raises(ValueError, match="Unsupported string type"):
            convert(3)


def test_whitespace_tokenize():
    assert tokenization.whitespace_tokenize("  a b\t\nc  ") == ["a", "b", "c"]
    assert tokenization.whitespace_tokenize(" \n ") == []


# ----------------------------------------------------------------------------------------------------------------
# Fuzz against a plain per-character restatement of the algorithm
# ----------------------------------------------------------------------------------------------------------------


def _oracle_basic_tokens(text, do_lower_case):
    """The basic tokenization spelled out one character at a time, without tables or caches."""
    cleaned = []
    for char in text:
        if ord(char) in (0, 0xFFFD) or tokenization._is_control(char):
            continue
        if tokenization._is_whitespace(char):
            cleaned.append(" ")
        elif tokenization._is_chinese_char(ord(char)):
            cleaned.append(" " + char + " ")
        else:
            cleaned.append(char)
    pieces = []
    for word in "".join(cleaned).split():
        if do_lower_case:
            decomposed = unicodedata.normalize("NFD", word.lower())
            word = "".join(char for char in decomposed if unicodedata.category(char) != "Mn")
        run = ""
        for char in word:
            if tokenization._is_punctuation(char):
                pieces.extend([run, char])
                run = ""
            else:
                run += char
        pieces.append(run)
    return " ".join(pieces).split()


def _oracle_wordpieces(token, vocab, max_chars=200):
    """Greedy longest-match-first, trying every candidate length."""
    if len(token) > max_chars:
        return ["[UNK]"]
    pieces, start = [], 0
    while start < len(token):
        for end in range(len(token), start, -1):
            candidate = ("##" if start else "") + token[start:end]
            if candidate in vocab:
                pieces.append(candidate)
                start = end
                break
        else:
            return ["[UNK]"]
    return pieces


def _fuzz_texts(vocab_tokens, count, seed):
    rng = random.Random(seed)
    notable = [0, 9, 10, 11, 13, 0x1F, 0x7F, 0x85, 0xA0, 0xAD, 0x130, 0x301, 0x308, 0x37E, 0x3A3, 0x1FEF, 0x200B,
               0x2028, 0x3000, 0x4E00, 0x9FFF, 0xF900, 0xFB01, 0xFEFF, 0xFFFD, 0x1F600, 0x20000, 0x2F800, 0xE0001]

    def char():
        roll = rng.random()
        if roll < 0.3:
            return chr(rng.randint(0, 0x10FFFF))
        if roll < 0.5:
            return chr(rng.randint(0, 0x2FFF))
        if roll < 0.7:
            return chr(rng.choice(notable))
        return rng.choice(" .,!?-'\"$`abcXYZ\u00e9\u00c5")

    texts = []
    for _ in range(count):
        words = [rng.choice(vocab_tokens) for _ in range(rng.randint(0, 8))]
        words = [w.upper() if rng.random() < 0.2 else w for w in words]
        words = [w + char() if rng.random() < 0.4 else w for w in words]
        texts.append(rng.choice(["", " ", "\t"]).join(words) + "".join(char() for _ in range(rng.randint(0, 25))))
    texts += ["x" * 200, "x" * 201, "\u00e9" * 201, "a\u0301" * 150, "", " ", "\x00", "un" * 120]
    return texts


@pytest.mark.parametrize("do_lower_case", [True, False])
def test_fuzz_matches_per_character_oracle(bert_vocab_file, do_lower_case):
    full = tokenization.FullTokenizer(bert_vocab_file, do_lower_case=do_lower_case)
    basic = tokenization.BasicTokenizer(do_lower_case=do_lower_case)
    vocab = full.vocab
    texts = _fuzz_texts(list(vocab), count=1500, seed=1234 + do_lower_case)
    for text in texts + texts:  # the second round is served from the caches
        expected_basic = _oracle_basic_tokens(text, do_lower_case)
        assert basic.tokenize(text) == expected_basic, repr(text)
        expected_pieces = [piece for token in expected_basic for piece in _oracle_wordpieces(token, vocab)]
        assert full.tokenize(text) == expected_pieces, repr(text)


def test_full_tokenizer_is_basic_then_wordpiece(bert_vocab_file):
    full = tokenization.FullTokenizer(bert_vocab_file)
    for text in _fuzz_texts(list(full.vocab), count=300, seed=7):
        basic_tokens = full.basic_tokenizer.tokenize(text)
        assert full.tokenize(text) == full.wordpiece_tokenizer.tokenize(" ".join(basic_tokens)), repr(text)
        assert full.tokenize(text.encode("utf-8", "ignore")) == full.tokenize(text.encode("utf-8", "ignore").decode())


def test_cased_tokens_keep_every_visible_character(bert_vocab_file):
    basic = tokenization.BasicTokenizer(do_lower_case=False)
    for text in _fuzz_texts(["word"], count=500, seed=11):
        kept = [
            char for char in text
            if ord(char) not in (0, 0xFFFD) and not tokenization._is_control(char) and not char.isspace()
        ]
        tokens = basic.tokenize(text)
        assert "".join(tokens) == "".join(kept), repr(text)
        assert all(len(token) == 1 for token in tokens if any(map(tokenization._is_punctuation, token)))


# ----------------------------------------------------------------------------------------------------------------
# Caches
# ----------------------------------------------------------------------------------------------------------------


def test_same_text_twice_gives_same_tokens(bert_vocab_file):
    full = tokenization.FullTokenizer(bert_vocab_file)
    text = "The Caf\u00e9's r\u00e9sum\u00e9, supercalifragilistic! \u535A"
    first = full.tokenize(text)
    assert full.tokenize(text) == first
    assert first == ["the", "cafe", "'", "s", "resume", ",", "super", "##cal", "##if", "##rag", "##ilis", "##tic",
                     "!", "\u535a"]


def test_cased_and_uncased_tokenizers_do_not_share_results(bert_vocab_file):
    uncased = tokenization.FullTokenizer(bert_vocab_file, do_lower_case=True)
    cased = tokenization.FullTokenizer(bert_vocab_file, do_lower_case=False)
    basic_uncased = tokenization.BasicTokenizer(do_lower_case=True)
    basic_cased = tokenization.BasicTokenizer(do_lower_case=False)
    for _ in range(2):
        assert uncased.tokenize("Hello W\u00f6rld") == ["hello", "world"]
        assert cased.tokenize("Hello W\u00f6rld") == ["[UNK]", "[UNK]"]
        assert basic_uncased.tokenize("Hello W\u00f6rld") == ["hello", "world"]
        assert basic_cased.tokenize("Hello W\u00f6rld") == ["Hello", "W\u00f6rld"]


def test_results_survive_cache_overflow(bert_vocab_file, monkeypatch):
    monkeypatch.setattr(tokenization, "_WORD_CACHE_LIMIT", 3)
    full = tokenization.FullTokenizer(bert_vocab_file)
    text = "one two three four five six seven, eight. nine"
    expected = ["one", "two", "three", "four", "five", "six", "seven", ",", "eight", ".", "nine"]
    assert full.tokenize(text) == expected
    assert full.tokenize(text) == expected
    assert len(full._word_cache) <= 3


# ----------------------------------------------------------------------------------------------------------------
# Vocabulary files, checkpoint casing, import cost
# ----------------------------------------------------------------------------------------------------------------


def test_load_vocab_keeps_line_numbers(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes("[PAD]\r\n  spaced  \nd\u00e9j\u00e0\nrepeat\nrepeat\n\nlast".encode("utf-8"))
    vocab = tokenization.load_vocab(str(path))
    assert list(vocab.items()) == [("[PAD]", 0), ("spaced", 1), ("d\u00e9j\u00e0", 2), ("repeat", 4), ("", 5),
                                   ("last", 6)]


def test_load_vocab_splits_lines_on_newline_only(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"a\rb\nc\n")  # a lone carriage return does not end a line in tf.io.gfile either
    assert list(tokenization.load_vocab(str(path)).items()) == [("a\rb", 0), ("c", 1)]


@pytest.mark.parametrize("make_path", [lambda d: str(d / "missing.txt"), lambda d: "file://" + str(d / "gone.txt")])
def test_missing_vocab_file_names_the_path(tmp_path, make_path):
    path = make_path(tmp_path)
    with pytest.raises(FileNotFoundError, match="gone.txt|missing.txt") as error:
        tokenization.FullTokenizer(path)
    assert path in str(error.value)


def test_vocab_read_through_tf_gfile_for_urls(small_vocab_file):
    assert tokenization.load_vocab("file://" + small_vocab_file) == tokenization.load_vocab(small_vocab_file)


@pytest.mark.parametrize(
    "do_lower_case, checkpoint, model_name",
    [
        (False, "/models/uncased_L-12_H-768_A-12/bert_model.ckpt", "uncased_L-12_H-768_A-12"),
        (False, "gs://b/chinese_L-12_H-768_A-12/bert_model.ckpt", "chinese_L-12_H-768_A-12"),
        (True, "cased_L-24_H-1024_A-16/bert_model.ckpt", "cased_L-24_H-1024_A-16"),
        (True, "/m/multi_cased_L-12_H-768_A-12/bert_model.ckpt.index", "multi_cased_L-12_H-768_A-12"),
    ],
)
def test_validate_case_mismatch_raises(do_lower_case, checkpoint, model_name):
    with pytest.raises(ValueError) as error:
        tokenization.validate_case_matches_checkpoint(do_lower_case, checkpoint)
    message = str(error.value)
    assert model_name in message and checkpoint in message
    assert f"--do_lower_case={not do_lower_case}" in message


@pytest.mark.parametrize(
    "do_lower_case, checkpoint",
    [
        (True, "/models/uncased_L-12_H-768_A-12/bert_model.ckpt"),
        (False, "/models/cased_L-12_H-768_A-12/bert_model.ckpt"),
        (False, "/models/my_uncased_model/bert_model.ckpt"),
        (True, "/models/minilm/model.ckpt"),
        (False, None),
        (True, ""),
    ],
)
def test_validate_case_accepts_matching_or_unknown(do_lower_case, checkpoint):
    assert tokenization.validate_case_matches_checkpoint(do_lower_case, checkpoint) is None


def test_import_does_not_load_tensorflow():
    code = "import sys, bert.tokenization; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
