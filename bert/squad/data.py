"""SQuAD 1.1 / 2.0 data: the JSON file → `SquadExample`s → windowed `InputFeatures` → TFRecords.

A paragraph is split on whitespace into "document words"; answers, given as character offsets, become word
positions. Each question is then tokenized with WordPiece together with the paragraph; paragraphs longer than
`max_seq_length` allows are cut into overlapping windows ("doc spans") `doc_stride` tokens apart, and every window
becomes one `InputFeatures` laid out as `[CLS] question [SEP] window [SEP]`.
"""

import dataclasses
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import tensorflow.compat.v1 as tf

from bert.common import file_io
from bert.common.errors import UserError
from bert.runtime import input_pipeline
from bert.runtime.windows import DocSpan, is_max_context, make_doc_spans  # noqa: F401 (part of this module's API)

FIRST_UNIQUE_ID = 1000000000
NUM_EXAMPLES_TO_LOG = 20


@dataclasses.dataclass
class SquadExample:
    """One question about one paragraph. Unanswerable (SQuAD 2.0) training questions have positions -1."""

    qas_id: str
    question_text: str
    doc_tokens: List[str]
    orig_answer_text: Optional[str] = None
    start_position: Optional[int] = None  # index into doc_tokens of the answer's first word
    end_position: Optional[int] = None  # index into doc_tokens of the answer's last word (inclusive)
    is_impossible: bool = False


@dataclasses.dataclass
class InputFeatures:
    """One window of one example, as the model sees it, plus the maps post-processing needs.

    `token_to_orig_map` maps a position in `tokens` to the index of its document word; `token_is_max_context` says
    whether this window is the one where that token has the most context on both sides.
    """

    unique_id: int
    example_index: int
    doc_span_index: int
    tokens: List[str]
    token_to_orig_map: Dict[int, int]
    token_is_max_context: Dict[int, bool]
    input_ids: List[int]
    input_mask: List[int]
    segment_ids: List[int]
    start_position: Optional[int] = None
    end_position: Optional[int] = None
    is_impossible: Optional[bool] = None


def check_window_settings(max_seq_length: int, doc_stride: int, max_query_length: int) -> None:
    """Every window needs room for [CLS], the question, two [SEP]s and at least one paragraph token.

    Raises:
      ValueError: max_seq_length <= max_query_length + 3, or doc_stride < 1 (windows would never advance).
    """
    if max_seq_length <= max_query_length + 3:
        raise UserError(
            f"max_seq_length ({max_seq_length}) must be greater than max_query_length ({max_query_length}) + 3: "
            f"each window holds [CLS] question [SEP] paragraph [SEP]")
    if doc_stride < 1:
        raise UserError(f"doc_stride must be at least 1, got {doc_stride}")


# ----------------------------------------------------------------------------------------------------------------
# Reading the JSON file
# ----------------------------------------------------------------------------------------------------------------


def load_squad_json(input_file: str) -> dict:
    """Parses a SQuAD JSON file, naming the file and the position of a syntax error.

    Raises:
      FileNotFoundError: the file does not exist.
      ValueError: the file is not JSON, or has no "data" list.
    """
    dataset = file_io.read_json(input_file, "SQuAD file")
    if not isinstance(dataset, dict) or not isinstance(dataset.get("data"), list):
        raise UserError(f"{input_file} is not a SQuAD file: the top level must be an object with a \"data\" list")
    return dataset


def _field(record: dict, key: str, where: str):
    if not isinstance(record, dict) or key not in record:
        raise UserError(f"{where} has no \"{key}\" field")
    return record[key]


def _is_whitespace(char: str) -> bool:
    """The separators of document words; U+202F (narrow no-break space) is one, as in the original."""
    return char in (" ", "\t", "\r", "\n") or ord(char) == 0x202F


def split_paragraph(paragraph_text: str) -> Tuple[List[str], List[int]]:
    """Splits a paragraph into whitespace-separated words.

    Returns:
      (doc_tokens, char_to_word_offset): the words, and for each character of the paragraph the index of the word
      it belongs to (whitespace maps to the preceding word, -1 before the first word).
    """
    doc_tokens = []
    char_to_word_offset = []
    previous_is_whitespace = True
    for char in paragraph_text:
        if _is_whitespace(char):
            previous_is_whitespace = True
        else:
            if previous_is_whitespace:
                doc_tokens.append(char)
            else:
                doc_tokens[-1] += char
            previous_is_whitespace = False
        char_to_word_offset.append(len(doc_tokens) - 1)
    return doc_tokens, char_to_word_offset


def _answer_word_span(answer_text: str, answer_start: int, doc_tokens: Sequence[str],
                      char_to_word_offset: Sequence[int]) -> Optional[Tuple[int, int]]:
    """Word positions (first, last) of an answer, or None when `answer_start` does not point at `answer_text`.

    The words covering the characters may hold more than the answer ("(1895-1943)." for "1895"), so the check is
    that the cleaned answer occurs inside them; a failure usually means odd Unicode or a wrong offset.
    """
    answer_end = answer_start + len(answer_text) - 1
    if not (0 <= answer_start < len(char_to_word_offset) and 0 <= answer_end < len(char_to_word_offset)):
        return None
    start_position = char_to_word_offset[answer_start]
    end_position = char_to_word_offset[answer_end]
    actual_text = " ".join(doc_tokens[start_position:end_position + 1])
    cleaned_answer_text = " ".join(answer_text.split())
    if actual_text.find(cleaned_answer_text) == -1:
        tf.logging.warning("Could not find answer: '%s' vs. '%s'", actual_text, cleaned_answer_text)
        return None
    return start_position, end_position


def _training_example(qa: dict, question_text: str, doc_tokens: List[str], char_to_word_offset: List[int],
                      version_2_with_negative: bool, where: str) -> Optional[SquadExample]:
    """The example of one training question with its answer located, or None when the answer cannot be found."""
    qas_id = _field(qa, "id", where)
    is_impossible = bool(qa.get("is_impossible", False)) if version_2_with_negative else False
    if is_impossible:
        return SquadExample(qas_id, question_text, doc_tokens, orig_answer_text="", start_position=-1,
                            end_position=-1, is_impossible=True)
    answers = _field(qa, "answers", where)
    if len(answers) != 1:
        raise UserError(f"{where} (id {qas_id}) has {len(answers)} answers: for training, each question should "
                         f"have exactly 1 answer")
    answer_text = _field(answers[0], "text", f"the answer of {where}")
    answer_start = _field(answers[0], "answer_start", f"the answer of {where}")
    span = _answer_word_span(answer_text, answer_start, doc_tokens, char_to_word_offset)
    if span is None:
        return None
    return SquadExample(qas_id, question_text, doc_tokens, orig_answer_text=answer_text, start_position=span[0],
                        end_position=span[1], is_impossible=False)


def read_squad_examples(input_file: str, is_training: bool,
                        version_2_with_negative: bool = False) -> List[SquadExample]:
    """Reads every question of a SQuAD JSON file, in file order.

    For training the single answer of each question is located in the paragraph's words; questions whose
    `answer_start` does not match their text are skipped with a warning (and counted in a log line). With
    `version_2_with_negative`, training questions marked `is_impossible` get positions -1 and answer "".

    Raises:
      FileNotFoundError, ValueError: a missing or malformed file; a training question without exactly one answer.
    """
    dataset = load_squad_json(input_file)
    examples = []
    num_questions = 0
    for article_index, article in enumerate(dataset["data"]):
        article_where = f"{input_file}: article {article_index}"
        for paragraph_index, paragraph in enumerate(_field(article, "paragraphs", article_where)):
            paragraph_where = f"{article_where}, paragraph {paragraph_index}"
            doc_tokens, char_to_word_offset = split_paragraph(_field(paragraph, "context", paragraph_where))
            for qa_index, qa in enumerate(_field(paragraph, "qas", paragraph_where)):
                where = f"{paragraph_where}, question {qa_index}"
                num_questions += 1
                question_text = _field(qa, "question", where)
                if is_training:
                    example = _training_example(qa, question_text, doc_tokens, char_to_word_offset,
                                                version_2_with_negative, where)
                    if example is None:
                        continue
                else:
                    example = SquadExample(_field(qa, "id", where), question_text, doc_tokens)
                examples.append(example)
    if num_questions > len(examples):
        tf.logging.warning("Skipped %d of %d questions of %s whose answer text was not found at answer_start",
                           num_questions - len(examples), num_questions, input_file)
    return examples


# ----------------------------------------------------------------------------------------------------------------
# Examples → features
# ----------------------------------------------------------------------------------------------------------------


def _tokenize_document(doc_tokens: Sequence[str], tokenizer) -> Tuple[List[str], List[int], List[int]]:
    """WordPiece-tokenizes each document word.

    Returns:
      (all_doc_tokens, tok_to_orig_index, orig_to_tok_index): the wordpieces, the word index of each wordpiece, and
      the index of each word's first wordpiece.
    """
    all_doc_tokens = []
    tok_to_orig_index = []
    orig_to_tok_index = []
    for word_index, word in enumerate(doc_tokens):
        orig_to_tok_index.append(len(all_doc_tokens))
        for sub_token in tokenizer.tokenize(word):
            tok_to_orig_index.append(word_index)
            all_doc_tokens.append(sub_token)
    return all_doc_tokens, tok_to_orig_index, orig_to_tok_index


def _improve_answer_span(doc_tokens: Sequence[str], input_start: int, input_end: int, tokenizer,
                         orig_answer_text: str) -> Tuple[int, int]:
    """Narrows a wordpiece answer span to the tokenized answer text when it occurs inside it.

    The annotation is in characters but projected onto whole words, so "(1895-1943)." covers the answer "1895";
    after WordPiece the span "( 1895 - 1943 ) ." contains "1895" exactly. When the answer is only part of a
    wordpiece ("Japan" in "Japanese") no sub-span matches and the span is kept.
    """
    tok_answer_text = " ".join(tokenizer.tokenize(orig_answer_text))
    for new_start in range(input_start, input_end + 1):
        for new_end in range(input_end, new_start - 1, -1):
            if " ".join(doc_tokens[new_start:new_end + 1]) == tok_answer_text:
                return new_start, new_end
    return input_start, input_end


def _answer_token_span(example: SquadExample, tokenizer, all_doc_tokens: Sequence[str],
                       orig_to_tok_index: Sequence[int]) -> Tuple[int, int]:
    """First and last wordpiece of the answer of a training example ((-1, -1) for an unanswerable one)."""
    if example.is_impossible:
        return -1, -1
    tok_start = orig_to_tok_index[example.start_position]
    if example.end_position < len(example.doc_tokens) - 1:
        tok_end = orig_to_tok_index[example.end_position + 1] - 1
    else:
        tok_end = len(all_doc_tokens) - 1
    return _improve_answer_span(all_doc_tokens, tok_start, tok_end, tokenizer, example.orig_answer_text)


def _window_positions(example: SquadExample, doc_span: DocSpan, tok_start: int, tok_end: int,
                      num_query_tokens: int) -> Tuple[int, int]:
    """Training target of one window: the answer's positions in the sequence, or (0, 0) pointing at [CLS] when
    the window does not hold the whole answer or the question is unanswerable."""
    if example.is_impossible:
        return 0, 0
    doc_start = doc_span.start
    doc_end = doc_span.start + doc_span.length - 1
    if not (tok_start >= doc_start and tok_end <= doc_end):
        return 0, 0
    doc_offset = num_query_tokens + 2  # [CLS] question [SEP]
    return tok_start - doc_start + doc_offset, tok_end - doc_start + doc_offset


def _window_tokens(query_tokens: Sequence[str], all_doc_tokens: Sequence[str], tok_to_orig_index: Sequence[int],
                   doc_spans: Sequence[DocSpan], span_index: int):
    """`[CLS] question [SEP] window [SEP]` with its segment ids and the maps of the window's tokens."""
    doc_span = doc_spans[span_index]
    tokens = ["[CLS]"] + list(query_tokens) + ["[SEP]"]
    segment_ids = [0] * len(tokens)
    token_to_orig_map = {}
    token_is_max_context = {}
    for split_token_index in range(doc_span.start, doc_span.start + doc_span.length):
        token_to_orig_map[len(tokens)] = tok_to_orig_index[split_token_index]
        token_is_max_context[len(tokens)] = is_max_context(doc_spans, span_index, split_token_index)
        tokens.append(all_doc_tokens[split_token_index])
        segment_ids.append(1)
    tokens.append("[SEP]")
    segment_ids.append(1)
    return tokens, segment_ids, token_to_orig_map, token_is_max_context


def _pad(values: List[int], length: int) -> List[int]:
    return values + [0] * (length - len(values))


def convert_examples_to_features(examples: Sequence[SquadExample], tokenizer, max_seq_length: int,
                                 doc_stride: int, max_query_length: int, is_training: bool,
                                 output_fn: Callable[[InputFeatures], None],
                                 num_logged: int = NUM_EXAMPLES_TO_LOG) -> None:
    """Cuts every example into windows and passes each window's `InputFeatures` to `output_fn`, in order.

    Questions are truncated to `max_query_length` wordpieces. Unique ids count up from 1000000000 across all
    windows of all examples. For training, a window that does not hold the whole answer targets [CLS] (0, 0).
    The windows of the first `num_logged` examples are logged, as the original did (a predictor logs none).

    Raises:
      ValueError: max_seq_length <= max_query_length + 3, or doc_stride < 1.
    """
    check_window_settings(max_seq_length, doc_stride, max_query_length)
    unique_id = FIRST_UNIQUE_ID
    for example_index, example in enumerate(examples):
        query_tokens = tokenizer.tokenize(example.question_text)[:max_query_length]
        all_doc_tokens, tok_to_orig_index, orig_to_tok_index = _tokenize_document(example.doc_tokens, tokenizer)
        if is_training:
            tok_start, tok_end = _answer_token_span(example, tokenizer, all_doc_tokens, orig_to_tok_index)
        max_tokens_for_doc = max_seq_length - len(query_tokens) - 3  # [CLS], [SEP], [SEP]
        doc_spans = make_doc_spans(len(all_doc_tokens), max_tokens_for_doc, doc_stride)
        for span_index, doc_span in enumerate(doc_spans):
            tokens, segment_ids, token_to_orig_map, token_is_max_context = _window_tokens(
                query_tokens, all_doc_tokens, tok_to_orig_index, doc_spans, span_index)
            input_ids = tokenizer.convert_tokens_to_ids(tokens)
            start_position = end_position = None
            if is_training:
                start_position, end_position = _window_positions(example, doc_span, tok_start, tok_end,
                                                                  len(query_tokens))
            feature = InputFeatures(
                unique_id=unique_id,
                example_index=example_index,
                doc_span_index=span_index,
                tokens=tokens,
                token_to_orig_map=token_to_orig_map,
                token_is_max_context=token_is_max_context,
                input_ids=_pad(list(input_ids), max_seq_length),
                input_mask=_pad([1] * len(input_ids), max_seq_length),
                segment_ids=_pad(segment_ids, max_seq_length),
                start_position=start_position,
                end_position=end_position,
                is_impossible=example.is_impossible)
            if example_index < num_logged:
                _log_feature(feature, is_training)
            output_fn(feature)
            unique_id += 1


def _log_feature(feature: InputFeatures, is_training: bool) -> None:
    tf.logging.info("*** Example ***")
    tf.logging.info("unique_id: %s", feature.unique_id)
    tf.logging.info("example_index: %s", feature.example_index)
    tf.logging.info("doc_span_index: %s", feature.doc_span_index)
    tf.logging.info("tokens: %s", " ".join(feature.tokens))
    tf.logging.info("token_to_orig_map: %s", " ".join(f"{k}:{v}" for k, v in feature.token_to_orig_map.items()))
    tf.logging.info("token_is_max_context: %s",
                    " ".join(f"{k}:{v}" for k, v in feature.token_is_max_context.items()))
    tf.logging.info("input_ids: %s", " ".join(str(x) for x in feature.input_ids))
    tf.logging.info("input_mask: %s", " ".join(str(x) for x in feature.input_mask))
    tf.logging.info("segment_ids: %s", " ".join(str(x) for x in feature.segment_ids))
    if is_training and feature.is_impossible:
        tf.logging.info("impossible example")
    elif is_training:
        answer_text = " ".join(feature.tokens[feature.start_position:feature.end_position + 1])
        tf.logging.info("start_position: %d", feature.start_position)
        tf.logging.info("end_position: %d", feature.end_position)
        tf.logging.info("answer: %s", answer_text)


# ----------------------------------------------------------------------------------------------------------------
# Features → TFRecords
# ----------------------------------------------------------------------------------------------------------------


def feature_spec(max_seq_length: int, is_training: bool) -> List[input_pipeline.Feature]:
    """The TFRecord features: ids, mask and segments, plus the answer positions when training."""
    spec = [
        input_pipeline.Feature("unique_ids"),
        input_pipeline.Feature("input_ids", (max_seq_length,)),
        input_pipeline.Feature("input_mask", (max_seq_length,)),
        input_pipeline.Feature("segment_ids", (max_seq_length,)),
    ]
    if is_training:
        spec += [
            input_pipeline.Feature("start_positions"),
            input_pipeline.Feature("end_positions"),
            input_pipeline.Feature("is_impossible"),
        ]
    return spec


def feature_values(feature: InputFeatures, is_training: bool) -> Dict[str, object]:
    """The values `feature_spec` describes, taken from one `InputFeatures`."""
    values = {
        "unique_ids": feature.unique_id,
        "input_ids": feature.input_ids,
        "input_mask": feature.input_mask,
        "segment_ids": feature.segment_ids,
    }
    if is_training:
        values["start_positions"] = feature.start_position
        values["end_positions"] = feature.end_position
        values["is_impossible"] = int(bool(feature.is_impossible))
    return values


class FeatureWriter:
    """Writes `InputFeatures` to a TFRecord file; `process_feature` is the `output_fn` of the conversion."""

    def __init__(self, filename: str, is_training: bool, max_seq_length: int):
        self.filename = filename
        self.is_training = is_training
        self._writer = input_pipeline.TFRecordFeatureWriter(filename, feature_spec(max_seq_length, is_training))

    @property
    def num_features(self) -> int:
        return self._writer.num_written

    def process_feature(self, feature: InputFeatures) -> None:
        self._writer.write(feature_values(feature, self.is_training))

    def close(self) -> None:
        self._writer.close()
