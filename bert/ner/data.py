"""NER data: CoNLL files → sentences with BIO tags → overlapping WordPiece windows → TFRecord features.

A CoNLL file has one word per line with its tag in the last column (tab or space separated); blank or
whitespace-only lines end a sentence and `-DOCSTART-` lines are ignored. Tags may be BIO, IOB1 or BIOES and are
converted to BIO on reading (IOB1 and lenient BIO by `ner_metrics.repair_bio`; BIOES by S- → B- and E- → I-), so
the model, the metrics and the prediction files all use BIO.

Each word is labelled on its first sub-token; other sub-tokens, [CLS], [SEP] and padding have label weight 0.
A sentence longer than the model's window is cut into overlapping windows of sub-tokens (the SQuAD doc-stride
scheme of `bert.squad.data`), and every word is owned by exactly one window, the one where it has the most context:
only there does it weigh in the loss and give its prediction.
"""

import collections
import dataclasses
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from bert import tokenization
from bert.common.errors import UserError
from bert.ner import metrics as ner_metrics
from bert.runtime import input_pipeline, sequence_length
from bert.runtime.input_pipeline import Feature
from bert.runtime.windows import is_max_context, make_doc_spans

TAG_SCHEMES = ("auto", "bio", "iob1", "bioes")
# What to do with a gold tag that lists comma-separated alternatives (WNUT-17's emerging.test.conll has them).
ALTERNATIVE_TAG_POLICIES = ("error", "first")
_PREFIXES = {"bio": "BI", "iob1": "BI", "bioes": "BIES"}
_TAG_PATTERN = re.compile(r"^([A-Z])-(\S+)$")
_DOCSTART = "-DOCSTART-"


@dataclasses.dataclass
class Sentence:
    """One sentence of a CoNLL file; `tags` is None for a file without a tag column (a test set to label)."""

    words: List[str]
    tags: Optional[List[str]]
    path: str
    line_numbers: List[int]  # 1-based line of each word in `path`, for error messages

    def where(self, index: int) -> str:
        return f"{self.path}:{self.line_numbers[index]}"


def read_conll(path: str, what: str, require_tags: bool = True, alternative_tags: str = "error") -> List[Sentence]:
    """Reads the sentences of a CoNLL file with its tags as written (no scheme conversion yet).

    Args:
      path: the file (a UTF-8 byte-order mark is skipped).
      what: how error messages name the file, e.g. "training file (--train_file)".
      require_tags: False lets a file have no tag column at all (every line one word).
      alternative_tags: "first" reads a tag listing alternatives ("B-person,B-group") as its first one.
    """
    if not os.path.isfile(path):
        raise UserError(f"{what} {path} not found")
    sentences: List[Sentence] = []
    words, tags, numbers = [], [], []
    has_tags = None

    def end_sentence():
        if words:
            sentences.append(Sentence(list(words), list(tags) if has_tags else None, path, list(numbers)))
        for column in (words, tags, numbers):
            column.clear()

    with open(path, encoding="utf-8-sig") as reader:
        for number, line in enumerate(reader, start=1):
            columns = line.split()
            if not columns or columns[0] == _DOCSTART:
                end_sentence()
                continue
            if has_tags is None:
                has_tags = len(columns) > 1 or require_tags
            if has_tags and len(columns) < 2:
                raise UserError(f"{path}:{number}: the line {line.strip()!r} has no tag column; expected the word "
                                "and its tag separated by a tab or space")
            if not has_tags and len(columns) > 1:
                raise UserError(f"{path}:{number}: the line has a tag column but the file's first line had none")
            words.append(columns[0])
            numbers.append(number)
            if has_tags:
                tags.append(_single_tag(columns[-1], alternative_tags, path, number))
    end_sentence()
    return sentences


def _single_tag(tag: str, alternative_tags: str, path: str, number: int) -> str:
    if "," not in tag:
        return tag
    if alternative_tags == "first":
        return tag.split(",")[0]
    raise UserError(f"{path}:{number}: the tag {tag!r} lists alternatives; pass --alternative_tags=first to read "
                    "such tags as their first alternative")


def detect_scheme(sentences: Sequence[Sentence]) -> str:
    """'bioes' when any tag starts with E- or S-, else 'bio' (which also reads IOB1: both convert alike)."""
    for sentence in sentences:
        for tag in sentence.tags or ():
            if tag[:2] in ("E-", "S-"):
                return "bioes"
    return "bio"


def _check_tag(tag: str, scheme: str, sentence: Sentence, index: int) -> None:
    if tag == ner_metrics.OUTSIDE:
        return
    match = _TAG_PATTERN.match(tag)
    if not match or match.group(1) not in _PREFIXES[scheme]:
        allowed = ", ".join(p + "-TYPE" for p in _PREFIXES[scheme])
        raise UserError(f"{sentence.where(index)}: malformed tag {tag!r} for the {scheme.upper()} scheme; "
                        f"expected O or one of {allowed}")


def to_bio(tags: Sequence[str], scheme: str) -> List[str]:
    """The valid BIO tags of `tags` written in `scheme`, with the entities conlleval would read."""
    if scheme == "bioes":
        tags = ["B-" + t[2:] if t.startswith("S-") else "I-" + t[2:] if t.startswith("E-") else t for t in tags]
    return ner_metrics.repair_bio(tags)


def converted(sentences: Sequence[Sentence], scheme: str) -> List[Sentence]:
    """`sentences` with their tags checked against `scheme` and converted to BIO."""
    result = []
    for sentence in sentences:
        if sentence.tags is None:
            result.append(sentence)
            continue
        for index, tag in enumerate(sentence.tags):
            _check_tag(tag, scheme, sentence, index)
        result.append(dataclasses.replace(sentence, tags=to_bio(sentence.tags, scheme)))
    return result


def label_list_from(sentences: Sequence[Sentence]) -> List[str]:
    """O, then B- and I- of every entity type in the (BIO) training sentences, types sorted: ids fixed by data."""
    types = {ner_metrics.split_tag(tag)[1] for s in sentences for tag in s.tags if tag != ner_metrics.OUTSIDE}
    return [ner_metrics.OUTSIDE] + [f"{prefix}-{t}" for t in sorted(types) for prefix in "BI"]


def check_known_tags(sentences: Sequence[Sentence], label_list: Sequence[str]) -> None:
    """Every (BIO) tag must be one the model was trained with; the error names the first file:line that is not."""
    known = set(label_list)
    for sentence in sentences:
        for index, tag in enumerate(sentence.tags or ()):
            if tag not in known:
                raise UserError(f"{sentence.where(index)}: tag {tag!r} (entity type "
                                f"{ner_metrics.split_tag(tag)[1]!r}) does not occur in the training data; "
                                f"known labels: {', '.join(label_list)}")


def read_training_sentences(path: str, tag_scheme: str, alternative_tags: str) -> Tuple[List[Sentence], str]:
    """The training sentences converted to BIO, and the scheme they were written in (detected for "auto")."""
    raw = read_conll(path, "training file (--train_file)", alternative_tags=alternative_tags)
    if not raw:
        raise UserError(f"training file (--train_file) {path} holds no sentences")
    scheme = detect_scheme(raw) if tag_scheme == "auto" else tag_scheme
    return converted(raw, scheme), scheme


def read_evaluation_sentences(path: str, flag: str, tag_scheme: str, label_list: Sequence[str],
                              alternative_tags: str, require_tags: bool = True) -> List[Sentence]:
    """Dev or test sentences converted to BIO, every tag checked against the training labels."""
    raw = read_conll(path, f"{flag} file", require_tags=require_tags, alternative_tags=alternative_tags)
    if not raw:
        raise UserError(f"{flag} file {path} holds no sentences")
    sentences = converted(raw, tag_scheme)
    check_known_tags(sentences, label_list)
    return sentences


# --- Raw text ----------------------------------------------------------------------------------------------------

def split_words(text: str) -> List[Tuple[str, int, int]]:
    """The words of raw text as CoNLL files hold them, with their character offsets (start, end): runs of
    non-space characters, each punctuation character and CJK ideograph a word of its own (where BERT's
    BasicTokenizer splits)."""
    words = []
    start = None
    for position, char in enumerate(text):
        alone = tokenization.is_punctuation(char) or tokenization.is_chinese_char(char)
        if start is not None and (alone or tokenization.is_whitespace(char)):
            words.append((text[start:position], start, position))
            start = None
        if alone:
            words.append((char, position, position + 1))
        elif start is None and not tokenization.is_whitespace(char):
            start = position
    if start is not None:
        words.append((text[start:], start, len(text)))
    return words


# --- Windows of sub-tokens ---------------------------------------------------------------------------------------

@dataclasses.dataclass
class Window:
    """One model input: a slice of a sentence's sub-tokens between [CLS] and [SEP], zero-padded.

    `word_positions` maps each word this window owns to the position of its first sub-token; those positions, and
    only those, have label weight 1. A padding window (sentence_index -1) owns nothing.
    """

    sentence_index: int
    input_ids: List[int]
    input_mask: List[int]
    segment_ids: List[int]
    label_ids: List[int]
    label_weights: List[int]
    word_positions: Dict[int, int]


def ner_feature_spec(max_seq_length: int) -> List[Feature]:
    """The TFRecord features of one window, shared by the writer, the input_fn and the export."""
    return [
        Feature("input_ids", (max_seq_length,)),
        Feature("input_mask", (max_seq_length,)),
        Feature("segment_ids", (max_seq_length,)),
        Feature("label_ids", (max_seq_length,)),
        Feature("label_weights", (max_seq_length,)),
    ]


def word_pieces(words: Sequence[str], tokenizer) -> List[List[str]]:
    """The sub-tokens of each word; a word the tokenizer drops entirely (control characters) becomes [UNK] so that
    every word has a first sub-token to be labelled on."""
    return [tokenizer.tokenize(word) or ["[UNK]"] for word in words]


def sentence_windows(sentence_index: int, sentence: Sentence, label_map: Optional[Dict[str, int]], tokenizer,
                     max_seq_length: int, doc_stride: int) -> List[Window]:
    """The windows of one sentence; together they own each of its words exactly once."""
    pieces, first_piece = [], []
    for word_piece_list in word_pieces(sentence.words, tokenizer):
        first_piece.append(len(pieces))
        pieces.extend(word_piece_list)
    doc_spans = make_doc_spans(len(pieces), max_seq_length - 2, doc_stride)
    windows = []
    for span_index, span in enumerate(doc_spans):
        tokens = ["[CLS]"] + pieces[span.start:span.start + span.length] + ["[SEP]"]
        padding = [0] * (max_seq_length - len(tokens))
        label_ids, label_weights = [0] * max_seq_length, [0] * max_seq_length
        word_positions = {}
        for word_index, piece_index in enumerate(first_piece):
            inside = span.start <= piece_index < span.start + span.length
            if inside and is_max_context(doc_spans, span_index, piece_index):
                position = piece_index - span.start + 1  # +1 for [CLS]
                word_positions[word_index] = position
                label_weights[position] = 1
                if label_map is not None and sentence.tags is not None:
                    label_ids[position] = label_map[sentence.tags[word_index]]
        windows.append(Window(sentence_index, tokenizer.convert_tokens_to_ids(tokens) + padding,
                              [1] * len(tokens) + padding, [0] * max_seq_length, label_ids, label_weights,
                              word_positions))
    return windows


def make_windows(sentences: Sequence[Sentence], label_list: Sequence[str], tokenizer, max_seq_length: int,
                 doc_stride: int) -> List[Window]:
    """The windows of all sentences, in order."""
    label_map = {label: i for i, label in enumerate(label_list)}
    return [window for index, sentence in enumerate(sentences)
            for window in sentence_windows(index, sentence, label_map, tokenizer, max_seq_length, doc_stride)]


def check_window_settings(max_seq_length: int, doc_stride: int) -> None:
    if max_seq_length < 3:
        raise UserError(f"--max_seq_length={max_seq_length} leaves no room for a word between [CLS] and [SEP]")
    if doc_stride < 1:
        raise UserError(f"--doc_stride={doc_stride} must be at least 1")


def padded_for_tpu(windows: List[Window], batch_size: int, max_seq_length: int) -> List[Window]:
    """Appends all-zero windows owning no word until the count divides `batch_size` (TPUs need whole batches)."""
    zeros = [0] * max_seq_length
    padding = (-len(windows)) % batch_size
    return list(windows) + [Window(-1, zeros, zeros, zeros, zeros, zeros, {}) for _ in range(padding)]


def write_windows(windows: Sequence[Window], path: str, max_seq_length: int) -> int:
    rows = ({"input_ids": w.input_ids, "input_mask": w.input_mask, "segment_ids": w.segment_ids,
             "label_ids": w.label_ids, "label_weights": w.label_weights} for w in windows)
    return input_pipeline.write_tfrecord(path, rows, ner_feature_spec(max_seq_length))


# With --dynamic_padding the per-token labels and weights are cut with the tokens.
TOKEN_FEATURES = sequence_length.TOKEN_FEATURES + ("label_ids", "label_weights")


def input_fn_builder(path: str, max_seq_length: int, is_training: bool, drop_remainder: bool,
                     lengths: Optional[sequence_length.LengthSettings] = None):
    return input_pipeline.input_fn_builder(path, ner_feature_spec(max_seq_length), is_training, drop_remainder,
                                           lengths=lengths)


def word_label_ids(windows: Sequence[Window], window_probabilities: Sequence[np.ndarray],
                   sentences: Sequence[Sentence]) -> List[List[int]]:
    """The predicted label id of every word, each taken from the window that owns it.

    `window_probabilities[i]` is the [max_seq_length, num_labels] output for `windows[i]`.
    """
    predicted: List[List[Optional[int]]] = [[None] * len(s.words) for s in sentences]
    for window, probabilities in zip(windows, window_probabilities):
        for word_index, position in window.word_positions.items():
            predicted[window.sentence_index][word_index] = int(np.argmax(probabilities[position]))
    for index, labels in enumerate(predicted):
        if None in labels:
            raise RuntimeError(f"sentence {index} has words owned by no window")
    return predicted


# --- Trivial baseline --------------------------------------------------------------------------------------------

def most_frequent_tag_baseline(train_sentences: Sequence[Sentence], sentences: Sequence[Sentence]
                               ) -> List[List[str]]:
    """Each word's most frequent (BIO) tag in the training sentences, O for unseen words; repaired into valid
    BIO. Words are matched exactly (case-sensitive); ties go to the tag seen first."""
    counts: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for sentence in train_sentences:
        for word, tag in zip(sentence.words, sentence.tags):
            counts[word][tag] += 1
    return [ner_metrics.repair_bio([counts[w].most_common(1)[0][0] if w in counts else ner_metrics.OUTSIDE
                                    for w in sentence.words])
            for sentence in sentences]
