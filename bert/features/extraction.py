"""Contextual token embeddings ("features") of a pre-trained BERT: numpy arrays, JSON lines or npz.

Input is one text per line; ` ||| ` splits a line into a sentence pair. Each line becomes
`[CLS] a [SEP]` (or `[CLS] a [SEP] b [SEP]`), runs through the encoder, and the outputs of the chosen layers
are kept for the real tokens (padding dropped).

Three ways out:
  * `extract_features(texts, ...)`: a list of (tokens, float32 array [num_layers, num_tokens, hidden]).
  * `write_features_file(..., output_format="jsonl")`: the original's JSON lines, byte for byte the same layout:
    `{"linex_index": i, "features": [{"token": t, "layers": [{"index": -1, "values": [...]}, ...]}, ...]}`
    with every value printed as `json.dumps(round(float(x), 6))` would print it.
  * `output_format="npz"`: one zip of arrays (see `NpzFeatureWriter`), float32 or float16, a fraction of the size.

By default the batches are the original's: lines in input order, `batch_size` lines of `max_seq_length`
tokens each (the last batch holds the rest), so every matrix product has the original's shapes and the values,
hence the JSON lines, are bit-identical to the original's. Opt-in `dynamic_padding=True` (`--dynamic_padding`)
is faster: lines are sorted by length inside windows of a few batches and each batch is cut after its longest
line, so the encoder does not run over padding. Padding is masked out of attention, so real tokens' values stay
the same up to float rounding of the other matrix shapes (see docs/what_is_tested.md for the measured
difference); on TPU, which needs static shapes, batches always keep max_seq_length.

In both modes JSON numbers are formatted by numpy table look-ups instead of one Python `round` + `repr` per value,
and results are written as they arrive, in input order, through a small reorder buffer.

Empty input lines are kept: like the original, each gets a record with only `[CLS]` and `[SEP]`, so
`linex_index` always equals the 0-based line number; a warning lists them.
"""

import dataclasses
import functools
import io
import json
import os
import re
import tempfile
import zipfile
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow.compat.v1 as tf

from bert import modeling, tokenization
from bert.common.errors import UserError, UserFileNotFoundError
from bert.common.file_io import ReplacingFile
from bert.runtime import encoding, input_pipeline, specs
from bert.runtime.engine import make_estimator
from bert.runtime.options import RunSettings
from bert.runtime.performance import PerformanceSettings
from bert.runtime.pretrained import load_pretrained
from bert.runtime.sequence_length import LengthSettings

# A line "text a ||| text b" is a sentence pair (split at the last separator, as the original's regex did).
_PAIR_PATTERN = re.compile(r"^(.*) \|\|\| (.*)$")
# Lines are sorted by length inside windows of this many batches; the window bounds the reorder buffer.
SORT_WINDOW_BATCHES = 16
OUTPUT_FORMATS = ("jsonl", "npz")
NPZ_DTYPES = ("float32", "float16")
# [CLS] a [SEP] b [SEP]: a pair needs three special tokens.
_MIN_SEQ_LENGTH = 3
_LOGGED_EXAMPLES = 5

TextOrPair = Union[str, Tuple[str, Optional[str]]]


# ----------------------------------------------------------------------------------------------------------------
# Examples and features
# ----------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class InputExample:
    """One input line: a text, or a sentence pair when `text_b` is set."""

    unique_id: int
    text_a: str
    text_b: Optional[str] = None


@dataclasses.dataclass
class InputFeatures:
    """Token ids of one example, padded to the maximum sequence length."""

    unique_id: int
    tokens: List[str]
    input_ids: List[int]
    input_mask: List[int]
    input_type_ids: List[int]


def parse_line(line: str) -> Tuple[str, Optional[str]]:
    """Splits a stripped input line into (text_a, text_b); text_b is None unless the line holds ` ||| `."""
    match = _PAIR_PATTERN.match(line)
    if match is None:
        return line, None
    return match.group(1), match.group(2)


def read_examples(input_file: str) -> List[InputExample]:
    """One example per line of `input_file` (UTF-8; split on "\\n" only); unique_id is the 0-based line number.

    Raises:
      FileNotFoundError: `input_file` does not exist.
    """
    if not tf.io.gfile.exists(input_file):
        raise UserFileNotFoundError(f"input file not found: {input_file} (--input_file)")
    examples = []
    with tf.io.gfile.GFile(input_file, "rb") as reader:
        for line_number, raw_line in enumerate(reader):
            try:
                text = raw_line.decode("utf-8")
            except UnicodeDecodeError as error:
                raise UserError(f"{input_file}, line {line_number + 1}: not valid UTF-8 text ({error.reason})") from None
            text_a, text_b = parse_line(text.strip())
            examples.append(InputExample(unique_id=line_number, text_a=text_a, text_b=text_b))
    _warn_about_empty_lines(examples, input_file)
    return examples


def _warn_about_empty_lines(examples: Sequence[InputExample], source: str) -> None:
    """Empty inputs are kept (numbering stays the line number) but are probably a mistake, so say so."""
    empty = [e.unique_id for e in examples if not e.text_a and not e.text_b]
    if empty:
        shown = ", ".join(str(i) for i in empty[:10]) + (", ..." if len(empty) > 10 else "")
        tf.logging.warning("%d empty input(s) in %s (0-based: %s): each gets a record with only [CLS] and [SEP]",
                           len(empty), source, shown)


def examples_from_texts(texts: Sequence[TextOrPair]) -> List[InputExample]:
    """Examples from a list of texts; a (text_a, text_b) tuple is a sentence pair. Strings are not parsed
    for ` ||| `: pass a tuple for a pair.

    Raises:
      ValueError: an item is neither a string nor a pair of strings.
    """
    examples = []
    for index, text in enumerate(texts):
        if isinstance(text, str):
            examples.append(InputExample(index, text))
        elif isinstance(text, (tuple, list)) and len(text) == 2 and isinstance(text[0], str):
            examples.append(InputExample(index, text[0], text[1]))
        else:
            raise ValueError(f"texts[{index}] must be a string or a (text_a, text_b) pair, got {text!r}")
    _warn_about_empty_lines(examples, "the texts")
    return examples


def convert_example_to_features(example: InputExample, seq_length: int,
                                tokenizer: tokenization.FullTokenizer) -> InputFeatures:
    """`[CLS] a [SEP]` (type ids 0) then `b [SEP]` (type ids 1), truncated and zero-padded to `seq_length`.

    A text_b that is empty or tokenizes to nothing makes a single-sentence example, as in the original.
    """
    encoded = encoding.encode_text(tokenizer, example.text_a, example.text_b, seq_length)
    return InputFeatures(unique_id=example.unique_id, tokens=encoded.tokens, input_ids=encoded.input_ids,
                         input_mask=encoded.input_mask, input_type_ids=encoded.segment_ids)


def convert_examples_to_features(examples: Sequence[InputExample], seq_length: int,
                                 tokenizer: tokenization.FullTokenizer) -> List[InputFeatures]:
    """Features of every example; the first five are logged."""
    features = []
    for index, example in enumerate(examples):
        feature = convert_example_to_features(example, seq_length, tokenizer)
        if index < _LOGGED_EXAMPLES:
            _log_feature(feature)
        features.append(feature)
    return features


def _log_feature(feature: InputFeatures) -> None:
    tf.logging.info("*** Example ***")
    tf.logging.info("unique_id: %s", feature.unique_id)
    tf.logging.info("tokens: %s", " ".join(tokenization.printable_text(t) for t in feature.tokens))
    tf.logging.info("input_ids: %s", " ".join(map(str, feature.input_ids)))
    tf.logging.info("input_mask: %s", " ".join(map(str, feature.input_mask)))
    tf.logging.info("input_type_ids: %s", " ".join(map(str, feature.input_type_ids)))


def parse_layer_indexes(layers: Union[str, Sequence[int]], num_hidden_layers: int) -> List[int]:
    """Layer indexes from "-1,-2,-3,-4" (or a list), checked against the model: Python indexing into the
    encoder's layers, so -num_hidden_layers..num_hidden_layers-1 are valid (-1 = last layer, 0 = first).

    Raises:
      ValueError: the text is not comma-separated integers, is empty, or an index is out of range.
    """
    if isinstance(layers, str):
        try:
            indexes = [int(item) for item in layers.split(",")]
        except ValueError:
            raise UserError(f"--layers must be comma-separated integers such as \"-1,-2,-3,-4\", got {layers!r}")
    else:
        indexes = [int(item) for item in layers]
    if not indexes:
        raise UserError("--layers: at least one layer index is needed (e.g. -1 for the last layer)")
    for index in indexes:
        if not -num_hidden_layers <= index < num_hidden_layers:
            raise UserError(f"--layers: layer index {index} is out of range for a model with {num_hidden_layers} hidden "
                            f"layers: valid indexes are {-num_hidden_layers}..{num_hidden_layers - 1}")
    return indexes


# ----------------------------------------------------------------------------------------------------------------
# Estimator: model_fn and input_fn
# ----------------------------------------------------------------------------------------------------------------


# The features holding one value per token: --dynamic_padding cuts them to each batch's longest line.
TOKEN_FEATURES = ("input_ids", "input_mask", "input_type_ids")


def feature_spec(seq_length: int) -> List[input_pipeline.Feature]:
    """The TFRecord features of one example; `unique_ids` holds its position in the input."""
    return [
        input_pipeline.Feature("unique_ids"),
        input_pipeline.Feature("input_ids", (seq_length,)),
        input_pipeline.Feature("input_mask", (seq_length,)),
        input_pipeline.Feature("input_type_ids", (seq_length,)),
    ]


def model_fn_builder(bert_config: modeling.BertConfig, init_checkpoint: str, layer_indexes: Sequence[int],
                     use_tpu: bool, use_one_hot_embeddings: bool):
    """A TPUEstimator model_fn predicting `unique_ids` and `layer_outputs`, float32 [batch, num_layers,
    seq_length, hidden] holding the encoder layers `layer_indexes` in that order."""

    def model_fn(features, labels, mode, params):  # pylint: disable=unused-argument
        if mode != specs.ModeKeys.PREDICT:
            raise ValueError(f"feature extraction only supports PREDICT mode, got {mode}")
        model = modeling.BertModel(
            config=specs.run_params(params).performance.model_config(bert_config),
            is_training=False,
            input_ids=features["input_ids"],
            input_mask=features["input_mask"],
            token_type_ids=features["input_type_ids"],
            use_one_hot_embeddings=use_one_hot_embeddings)
        scaffold_fn = specs.init_from_checkpoint(init_checkpoint, use_tpu)
        all_layers = model.get_all_encoder_layers()
        predictions = {
            "unique_ids": features["unique_ids"],
            "layer_outputs": tf.stack([all_layers[i] for i in layer_indexes], axis=1),  # [B, K, S, H]
        }
        return specs.model_spec(mode, predictions=predictions, scaffold_fn=scaffold_fn)

    return model_fn


def length_sorted_order(lengths: Sequence[int], window: int) -> List[int]:
    """Positions 0..len(lengths)-1, sorted by length inside each run of `window` consecutive positions.

    Sorting groups similar lengths into the same batches (less padding); doing it per window keeps a result
    waiting at most one window for the results before it, so the reorder buffer stays small.
    """
    order = []
    for start in range(0, len(lengths), window):
        stop = min(start + window, len(lengths))
        order.extend(sorted(range(start, stop), key=lengths.__getitem__))
    return order


def _record_row(position: int, feature: InputFeatures) -> Dict[str, object]:
    return {"unique_ids": position, "input_ids": feature.input_ids, "input_mask": feature.input_mask,
            "input_type_ids": feature.input_type_ids}


def _in_input_order(results: Iterable[Dict[str, np.ndarray]],
                    features: Sequence[InputFeatures]) -> Iterator[Tuple[InputFeatures, np.ndarray]]:
    """Re-orders per-example predictions (tagged with their position) into input order, keeping real tokens."""
    waiting = {}
    next_position = 0
    for result in results:
        position = int(result["unique_ids"])
        waiting[position] = result["layer_outputs"][:, :len(features[position].tokens)]
        while next_position in waiting:
            yield features[next_position], waiting.pop(next_position)
            next_position += 1
    if next_position != len(features):
        raise RuntimeError(f"the estimator returned results for {next_position} of {len(features)} examples")


# ----------------------------------------------------------------------------------------------------------------
# The extractor
# ----------------------------------------------------------------------------------------------------------------


class FeatureExtractor:
    """A checkpoint, its tokenizer and a choice of layers, checked once, ready to run on many inputs."""

    def __init__(self,
                 bert_config: Union[str, modeling.BertConfig],
                 init_checkpoint: str,
                 vocab_file: str,
                 layers: Union[str, Sequence[int]] = (-1,),
                 max_seq_length: int = 128,
                 batch_size: int = 32,
                 do_lower_case: bool = True,
                 use_one_hot_embeddings: bool = False,
                 use_tpu: bool = False,
                 master: Optional[str] = None,
                 num_tpu_cores: int = 8,
                 performance: Optional[PerformanceSettings] = None,
                 dynamic_padding: bool = False,
                 preserve_unused_tokens: bool = False,
                 engine: str = "auto"):
        """Reads the config and vocabulary and validates every setting before any model work.

        Args:
          bert_config: a BertConfig or the path of a bert_config.json.
          init_checkpoint: checkpoint prefix (…/bert_model.ckpt) or a directory holding one.
          vocab_file: the model's WordPiece vocabulary.
          layers: encoder layers to return, "-1,-2" or [-1, -2]; see `parse_layer_indexes`.
          max_seq_length: WordPiece tokens per line including [CLS]/[SEP]; longer lines are truncated.
          batch_size: lines per prediction batch.
          do_lower_case: True for uncased models.
          use_one_hot_embeddings: look up word embeddings by one-hot matmul (faster on TPU).
          use_tpu, master, num_tpu_cores: run on a TPU (then batches keep the full max_seq_length).
          performance: [new] precision and XLA of the prediction graph; the default is the original's float32.
          dynamic_padding: [new] length-sorted batches cut to their longest line: faster, values equal up to
            float rounding (bert.runtime.sequence_length cuts them, as for the tasks; not with use_tpu). False (the
            default) runs the original's batches, for bit-identical values.
          preserve_unused_tokens: keep the vocabulary's "[unusedN]" entries whole (`tokenization.preserve_token`).
          engine: [new] what runs the model, one of bert.runtime.engine.ENGINES (auto: the Estimator where
            TensorFlow has it).

        Raises:
          FileNotFoundError: the config, checkpoint or vocabulary is missing.
          ValueError: a setting is out of range for this model.
        """
        if max_seq_length < _MIN_SEQ_LENGTH:
            raise UserError(f"max_seq_length={max_seq_length} is too short: it must be at least "
                            f"{_MIN_SEQ_LENGTH} to hold [CLS], [SEP] and [SEP]")
        if batch_size < 1:
            raise UserError(f"batch_size must be at least 1, got {batch_size}")
        if not init_checkpoint:
            raise UserError("init_checkpoint is required: feature extraction needs trained weights")
        self.bert_config, self.tokenizer, self.init_checkpoint = load_pretrained(
            bert_config, vocab_file, init_checkpoint, do_lower_case, max_seq_length, preserve_unused_tokens)
        self.layer_indexes = parse_layer_indexes(layers, self.bert_config.num_hidden_layers)
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.use_one_hot_embeddings = use_one_hot_embeddings
        self.use_tpu = use_tpu
        self.master = master
        self.num_tpu_cores = num_tpu_cores
        self.performance = performance or PerformanceSettings()
        self.performance.validate(use_tpu)
        self.dynamic_padding = dynamic_padding
        self.engine = engine
        self.lengths = LengthSettings.for_run(max_seq_length, dynamic_padding, use_tpu=use_tpu,
                                              use_xla=self.performance.use_xla, token_features=TOKEN_FEATURES)

    @property
    def hidden_size(self) -> int:
        return self.bert_config.hidden_size

    def convert(self, examples: Sequence[InputExample]) -> List[InputFeatures]:
        """Tokenized, truncated and padded features of `examples`."""
        return convert_examples_to_features(examples, self.max_seq_length, self.tokenizer)

    def run(self, features: Sequence[InputFeatures]) -> Iterator[Tuple[InputFeatures, np.ndarray]]:
        """Yields (feature, float32 array [num_layers, num_tokens, hidden]) for every feature, in input order,
        as soon as its results (and those of all features before it) are ready."""
        if not features:
            return
        with tempfile.TemporaryDirectory(prefix="bert_features_") as work_dir:
            if self.dynamic_padding:
                order = length_sorted_order([len(f.tokens) for f in features],
                                            SORT_WINDOW_BATCHES * self.batch_size)
            else:
                order = range(len(features))
            record_file = os.path.join(work_dir, "features.tf_record")
            input_pipeline.write_tfrecord(record_file, (_record_row(i, features[i]) for i in order),
                                          feature_spec(self.max_seq_length))
            estimator = make_estimator(
                model_fn_builder(self.bert_config, self.init_checkpoint, self.layer_indexes, self.use_tpu,
                                 self.use_one_hot_embeddings),
                RunSettings(output_dir=work_dir, use_tpu=self.use_tpu, master=self.master,
                            num_tpu_cores=self.num_tpu_cores, performance=self.performance,
                            engine=self.engine),
                predict_batch_size=self.batch_size)
            input_fn = input_pipeline.input_fn_builder(record_file, feature_spec(self.max_seq_length),
                                                       is_training=False, drop_remainder=False, lengths=self.lengths)
            results = estimator.predict(input_fn, yield_single_examples=True)
            yield from _in_input_order(results, features)


def extract_features(texts: Sequence[TextOrPair],
                     bert_config: Union[str, modeling.BertConfig],
                     init_checkpoint: str,
                     vocab_file: str,
                     layers: Union[str, Sequence[int]] = (-1,),
                     max_seq_length: int = 128,
                     batch_size: int = 32,
                     do_lower_case: bool = True,
                     performance: Optional[PerformanceSettings] = None,
                     dynamic_padding: bool = False) -> List[Tuple[List[str], np.ndarray]]:
    """Per-token outputs of the chosen encoder layers for each text, without writing any file.

    Args:
      texts: strings, or (text_a, text_b) tuples for sentence pairs.
      bert_config, init_checkpoint, vocab_file, layers, max_seq_length, batch_size, do_lower_case, performance,
        dynamic_padding: see `FeatureExtractor`.

    Returns:
      For each text, in order: (tokens including [CLS]/[SEP], float32 array [num_layers, num_tokens, hidden]),
      layers in the order asked for.
    """
    extractor = FeatureExtractor(bert_config, init_checkpoint, vocab_file, layers=layers,
                                 max_seq_length=max_seq_length, batch_size=batch_size, do_lower_case=do_lower_case,
                                 performance=performance, dynamic_padding=dynamic_padding)
    features = extractor.convert(examples_from_texts(texts))
    return [(feature.tokens, outputs) for feature, outputs in extractor.run(features)]


def write_features_file(extractor: FeatureExtractor, input_file: str, output_file: str,
                        output_format: str = "jsonl", npz_dtype: str = "float32") -> int:
    """Extracts features of every line of `input_file` into `output_file`; returns the number of lines.

    Args:
      extractor: the model and settings to use.
      input_file: one text per line, ` ||| ` between the texts of a pair.
      output_file: where to write; its folder must exist.
      output_format: "jsonl" (the original's format) or "npz" (see `NpzFeatureWriter`).
      npz_dtype: "float32" or "float16" values in npz output.

    Raises:
      FileNotFoundError: the input file or the output folder does not exist.
      ValueError: unknown output_format or npz_dtype.
    """
    if output_format not in OUTPUT_FORMATS:
        raise UserError(f"output_format must be one of {', '.join(OUTPUT_FORMATS)}, got {output_format!r}")
    if npz_dtype not in NPZ_DTYPES:
        raise UserError(f"npz_dtype must be one of {', '.join(NPZ_DTYPES)}, got {npz_dtype!r}")
    check_output_folder(output_file)
    features = extractor.convert(read_examples(input_file))
    if output_format == "jsonl":
        writer = JsonLinesWriter(output_file, extractor.layer_indexes)
    else:
        writer = NpzFeatureWriter(output_file, extractor.layer_indexes, [len(f.tokens) for f in features],
                                  extractor.hidden_size, npz_dtype)
    with writer:
        for feature, layer_outputs in extractor.run(features):
            writer.write(feature.unique_id, feature.tokens, layer_outputs)
    tf.logging.info("Wrote features of %d lines to %s", len(features), output_file)
    return len(features)


def check_output_folder(output_file: str) -> None:
    """Fails before any model work when the output file's folder is missing (local paths only; object stores
    have no real folders).

    Raises:
      FileNotFoundError: the folder does not exist.
    """
    if "://" in output_file:
        return
    folder = os.path.dirname(os.path.abspath(output_file))
    if not os.path.isdir(folder):
        raise UserFileNotFoundError(f"the folder of output file {output_file} (--output_file) does not exist: {folder} "
                                    f"(create it first)")


# ----------------------------------------------------------------------------------------------------------------
# Exact JSON text of round(float(x), 6), vectorised
# ----------------------------------------------------------------------------------------------------------------
#
# For a float32 x, x * 1e6 is exact in float64 (24 + 14 mantissa bits), so rint() of it is the correctly
# rounded, ties-to-even number of millionths n that round(x, 6) also computes. The double round() returns is
# the one nearest n / 1e6, and while |x| < 1e4 no other decimal with as few digits maps to it, so its repr()
# is n written in decimal: "-12.3405" (trailing zeros dropped, at least one fraction digit), except that
# repr() switches to scientific notation below 1e-4: "1.2e-05", "5e-06". Each value's text is two 8-byte
# pieces looked up in tables: a head ", -12" (separator, sign, integer part) and a tail ".3405" (fraction or
# scientific mantissa and exponent), zero-padded; deleting the zero bytes leaves the joined text.

_SCALE = 10 ** 6
_HEAD_LIMIT = 10 ** 4  # integer parts below this are in the head table; bigger values take the exact slow path
_FIXED_NOTATION_FROM = 100  # 100 millionths = 1e-4, where repr() stops using scientific notation
_PIECE_BYTES = 8
_SEGMENT_MARK = 1  # byte marking the first value of each segment before the zero bytes are deleted


def _pack_pieces(texts: Sequence[str]) -> np.ndarray:
    """uint64 [len(texts)]: each ASCII text (at most 8 chars) zero-padded into 8 bytes."""
    table = np.zeros((len(texts), _PIECE_BYTES), np.uint8)
    for row, text in enumerate(texts):
        encoded = text.encode("ascii")
        table[row, :len(encoded)] = np.frombuffer(encoded, np.uint8)
    return table.view(np.uint64)[:, 0]


def _fraction_pieces() -> np.ndarray:
    """uint8 [1e6, 8]: ".d" for d = 0..999999 millionths as 6 digits without trailing zeros (".0" for 0).

    Built from the 1000 three-digit groups (high, low) rather than digit by digit, which is several times faster.
    """
    groups = np.arange(1000)
    group_digits = ((groups[:, None] // np.array([100, 10, 1])) % 10 + ord("0")).astype(np.uint8)  # [1000, 3]
    group_trailing_zeros = (groups % 10 == 0).astype(np.int64) + (groups % 100 == 0) + (groups == 0)
    high_zeros = np.repeat(group_trailing_zeros, 1000)  # [1e6]: millionths // 1000
    low_zeros = np.tile(group_trailing_zeros, 1000)  # [1e6]: millionths % 1000
    kept_digits = np.maximum(np.where(low_zeros == 3, 3 - high_zeros, 6 - low_zeros), 1)
    pieces = np.zeros((_SCALE, _PIECE_BYTES), np.uint8)
    pieces[:, 0] = ord(".")
    pieces[:, 1:4] = np.repeat(group_digits, 1000, axis=0)
    pieces[:, 4:7] = np.tile(group_digits, (1000, 1))
    pieces[:, 1:7] *= np.arange(6) < kept_digits[:, None]
    return pieces


@functools.lru_cache(maxsize=1)
def _float_text_tables() -> Tuple[np.ndarray, np.ndarray]:
    """(heads, tails), uint64 tables of 8-byte pieces (8 MB), built once on first use (a fraction of a second).

    heads: [2 * _HEAD_LIMIT + 2]: ", i" for i < _HEAD_LIMIT, then ", -i", then ", " and ", -" (scientific).
    tails: [_SCALE + 100]: fractions (see `_fraction_pieces`), then "1e-06" ... "9.9e-05" for 1..99 millionths.
    """
    heads = _pack_pieces([f", {i}" for i in range(_HEAD_LIMIT)] + [f", -{i}" for i in range(_HEAD_LIMIT)]
                         + [", ", ", -"])
    tails = np.empty(_SCALE + _FIXED_NOTATION_FROM, np.uint64)
    tails[:_SCALE] = _fraction_pieces().view(np.uint64)[:, 0]
    tails[_SCALE:] = _pack_pieces([repr(n / _SCALE) if n else "" for n in range(_FIXED_NOTATION_FROM)])
    return heads, tails


def _exact_float_texts(rows: np.ndarray) -> List[bytes]:
    """The original's own formatting, one value at a time: slow, for values the tables do not cover."""
    return [", ".join(json.dumps(round(float(x), 6)) for x in row).encode("ascii") for row in rows]


def format_rounded_floats(rows: np.ndarray) -> List[bytes]:
    """For each row of float32 `rows` [num_rows, width], the text ", ".join(json.dumps(round(float(x), 6)))
    as ASCII bytes, identical to the original's output; vectorised while all |x| < 1e4 and finite."""
    rows = np.asarray(rows, np.float32)
    values = rows.reshape(-1)
    millionths = np.abs(np.rint(values.astype(np.float64) * _SCALE))
    if not np.all(millionths < _HEAD_LIMIT * _SCALE):  # also catches inf and nan
        return _exact_float_texts(rows)
    millionths = millionths.astype(np.int64)
    negative = np.signbit(values).astype(np.int64)
    scientific = (millionths > 0) & (millionths < _FIXED_NOTATION_FROM)
    integer_part, fraction = np.divmod(millionths, _SCALE)
    heads, tails = _float_text_tables()
    pieces = np.empty((values.size, 2), np.uint64)
    pieces[:, 0] = heads[np.where(scientific, 2 * _HEAD_LIMIT + negative, integer_part + _HEAD_LIMIT * negative)]
    pieces[:, 1] = tails[np.where(scientific, _SCALE + millionths, fraction)]
    text = pieces.view(np.uint8).reshape(rows.shape[0], -1)  # [num_rows, width * 16]
    text[:, :2] = (_SEGMENT_MARK, 0)  # the ", " before each row's first value marks where the row starts
    return text.tobytes().translate(None, b"\0").split(bytes([_SEGMENT_MARK]))[1:]


# ----------------------------------------------------------------------------------------------------------------
# Writers
# ----------------------------------------------------------------------------------------------------------------


class JsonLineFormatter:
    """Builds the original's JSON line of one input: keys, order and spacing as its json.dumps made them."""

    def __init__(self, layer_indexes: Sequence[int]):
        self._layer_prefixes = [b'{"index": %d, "values": [' % index for index in layer_indexes]
        self._token_texts: Dict[str, bytes] = {}

    def line(self, linex_index: int, tokens: Sequence[str], layer_outputs: np.ndarray) -> bytes:
        """ASCII JSON text, newline included, of float32 `layer_outputs` [num_layers, num_tokens, hidden]."""
        num_layers = len(self._layer_prefixes)
        rows = np.transpose(layer_outputs, (1, 0, 2)).reshape(len(tokens) * num_layers, -1)  # token-major
        value_texts = format_rounded_floats(rows)
        token_entries = []
        for position, token in enumerate(tokens):
            first = position * num_layers
            layers = b", ".join(prefix + value_texts[first + k] + b"]}"
                                for k, prefix in enumerate(self._layer_prefixes))
            token_entries.append(b'{"token": ' + self._token_text(token) + b', "layers": [' + layers + b"]}")
        return b'{"linex_index": %d, "features": [' % linex_index + b", ".join(token_entries) + b"]}\n"

    def _token_text(self, token: str) -> bytes:
        text = self._token_texts.get(token)
        if text is None:
            text = self._token_texts[token] = json.dumps(token).encode("ascii")
        return text


class JsonLinesWriter:
    """Writes one JSON line per input line (see `JsonLineFormatter`), in the order they are given."""

    def __init__(self, path: str, layer_indexes: Sequence[int]):
        self._formatter = JsonLineFormatter(layer_indexes)
        self._output = ReplacingFile(path, "wb")
        self._file = self._output.file

    def write(self, linex_index: int, tokens: Sequence[str], layer_outputs: np.ndarray) -> None:
        """Appends the line of one input: `layer_outputs` float32 [num_layers, num_tokens, hidden]."""
        self._file.write(self._formatter.line(linex_index, tokens, layer_outputs))

    def close(self) -> None:
        """Completes the file: only now does it appear under its name."""
        self._output.commit()

    def __enter__(self) -> "JsonLinesWriter":
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        if exc_type is None:
            self.close()
        else:
            self._output.abandon()


class _WriteOnlyStream(io.RawIOBase):
    """A GFile seen as a stream that cannot seek, so zipfile writes into it sequentially (local or gs://)."""

    def __init__(self, gfile):
        super().__init__()
        self._gfile = gfile

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._gfile.write(bytes(data))
        return len(data)


class NpzFeatureWriter:
    """Writes all lines' features into one .npz (np.load reads it; no pickle), streaming the values.

    Arrays:
      values: float32 or float16 [total_tokens, num_layers, hidden]: every line's real tokens, in line order.
      token_offsets: int64 [num_lines + 1]: line i is values[token_offsets[i]:token_offsets[i + 1]].
      tokens: str [total_tokens]: the WordPiece token of each row of `values`.
      layers: int64 [num_layers]: the layer index of each slice of axis 1.
    `load_npz_features` turns the file back into `extract_features`' list of (tokens, array).
    """

    def __init__(self, path: str, layer_indexes: Sequence[int], token_counts: Sequence[int], hidden_size: int,
                 dtype: str = "float32"):
        self._layer_indexes = list(layer_indexes)
        self._token_offsets = np.concatenate([[0], np.cumsum(token_counts, dtype=np.int64)])
        self._dtype = np.dtype(dtype)
        self._tokens: List[str] = []
        self._output = ReplacingFile(path, "wb")
        self._file = self._output.file
        self._archive = zipfile.ZipFile(_WriteOnlyStream(self._file), mode="w", allowZip64=True)
        self._values = self._archive.open("values.npy", mode="w", force_zip64=True)
        shape = (int(self._token_offsets[-1]), len(self._layer_indexes), hidden_size)
        np.lib.format.write_array_header_1_0(self._values, {
            "descr": np.lib.format.dtype_to_descr(self._dtype), "fortran_order": False, "shape": shape})

    def write(self, linex_index: int, tokens: Sequence[str], layer_outputs: np.ndarray) -> None:
        """Appends one line: `layer_outputs` float32 [num_layers, num_tokens, hidden]. Lines must come in input
        order, so `linex_index` (kept for the JsonLinesWriter interface) is implied by the position."""
        token_major = np.transpose(layer_outputs, (1, 0, 2)).astype(self._dtype)  # [T, K, H]
        self._values.write(np.ascontiguousarray(token_major).tobytes())
        self._tokens.extend(tokens)

    def close(self) -> None:
        """Finishes `values` and adds the small arrays; fails if fewer tokens arrived than announced."""
        self._values.close()
        if len(self._tokens) != self._token_offsets[-1]:
            raise RuntimeError(f"npz output got {len(self._tokens)} tokens, expected {self._token_offsets[-1]}")
        self._add_array("token_offsets", self._token_offsets)
        self._add_array("tokens", np.array(self._tokens, dtype=str))
        self._add_array("layers", np.array(self._layer_indexes, dtype=np.int64))
        self._archive.close()
        self._output.commit()

    def _add_array(self, name: str, array: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        self._archive.writestr(name + ".npy", buffer.getvalue())

    def __enter__(self) -> "NpzFeatureWriter":
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        if exc_type is None:
            self.close()
        else:
            self._output.abandon()


def load_npz_features(path: str) -> List[Tuple[List[str], np.ndarray]]:
    """Reads an npz written by `NpzFeatureWriter` as extract_features' list of (tokens, [num_layers,
    num_tokens, hidden] array), one per input line."""
    with tf.io.gfile.GFile(path, "rb") as reader, np.load(io.BytesIO(reader.read()), allow_pickle=False) as data:
        values, offsets, tokens = data["values"], data["token_offsets"], data["tokens"]
    return [(tokens[start:stop].tolist(), np.transpose(values[start:stop], (1, 0, 2)))
            for start, stop in zip(offsets[:-1], offsets[1:])]
