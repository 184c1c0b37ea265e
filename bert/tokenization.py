"""WordPiece tokenization with exactly the output of the original BERT release, only faster.

The pipeline is the original one: drop invalid and control characters, turn whitespace into spaces, put spaces
around CJK ideographs, split on whitespace, then per word optionally lower-case and strip accents (NFD, drop
non-spacing marks), split off punctuation, and finally split every token into greedy longest-match WordPieces.

Speed comes from three exact rewrites of that pipeline:
  * every per-character step is a ``str.translate`` through a table that is filled lazily, one code point at a
    time, by the very same character-class predicates (so any Unicode version gives the same answer as they do);
  * each whitespace-separated word is tokenized independently of its neighbours, so the result for a word is
    memoised per tokenizer (the casing is fixed per tokenizer, so cached results can never mix);
  * the WordPiece search never tries a candidate longer than the longest vocabulary entry.

TensorFlow is imported only to read vocabularies from non-local paths (``gs://...``), so importing this module
and tokenizing local data stays fast.
"""

import collections
import re
import unicodedata
from typing import Callable, Container, Dict, Iterable, List, Optional, Tuple, Union

from bert.common import file_io
from bert.common.errors import UserError

TextLike = Union[str, bytes]

_WORD_CACHE_LIMIT = 100_000
"""Entries a per-tokenizer word cache holds before it is emptied and starts again (bounds memory)."""

_CHAR_TABLE_LIMIT = 65_536
"""Code points a character table remembers; beyond this, results are computed on the fly and not stored."""

_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)
"""Code point ranges treated as CJK ideographs (each one becomes a word of its own)."""

_CASED_MODEL_NAMES = ("cased_L-12_H-768_A-12", "cased_L-24_H-1024_A-16", "multi_cased_L-12_H-768_A-12")
_UNCASED_MODEL_NAMES = (
    "uncased_L-24_H-1024_A-16",
    "uncased_L-12_H-768_A-12",
    "multilingual_L-12_H-768_A-12",
    "chinese_L-12_H-768_A-12",
)


# ----------------------------------------------------------------------------------------------------------------
# Text helpers
# ----------------------------------------------------------------------------------------------------------------


def convert_to_unicode(text: TextLike) -> str:
    """Returns `text` as str; bytes are decoded as UTF-8, silently dropping invalid sequences."""
    if isinstance(text, str):
        return text
    if isinstance(text, bytes):
        return text.decode("utf-8", "ignore")
    raise ValueError(f"Unsupported string type: {type(text)} (expected str or bytes)")


def printable_text(text: TextLike) -> str:
    """Returns `text` as a str fit for printing or logging."""
    return convert_to_unicode(text)


def whitespace_tokenize(text: str) -> List[str]:
    """Splits `text` on runs of whitespace, ignoring leading and trailing whitespace."""
    return text.split()


def validate_case_matches_checkpoint(do_lower_case: bool, init_checkpoint: Optional[str]) -> None:
    """Raises ValueError when `do_lower_case` contradicts the casing of a released checkpoint named in the path.

    The casing is not stored with the checkpoint, so it is guessed from the directory name of the published
    models; checkpoints with any other name are accepted as they are.
    """
    if not init_checkpoint:
        return
    match = re.match(r"^.*?([A-Za-z0-9_-]+)/bert_model.ckpt", init_checkpoint)
    if match is None:
        return
    model_name = match.group(1)
    if model_name in _UNCASED_MODEL_NAMES and not do_lower_case:
        model_casing, expected_flag = "lowercased (uncased)", True
    elif model_name in _CASED_MODEL_NAMES and do_lower_case:
        model_casing, expected_flag = "cased", False
    else:
        return
    raise UserError(
        f"`--do_lower_case={do_lower_case}` does not match `--init_checkpoint={init_checkpoint}`: "
        f"`{model_name}` is a {model_casing} model, so pass `--do_lower_case={expected_flag}` to tokenize the "
        "way the model was pre-trained."
    )


# ----------------------------------------------------------------------------------------------------------------
# Vocabulary
# ----------------------------------------------------------------------------------------------------------------


def _read_vocab_lines(vocab_file: str) -> List[str]:
    """Lines of the vocabulary file, split on "\\n" only (as tf.io.gfile does) and decoded as UTF-8."""
    lines = file_io.read_text(vocab_file, "vocabulary file (--vocab_file)").split("\n")
    return lines if lines[-1] else lines[:-1]


def load_vocab(vocab_file: str) -> "collections.OrderedDict[str, int]":
    """Maps each stripped line of `vocab_file` to its line number; a repeated token keeps its last line."""
    vocab = collections.OrderedDict()
    for index, line in enumerate(_read_vocab_lines(vocab_file)):
        vocab[line.strip()] = index
    return vocab


_UNUSED_TOKEN = re.compile(r"\[unused\d+\]")


def preserve_token(token: str, vocab: Container[str], preserve_unused_tokens: bool = False) -> bool:
    """True if `token` is a vocabulary entry "[unusedN]" and preservation is on: such a word is kept whole.

    From the PyPI release bert-tensorflow 1.0.4, where a global --preserve_unused_tokens flag switched it on:
    users give the spare "[unusedN]" entries of a vocabulary a meaning of their own (markers, new special
    tokens), which plain tokenization would split into "[", "unused", "##N", "]".
    """
    return preserve_unused_tokens and token in vocab and _UNUSED_TOKEN.fullmatch(token) is not None


def convert_by_vocab(vocab: Dict, items: Iterable) -> List:
    """Looks every item up in `vocab` (tokens to ids or ids to tokens); unknown items raise KeyError."""
    return [vocab[item] for item in items]


def convert_tokens_to_ids(vocab: Dict[str, int], tokens: Iterable[str]) -> List[int]:
    """Ids of `tokens` in `vocab`."""
    return convert_by_vocab(vocab, tokens)


def convert_ids_to_tokens(inv_vocab: Dict[int, str], ids: Iterable[int]) -> List[str]:
    """Tokens of `ids` in the inverted vocabulary `inv_vocab`."""
    return convert_by_vocab(inv_vocab, ids)


# ----------------------------------------------------------------------------------------------------------------
# Character classes
# ----------------------------------------------------------------------------------------------------------------


def _is_whitespace(char: str) -> bool:
    """Space, tab, newline, carriage return and the Unicode space separators (Zs)."""
    return char in (" ", "\t", "\n", "\r") or unicodedata.category(char) == "Zs"


def _is_control(char: str) -> bool:
    """Control (Cc) and format (Cf) characters, except tab, newline and carriage return (they are whitespace)."""
    if char in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def _is_punctuation(char: str) -> bool:
    """Unicode punctuation (P*) plus every ASCII character that is neither a letter, a digit nor a space/control."""
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_chinese_char(cp: int) -> bool:
    """Whether code point `cp` is a CJK ideograph (Hangul, kana and other scripts are not)."""
    return any(low <= cp <= high for low, high in _CJK_RANGES)


# The character classes under public names, for the modules that split text as BasicTokenizer does (NER's words).
is_whitespace = _is_whitespace
is_punctuation = _is_punctuation


def is_chinese_char(char: str) -> bool:
    return _is_chinese_char(ord(char))


class _CharTable(dict):
    """A `str.translate` table filled on demand: code point -> replacement (None deletes the character)."""

    def __init__(self, replacement: Callable[[str], Union[None, int, str]]):
        super().__init__()
        self._replacement = replacement

    def __missing__(self, cp: int) -> Union[None, int, str]:
        value = self._replacement(chr(cp))
        if len(self) < _CHAR_TABLE_LIMIT:
            self[cp] = value
        return value


def _cleaned_char(char: str) -> Union[None, int, str]:
    """Drops NUL, U+FFFD and control characters, turns whitespace into a space and isolates CJK ideographs."""
    cp = ord(char)
    if cp == 0 or cp == 0xFFFD or _is_control(char):
        return None
    if _is_whitespace(char):
        return " "
    if _is_chinese_char(cp):
        return f" {char} "
    return cp


def _punctuation_isolated(char: str) -> Union[int, str]:
    """Puts spaces around punctuation so that a whitespace split makes it a token of its own."""
    return f" {char} " if _is_punctuation(char) else ord(char)


def _accent_dropped_punctuation_isolated(char: str) -> Union[None, int, str]:
    """Deletes non-spacing marks (accents once NFD-decomposed) and isolates punctuation."""
    if unicodedata.category(char) == "Mn":
        return None
    return _punctuation_isolated(char)


_CLEAN_TABLE = _CharTable(_cleaned_char)
_PUNCTUATION_TABLE = _CharTable(_punctuation_isolated)
_ACCENT_AND_PUNCTUATION_TABLE = _CharTable(_accent_dropped_punctuation_isolated)


_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""ASCII characters that cleaning deletes; ASCII text without them needs no cleaning before a whitespace split."""


def _split_into_words(text: TextLike) -> List[str]:
    """Cleans `text` (control characters, whitespace, CJK ideographs) and splits it into whitespace words."""
    text = convert_to_unicode(text)
    if text.isascii() and _ASCII_CONTROL.search(text) is None:
        return text.split()
    return text.translate(_CLEAN_TABLE).split()


def _tokenize_with_cache(units: Iterable[str], cache: Dict[str, Tuple[str, ...]],
                         tokenize_unit: Callable[[str], Tuple[str, ...]]) -> List[str]:
    """The tokens of every unit, in order, each unit tokenized once and then served from a per-tokenizer cache
    (emptied when it is full: real text repeats a few words very often, so a bounded cache keeps nearly all hits)."""
    tokens = []
    for unit in units:
        unit_tokens = cache.get(unit)
        if unit_tokens is None:
            unit_tokens = tokenize_unit(unit)
            if len(cache) >= _WORD_CACHE_LIMIT:
                cache.clear()
            cache[unit] = unit_tokens
        tokens.extend(unit_tokens)
    return tokens


# ----------------------------------------------------------------------------------------------------------------
# Tokenizers
# ----------------------------------------------------------------------------------------------------------------


class BasicTokenizer:
    """Splits text into words and punctuation, optionally lower-casing and stripping accents.

    With `preserve_unused_tokens`, a word that is one of `vocab`'s "[unusedN]" entries stays whole (see
    `preserve_token`); `vocab` is otherwise unused (bert-tensorflow 1.0.4's signature). Results are cached per
    word, so the settings must not change after construction.
    """

    def __init__(self, do_lower_case: bool = True, vocab: Container[str] = (), preserve_unused_tokens: bool = False):
        self.do_lower_case = do_lower_case
        self.vocab = vocab
        self.preserve_unused_tokens = preserve_unused_tokens
        self._word_cache: Dict[str, Tuple[str, ...]] = {}

    def tokenize(self, text: TextLike) -> List[str]:
        """Basic tokens of `text` (str, or UTF-8 bytes)."""
        return _tokenize_with_cache(_split_into_words(text), self._word_cache, self._tokenize_word)

    def _tokenize_word(self, word: str) -> Tuple[str, ...]:
        """Basic tokens of one cleaned, whitespace-free word."""
        if preserve_token(word, self.vocab, self.preserve_unused_tokens):
            return (word,)
        if not self.do_lower_case:
            return tuple(word.translate(_PUNCTUATION_TABLE).split())
        word = word.lower()
        if not word.isascii():
            word = unicodedata.normalize("NFD", word)
        return tuple(word.translate(_ACCENT_AND_PUNCTUATION_TABLE).split())


class WordpieceTokenizer:
    """Greedy longest-match-first WordPiece splitting of basic tokens; continuation pieces start with "##"."""

    def __init__(self, vocab: Dict[str, int], unk_token: str = "[UNK]", max_input_chars_per_word: int = 200):
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word
        self.vocab = vocab

    @property
    def vocab(self) -> Dict[str, int]:
        """Token -> id; read-only once set (assign a new one instead of editing it in place)."""
        return self._vocab

    @vocab.setter
    def vocab(self, vocab: Dict[str, int]) -> None:
        self._vocab = vocab
        self._longest_entry = max((len(entry) for entry in vocab), default=0)
        self._token_cache: Dict[str, Tuple[str, ...]] = {}

    def tokenize(self, text: TextLike) -> List[str]:
        """Word pieces of the whitespace-separated tokens in `text`, e.g. "unaffable" -> un ##aff ##able.

        A token longer than `max_input_chars_per_word` characters, or one that cannot be covered by vocabulary
        pieces, becomes `unk_token`.
        """
        return _tokenize_with_cache(convert_to_unicode(text).split(), self._token_cache, self._tokenize_token)

    def _tokenize_token(self, token: str) -> Tuple[str, ...]:
        """Word pieces of one whitespace-free token."""
        length = len(token)
        if length > self.max_input_chars_per_word:
            return (self.unk_token,)
        vocab = self.vocab
        if token in vocab:
            return (token,)
        pieces = []
        start = 0
        while start < length:
            prefix = "##" if start else ""
            end = min(length, start + self._longest_entry)
            while end > start:
                candidate = prefix + token[start:end]
                if candidate in vocab:
                    break
                end -= 1
            else:
                return (self.unk_token,)
            pieces.append(candidate)
            start = end
        return tuple(pieces)


class FullTokenizer:
    """Basic tokenization followed by WordPiece, with the vocabulary read from `vocab_file`.

    `preserve_unused_tokens` (off, as in the original): the vocabulary's "[unusedN]" entries written in the text
    stay single tokens. Word pieces are cached per word, so the settings and vocabulary are fixed once the
    tokenizer is built.
    """

    def __init__(self, vocab_file: str, do_lower_case: bool = True, preserve_unused_tokens: bool = False):
        self.vocab = load_vocab(vocab_file)
        self.inv_vocab = {index: token for token, index in self.vocab.items()}
        self.basic_tokenizer = BasicTokenizer(do_lower_case=do_lower_case, vocab=self.vocab,
                                              preserve_unused_tokens=preserve_unused_tokens)
        self.wordpiece_tokenizer = WordpieceTokenizer(vocab=self.vocab)
        self._word_cache: Dict[str, Tuple[str, ...]] = {}

    def tokenize(self, text: TextLike) -> List[str]:
        """Word pieces of `text` (str, or UTF-8 bytes)."""
        words = _split_into_words(text)
        cache = self._word_cache
        try:
            return [piece for word in words for piece in cache[word]]
        except KeyError:  # a word seen for the first time: the slower path that fills the cache
            return _tokenize_with_cache(words, cache, self._tokenize_word)

    def _tokenize_word(self, word: str) -> Tuple[str, ...]:
        """Word pieces of one cleaned, whitespace-free word."""
        wordpiece = self.wordpiece_tokenizer
        return tuple(
            piece
            for token in self.basic_tokenizer._tokenize_word(word)
            for piece in wordpiece._tokenize_token(token)
        )

    def convert_tokens_to_ids(self, tokens: Iterable[str]) -> List[int]:
        """Vocabulary ids of `tokens`."""
        return convert_by_vocab(self.vocab, tokens)

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> List[str]:
        """Tokens of vocabulary `ids`."""
        return convert_by_vocab(self.inv_vocab, ids)
