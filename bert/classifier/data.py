"""Sentence (pair) classification data: GLUE/XNLI readers, examples → features → TFRecords.

Behaves as the original `run_classifier.py` (same examples, same features for the same input), with the task
readers reduced to declarations: a GLUE task is one small `TsvProcessor` subclass naming its files, columns and
labels. Rows that do not fit their task (too few columns, unknown label) are reported with file and line.
"""

import csv
import dataclasses
import io
import os
from typing import Dict, List, Optional, Sequence, Tuple, Union

import tensorflow.compat.v1 as tf

from bert import tokenization
from bert.common import file_io
from bert.common.errors import UserError, UserFileNotFoundError
from bert.runtime import encoding, input_pipeline
from bert.runtime.input_pipeline import Feature


@dataclasses.dataclass
class InputExample:
    """One example: `text_a`, optional `text_b` for pair tasks, and `label` (None or a dummy for test sets)."""

    guid: str
    text_a: str
    text_b: Optional[str] = None
    label: Optional[str] = None


class PaddingInputExample:
    """A stand-in example that pads eval/predict sets to a whole number of TPU batches.

    Its features are all zero and `is_real_example` is False, so it weighs nothing in the metrics and its
    prediction is dropped. A distinct class (rather than None) makes a stray padding example fail loudly.
    """


@dataclasses.dataclass
class InputFeatures:
    """Model inputs of one example; `label_id` is an int index, or a float for regression tasks."""

    input_ids: List[int]
    input_mask: List[int]
    segment_ids: List[int]
    label_id: Union[int, float]
    is_real_example: bool = True


class DataProcessor:
    """Reads one task's train/dev/test files into `InputExample`s."""

    #: Extra eval metrics besides accuracy and loss ("f1", "matthews_corr", "pearson", "spearman").
    metrics: Tuple[str, ...] = ()
    #: True for a task with one real-valued output (STS-B): MSE loss, no softmax.
    is_regression: bool = False

    def get_train_examples(self, data_dir: str) -> List[InputExample]:
        raise NotImplementedError()

    def get_dev_examples(self, data_dir: str) -> List[InputExample]:
        raise NotImplementedError()

    def get_test_examples(self, data_dir: str) -> List[InputExample]:
        raise NotImplementedError()

    def get_labels(self) -> Optional[List[str]]:
        """The label strings in class-index order (None for regression)."""
        raise NotImplementedError()

    @classmethod
    def _read_tsv(cls, input_file: str, quotechar: Optional[str] = None) -> List[List[str]]:
        """Rows of a tab-separated file (quoting off by default, as GLUE files need)."""
        if not tf.io.gfile.exists(input_file):
            raise UserFileNotFoundError(f"data file not found: {input_file} (check --data_dir and --task_name)")
        text = file_io.read_text(input_file, "data file")
        return list(csv.reader(io.StringIO(text), delimiter="\t", quotechar=quotechar))


@dataclasses.dataclass(frozen=True)
class SplitLayout:
    """Where a split's fields are: file name, header, column indices (negative = from the end), a fixed label."""

    file_name: str
    text_a: int
    text_b: Optional[int] = None
    label: Optional[int] = None
    skip_header: bool = True
    fixed_label: Optional[str] = None  # test sets: every example gets this dummy label
    guid_column: Optional[int] = None  # None: the guid is the line number


class TsvProcessor(DataProcessor):
    """A task whose three splits are TSV files described by `SplitLayout`s."""

    labels: Optional[Sequence[str]] = ("0", "1")
    train: SplitLayout
    dev: SplitLayout
    test: SplitLayout
    dev_name = "dev"

    def get_labels(self) -> Optional[List[str]]:
        return None if self.labels is None else list(self.labels)

    def get_train_examples(self, data_dir: str) -> List[InputExample]:
        return self._read_split(data_dir, self.train, "train")

    def get_dev_examples(self, data_dir: str) -> List[InputExample]:
        return self._read_split(data_dir, self.dev, self.dev_name)

    def get_test_examples(self, data_dir: str) -> List[InputExample]:
        return self._read_split(data_dir, self.test, "test")

    def _read_split(self, data_dir: str, layout: SplitLayout, set_type: str) -> List[InputExample]:
        path = os.path.join(data_dir, layout.file_name)
        examples = []
        for index, row in enumerate(self._read_tsv(path)):
            if layout.skip_header and index == 0:
                continue
            examples.append(self._make_example(path, index, row, layout, set_type))
        return examples

    def _make_example(self, path: str, index: int, row: List[str], layout: SplitLayout,
                      set_type: str) -> InputExample:
        def column(position: Optional[int]) -> Optional[str]:
            if position is None:
                return None
            if not -len(row) <= position < len(row):
                raise UserError(f"{path}, line {index + 1}: expected at least {_needed_columns(layout)} "
                                 f"tab-separated columns, found {len(row)}")
            return tokenization.convert_to_unicode(row[position])

        guid_part = index if layout.guid_column is None else column(layout.guid_column)
        label = layout.fixed_label if layout.fixed_label is not None else column(layout.label)
        label = self._check_label(path, index, label)
        return InputExample(guid=f"{set_type}-{guid_part}", text_a=column(layout.text_a),
                            text_b=column(layout.text_b), label=label)

    def _check_label(self, path: str, index: int, label: Optional[str]) -> Optional[str]:
        if self.is_regression:
            try:
                float(label)
            except (TypeError, ValueError):
                raise UserError(f"{path}, line {index + 1}: label {label!r} is not a number") from None
        elif label not in self.labels:
            raise UserError(f"{path}, line {index + 1}: label {label!r} is not one of the task's labels "
                             f"{list(self.labels)}")
        return label


def _needed_columns(layout: SplitLayout) -> int:
    used = [c for c in (layout.text_a, layout.text_b, layout.label, layout.guid_column) if c is not None]
    return max(c + 1 if c >= 0 else -c for c in used)


class MrpcProcessor(TsvProcessor):
    """Microsoft Research Paraphrase Corpus (GLUE): Quality, #1 ID, #2 ID, #1 String, #2 String."""

    metrics = ("f1",)
    train = SplitLayout("train.tsv", text_a=3, text_b=4, label=0)
    dev = SplitLayout("dev.tsv", text_a=3, text_b=4, label=0)
    test = SplitLayout("test.tsv", text_a=3, text_b=4, fixed_label="0")


class ColaProcessor(TsvProcessor):
    """Corpus of Linguistic Acceptability (GLUE): train/dev have no header; test does."""

    metrics = ("matthews_corr",)
    train = SplitLayout("train.tsv", text_a=3, label=1, skip_header=False)
    dev = SplitLayout("dev.tsv", text_a=3, label=1, skip_header=False)
    test = SplitLayout("test.tsv", text_a=1, fixed_label="0")


class MnliProcessor(TsvProcessor):
    """MultiNLI (GLUE), matched dev/test sets."""

    labels = ("contradiction", "entailment", "neutral")
    train = SplitLayout("train.tsv", text_a=8, text_b=9, label=-1, guid_column=0)
    dev = SplitLayout("dev_matched.tsv", text_a=8, text_b=9, label=-1, guid_column=0)
    test = SplitLayout("test_matched.tsv", text_a=8, text_b=9, fixed_label="contradiction", guid_column=0)
    dev_name = "dev_matched"


class MnliMismatchedProcessor(MnliProcessor):
    """MultiNLI (GLUE), mismatched dev/test sets (same training data)."""

    dev = SplitLayout("dev_mismatched.tsv", text_a=8, text_b=9, label=-1, guid_column=0)
    test = SplitLayout("test_mismatched.tsv", text_a=8, text_b=9, fixed_label="contradiction", guid_column=0)
    dev_name = "dev_mismatched"


class Sst2Processor(TsvProcessor):
    """Stanford Sentiment Treebank, binary (GLUE): sentence, label."""

    train = SplitLayout("train.tsv", text_a=0, label=1)
    dev = SplitLayout("dev.tsv", text_a=0, label=1)
    test = SplitLayout("test.tsv", text_a=1, fixed_label="0")


class QnliProcessor(TsvProcessor):
    """Question NLI (GLUE): index, question, sentence, label."""

    labels = ("entailment", "not_entailment")
    train = SplitLayout("train.tsv", text_a=1, text_b=2, label=-1)
    dev = SplitLayout("dev.tsv", text_a=1, text_b=2, label=-1)
    test = SplitLayout("test.tsv", text_a=1, text_b=2, fixed_label="entailment")


class QqpProcessor(TsvProcessor):
    """Quora Question Pairs (GLUE): id, qid1, qid2, question1, question2, is_duplicate."""

    metrics = ("f1",)
    train = SplitLayout("train.tsv", text_a=3, text_b=4, label=5)
    dev = SplitLayout("dev.tsv", text_a=3, text_b=4, label=5)
    test = SplitLayout("test.tsv", text_a=1, text_b=2, fixed_label="0")


class RteProcessor(TsvProcessor):
    """Recognizing Textual Entailment (GLUE): index, sentence1, sentence2, label."""

    labels = ("entailment", "not_entailment")
    train = SplitLayout("train.tsv", text_a=1, text_b=2, label=-1)
    dev = SplitLayout("dev.tsv", text_a=1, text_b=2, label=-1)
    test = SplitLayout("test.tsv", text_a=1, text_b=2, fixed_label="entailment")


class WnliProcessor(RteProcessor):
    """Winograd NLI (GLUE): same layout as RTE, labels 0/1."""

    labels = ("0", "1")
    test = SplitLayout("test.tsv", text_a=1, text_b=2, fixed_label="0")


class StsbProcessor(TsvProcessor):
    """Semantic Textual Similarity Benchmark (GLUE): a similarity score in [0, 5] to regress."""

    labels = None
    is_regression = True
    metrics = ("pearson", "spearman")
    train = SplitLayout("train.tsv", text_a=7, text_b=8, label=-1)
    dev = SplitLayout("dev.tsv", text_a=7, text_b=8, label=-1)
    test = SplitLayout("test.tsv", text_a=7, text_b=8, fixed_label="0")


class XnliProcessor(DataProcessor):
    """XNLI: MultiNLI machine-translated training data and the human-translated XNLI dev set, for one language."""

    labels = ("contradiction", "entailment", "neutral")

    def __init__(self, language: str = "zh"):
        self.language = language

    def get_labels(self) -> List[str]:
        return list(self.labels)

    def get_train_examples(self, data_dir: str) -> List[InputExample]:
        path = os.path.join(data_dir, "multinli", f"multinli.train.{self.language}.tsv")
        examples = []
        for index, row in enumerate(self._read_tsv(path)):
            if index == 0:
                continue
            _require_columns(path, index, row, 3)
            label = "contradiction" if row[2] == "contradictory" else row[2]
            examples.append(InputExample(f"train-{index}", row[0], row[1], self._checked(path, index, label)))
        return examples

    def get_dev_examples(self, data_dir: str) -> List[InputExample]:
        path = os.path.join(data_dir, "xnli.dev.tsv")
        examples = []
        for index, row in enumerate(self._read_tsv(path)):
            if index == 0:
                continue
            _require_columns(path, index, row, 8)
            if row[0] != self.language:
                continue
            examples.append(InputExample(f"dev-{index}", row[6], row[7], self._checked(path, index, row[1])))
        return examples

    def _checked(self, path: str, index: int, label: str) -> str:
        if label not in self.labels:
            raise UserError(f"{path}, line {index + 1}: label {label!r} is not one of {list(self.labels)}")
        return label


def _require_columns(path: str, index: int, row: List[str], count: int) -> None:
    if len(row) < count:
        raise UserError(f"{path}, line {index + 1}: expected at least {count} tab-separated columns, "
                         f"found {len(row)}")


PROCESSORS: Dict[str, type] = {
    "cola": ColaProcessor,
    "mnli": MnliProcessor,
    "mnli-mm": MnliMismatchedProcessor,
    "mrpc": MrpcProcessor,
    "xnli": XnliProcessor,
    "sst-2": Sst2Processor,
    "qnli": QnliProcessor,
    "qqp": QqpProcessor,
    "rte": RteProcessor,
    "wnli": WnliProcessor,
    "sts-b": StsbProcessor,
}


def get_processor(task_name: str) -> DataProcessor:
    """The processor registered for `task_name` (case-insensitive); unknown names list the known ones."""
    key = (task_name or "").lower()
    if key not in PROCESSORS:
        raise UserError(f"Task not found: {task_name!r} (--task_name). Known tasks: {', '.join(sorted(PROCESSORS))}")
    return PROCESSORS[key]()


def classifier_feature_spec(max_seq_length: int, is_regression: bool = False) -> List[Feature]:
    """The TFRecord features of one example, shared by the writer and the input_fn."""
    return [
        Feature("input_ids", (max_seq_length,)),
        Feature("input_mask", (max_seq_length,)),
        Feature("segment_ids", (max_seq_length,)),
        Feature("label_ids", (), "float32" if is_regression else "int64"),
        Feature("is_real_example", ()),
    ]


_truncate_seq_pair = encoding.truncate_seq_pair  # the original's private name


def convert_single_example(ex_index: int, example, label_list: Optional[Sequence[str]], max_seq_length: int,
                           tokenizer) -> InputFeatures:
    """Tokenizes one example into `[CLS] a [SEP] (b [SEP])`, zero-padded to `max_seq_length`.

    `label_list` None means a regression task: the label is parsed as a float. The first five examples are logged.
    """
    if isinstance(example, PaddingInputExample):
        zeros = [0] * max_seq_length
        return InputFeatures(list(zeros), list(zeros), list(zeros), label_id=0, is_real_example=False)

    tokens, input_ids, input_mask, segment_ids = encoding.encode_text(tokenizer, example.text_a, example.text_b,
                                                                      max_seq_length)

    if label_list is None:
        label_id = float(example.label)
    else:
        label_id = {label: i for i, label in enumerate(label_list)}[example.label]
    if ex_index < 5:
        _log_example(example, tokens, input_ids, input_mask, segment_ids, label_id)
    return InputFeatures(input_ids, input_mask, segment_ids, label_id, is_real_example=True)


def _log_example(example, tokens, input_ids, input_mask, segment_ids, label_id) -> None:
    """The original's dump of the first examples, at DEBUG (absl --verbosity=1) to keep the default log short."""
    tf.logging.debug("*** Example ***")
    tf.logging.debug("guid: %s", example.guid)
    tf.logging.debug("tokens: %s", " ".join(tokenization.printable_text(t) for t in tokens))
    tf.logging.debug("input_ids: %s", " ".join(map(str, input_ids)))
    tf.logging.debug("input_mask: %s", " ".join(map(str, input_mask)))
    tf.logging.debug("segment_ids: %s", " ".join(map(str, segment_ids)))
    tf.logging.debug("label: %s (id = %s)", example.label, label_id)


def convert_examples_to_features(examples, label_list: Optional[Sequence[str]], max_seq_length: int,
                                 tokenizer) -> List[InputFeatures]:
    """`convert_single_example` over a list, in memory."""
    return [convert_single_example(i, ex, label_list, max_seq_length, tokenizer) for i, ex in enumerate(examples)]


def _feature_row(feature: InputFeatures) -> dict:
    return {"input_ids": feature.input_ids, "input_mask": feature.input_mask, "segment_ids": feature.segment_ids,
            "label_ids": feature.label_id, "is_real_example": int(feature.is_real_example)}


def file_based_convert_examples_to_features(examples, label_list: Optional[Sequence[str]], max_seq_length: int,
                                            tokenizer, output_file: str) -> None:
    """Converts `examples` and writes them as tf.train.Examples to the TFRecord `output_file`."""
    spec = classifier_feature_spec(max_seq_length, is_regression=label_list is None)
    with input_pipeline.TFRecordFeatureWriter(output_file, spec) as writer:
        for ex_index, example in enumerate(examples):
            if ex_index % 10000 == 0:
                tf.logging.info("Writing example %d of %d", ex_index, len(examples))
            writer.write(_feature_row(convert_single_example(ex_index, example, label_list, max_seq_length,
                                                             tokenizer)))


def write_features(features: Sequence[InputFeatures], max_seq_length: int, output_file: str,
                   is_regression: bool = False) -> None:
    """Writes already-converted `features`, in the order given, to the TFRecord `output_file`."""
    spec = classifier_feature_spec(max_seq_length, is_regression)
    input_pipeline.write_tfrecord(output_file, (_feature_row(feature) for feature in features), spec)


def file_based_input_fn_builder(input_file: str, seq_length: int, is_training: bool, drop_remainder: bool,
                                is_regression: bool = False,
                                lengths: Optional[input_pipeline.LengthSettings] = None):
    """The original's TFRecord input_fn for classification, on the shared input pipeline (`lengths`: opt-in
    dynamic padding)."""
    spec = classifier_feature_spec(seq_length, is_regression)
    return input_pipeline.input_fn_builder(input_file, spec, is_training, drop_remainder, lengths=lengths)


def input_fn_builder(features: Sequence[InputFeatures], seq_length: int, is_training: bool, drop_remainder: bool):
    """An in-memory input_fn over already-converted features (small data sets, notebooks).

    Label dtype follows the features: float labels (regression) stay float32.
    """
    label_dtype = tf.float32 if any(isinstance(f.label_id, float) for f in features) else tf.int32

    def input_fn(params):
        def column(name, dtype, shape):
            return tf.constant([getattr(f, name) for f in features], shape=shape, dtype=dtype)

        n = len(features)
        dataset = tf.data.Dataset.from_tensor_slices({
            "input_ids": column("input_ids", tf.int32, [n, seq_length]),
            "input_mask": column("input_mask", tf.int32, [n, seq_length]),
            "segment_ids": column("segment_ids", tf.int32, [n, seq_length]),
            "label_ids": column("label_id", label_dtype, [n]),
        })
        if is_training:
            dataset = dataset.repeat().shuffle(buffer_size=100)
        return dataset.batch(params["batch_size"], drop_remainder=drop_remainder)

    return input_fn


def pad_for_tpu(examples: List, batch_size: int) -> List:
    """Appends `PaddingInputExample`s until the count divides `batch_size` (TPUs need full batches)."""
    padded = list(examples)
    while len(padded) % batch_size:
        padded.append(PaddingInputExample())
    return padded
