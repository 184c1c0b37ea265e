"""One description of a task's features drives both the TFRecord writer and the `input_fn` reader.

Every task (classification, SQuAD, pre-training, feature extraction) declares its features once as a list of
`Feature`s; `TFRecordFeatureWriter` serialises dicts of values with it and `input_fn_builder` parses the same
records back, so writer and reader cannot drift apart.
"""

import collections
import dataclasses
import multiprocessing
import struct
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np
import tensorflow.compat.v1 as tf

from bert.common.file_io import remove_if_present, rename, temporary_name
from bert.runtime.sequence_length import LengthSettings, group_batches_by_length


@dataclasses.dataclass(frozen=True)
class Feature:
    """One fixed-length feature of a tf.train.Example: `shape` () is a scalar, (n,) a vector of n values."""

    name: str
    shape: tuple = ()
    dtype: str = "int64"  # "int64" (read back as int32, which TPUs need) or "float32"

    def length(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1


FeatureSpec = Sequence[Feature]


def _as_list(value) -> list:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, np.ndarray):
        return value.reshape(-1).tolist()
    return [value]


def to_tf_example(values: Mapping[str, object], spec: FeatureSpec) -> tf.train.Example:
    """Builds a tf.train.Example from `values`, checking every feature of `spec` is present with its length."""
    features = collections.OrderedDict()
    for feature in spec:
        if feature.name not in values:
            raise ValueError(f"feature '{feature.name}' is missing from the values to write")
        items = _as_list(values[feature.name])
        if len(items) != feature.length():
            raise ValueError(
                f"feature '{feature.name}' has {len(items)} values, expected {feature.length()} "
                f"(shape {feature.shape})")
        if feature.dtype == "float32":
            features[feature.name] = tf.train.Feature(float_list=tf.train.FloatList(value=items))
        else:
            features[feature.name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in items]))
    return tf.train.Example(features=tf.train.Features(feature=features))


class TFRecordFeatureWriter:
    """Writes feature dicts as serialized tf.train.Examples to one TFRecord file (local or gs://).

    The records go to a temporary name beside `path` that `close()` renames to `path`, so a run killed while
    writing never leaves a short file that a rerun would read as complete; leaving a `with` block by an exception
    removes the temporary file instead.
    """

    def __init__(self, path: str, spec: FeatureSpec):
        self.path = path
        self.spec = list(spec)
        self.num_written = 0
        self._temporary = temporary_name(path)
        self._writer = tf.io.TFRecordWriter(self._temporary)

    def write(self, values: Mapping[str, object]) -> None:
        self._writer.write(to_tf_example(values, self.spec).SerializeToString())
        self.num_written += 1

    def close(self) -> None:
        """Completes the file: only now does it appear under its name."""
        self._writer.close()
        rename(self._temporary, self.path)

    def abandon(self) -> None:
        self._writer.close()
        remove_if_present(self._temporary)

    def __enter__(self) -> "TFRecordFeatureWriter":
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abandon()


def write_tfrecord(path: str, rows: Iterable[Mapping[str, object]], spec: FeatureSpec) -> int:
    """Writes every row of `rows` to `path`; returns how many were written."""
    with TFRecordFeatureWriter(path, spec) as writer:
        for row in rows:
            writer.write(row)
    return writer.num_written


def parsing_spec(spec: FeatureSpec) -> Dict[str, tf.io.FixedLenFeature]:
    """The `tf.io.parse_single_example` description of `spec`."""
    dtypes = {"int64": tf.int64, "float32": tf.float32}
    return {f.name: tf.io.FixedLenFeature(list(f.shape), dtypes[f.dtype]) for f in spec}


def decode_record(record: tf.Tensor, spec: FeatureSpec) -> Dict[str, tf.Tensor]:
    """Parses one serialized example; int64 features become int32 because TPUs only take int32."""
    example = tf.io.parse_single_example(record, parsing_spec(spec))
    return {name: tf.cast(t, tf.int32) if t.dtype == tf.int64 else t for name, t in example.items()}


def read_tfrecord(path: str, spec: FeatureSpec) -> List[Dict[str, np.ndarray]]:
    """Reads every example of a TFRecord file into numpy dicts, in graph or eager mode (tests, inspection)."""
    rows = []
    for raw in tf.io.tf_record_iterator(path):
        example = tf.train.Example.FromString(raw).features.feature
        row = {}
        for f in spec:
            if f.dtype == "float32":
                values = np.array(example[f.name].float_list.value, dtype=np.float32)
            else:
                values = np.array(example[f.name].int64_list.value, dtype=np.int64)
            row[f.name] = values.reshape(f.shape)
        rows.append(row)
    return rows


def _crc32c_table() -> List[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def _masked_crc32c(data: bytes) -> int:
    """The checksum a TFRecord stores for its length and its data: CRC-32C, rotated and offset."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


_HEADER_BYTES = 12  # a record's length (uint64) and the length's checksum (uint32)


def _record_is_whole(file, offset: int) -> bool:
    """Whether a whole TFRecord (length, data and both checksums) starts at byte `offset` of the open `file`."""
    file.seek(offset)
    header = file.read(_HEADER_BYTES)
    if len(header) < _HEADER_BYTES:
        return False
    length, length_crc = struct.unpack("<QI", header)
    if _masked_crc32c(header[:8]) != length_crc:
        return False
    body = file.read(length + 4)
    return len(body) == length + 4 and _masked_crc32c(body[:length]) == struct.unpack("<I", body[length:])[0]


def _damaged_at(file, offset: int) -> bool:
    """Whether the record TensorFlow reported at `offset` (its start, or the start of its data) is broken in
    `file`: walks the records' headers from the start, seeking over their data, to the one at `offset`."""
    position = 0
    while position <= offset:
        if position in (offset, offset - _HEADER_BYTES):
            return not _record_is_whole(file, position)
        file.seek(position)
        header = file.read(_HEADER_BYTES)
        if len(header) < _HEADER_BYTES or _masked_crc32c(header[:8]) != struct.unpack("<I", header[8:])[0]:
            return False  # not a TFRecord file, or broken before `offset` (TensorFlow would have named that)
        position += _HEADER_BYTES + struct.unpack("<Q", header[:8])[0] + 4
    return False


def damaged_record_file(candidates: Iterable[str], offset: int) -> Optional[str]:
    """Which of the files `candidates` has the corrupted or truncated TFRecord that TensorFlow reported at byte
    `offset` (its message names the offset, not the file); None when none has."""
    for path in candidates:
        with tf.io.gfile.GFile(path, "rb") as file:
            if _damaged_at(file, offset):
                return path
    return None


def input_fn_builder(input_files: Union[str, Sequence[str]], spec: FeatureSpec, is_training: bool,
                     drop_remainder: bool, num_cpu_threads: Optional[int] = None,
                     repeat_eval: bool = False,
                     lengths: Optional[LengthSettings] = None) -> Callable[[dict], tf.data.Dataset]:
    """Makes the `input_fn(params)` TPUEstimator calls; the batch size comes from `params["batch_size"]`.

    Training repeats forever and shuffles (buffer 100, as the original); with several files it also shuffles the
    file order and reads `min(num_cpu_threads, len(files))` files in parallel, as the original pre-training did.
    Evaluation and prediction read in order, once unless `repeat_eval` (pre-training eval counts steps instead).
    `lengths` (opt-in, see bert.runtime.sequence_length) cuts each batch to its longest example and, for training, can
    group examples of similar length into batches; None keeps every batch at the full padded length.
    """
    files = [input_files] if isinstance(input_files, str) else list(input_files)
    if not files:
        raise ValueError("input_fn_builder needs at least one input file")
    threads = num_cpu_threads or max(1, multiprocessing.cpu_count())

    def input_fn(params):
        batch_size = params["batch_size"]
        if is_training and len(files) > 1:
            dataset = tf.data.Dataset.from_tensor_slices(tf.constant(files)).repeat().shuffle(len(files))
            dataset = dataset.interleave(tf.data.TFRecordDataset, cycle_length=min(threads, len(files)),
                                         num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
            dataset = dataset.shuffle(buffer_size=100)
        elif is_training:
            dataset = tf.data.TFRecordDataset(files).repeat().shuffle(buffer_size=100)
        else:
            dataset = tf.data.TFRecordDataset(files)
            if repeat_eval:
                dataset = dataset.repeat()
        dataset = dataset.map(lambda record: decode_record(record, spec), num_parallel_calls=threads)
        if is_training and lengths is not None and lengths.group_by_length:
            dataset = group_batches_by_length(dataset, batch_size, drop_remainder)
        else:
            dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
        if lengths is not None and lengths.dynamic_padding:
            dataset = dataset.map(lengths.cut_batch)
        return dataset.prefetch(tf.data.AUTOTUNE)

    return input_fn
