"""Pre-training examples as TFRecords, written without TensorFlow.

Importing TensorFlow costs seconds and hundreds of MB per process, and building a `tf.train.Example` per instance
is slow; data generation (one process or many workers) needs neither. The seven features of a pre-training
example have a fixed layout, so the `tf.train.Example` protocol buffer is encoded here directly, and the TFRecord
framing (lengths and masked CRC-32C checksums) is computed with numpy for a whole batch of records at once.
Remote paths (gs://...) are still written through `tf.io.gfile`, imported only then.

Features are emitted in the order the protobuf runtime of TF 2.x serialises the original's feature map, so the
files are byte-identical to the original's (readers do not depend on that order; parity tests compare parsed
examples).
"""

import functools
import struct
from typing import List, Sequence, Tuple

import numpy as np

from bert.common.file_io import ReplacingFile

# ----------------------------------------------------------------------------------------------------------------
# CRC-32C (Castagnoli), the checksum of the TFRecord format
# ----------------------------------------------------------------------------------------------------------------

_CRC32C_POLYNOMIAL = 0x82F63B78  # bit-reversed 0x1EDC6F41
_CRC_MASK_DELTA = 0xA282EAD8
_UINT32 = 0xFFFFFFFF


def _byte_table() -> np.ndarray:
    """uint32 [256]: the CRC state change caused by one byte, for the reflected polynomial."""
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(_CRC32C_POLYNOMIAL), table >> 1).astype(np.uint32)
    return table


def _word_half_tables(byte_table: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """uint32 [65536] x 2: the state after 4 bytes, split by the low and the high 16 bits of (state ^ word).

    CRC updates are linear over GF(2), so pushing a 32-bit value through four byte steps equals the XOR of the
    results for its two halves; two 64K tables then replace four 256-entry lookups per 4-byte word.
    """
    halves = []
    for shift in (0, 16):
        state = np.arange(65536, dtype=np.uint32) << np.uint32(shift)
        for _ in range(4):
            state = byte_table[state & 0xFF] ^ (state >> 8)
        halves.append(state)
    return halves[0], halves[1]


_BYTE_TABLE = _byte_table()
_LOW_HALF_TABLE, _HIGH_HALF_TABLE = _word_half_tables(_BYTE_TABLE)


def crc32c(data: bytes) -> int:
    """CRC-32C of one (short) byte string; pure Python, for headers and checks."""
    state = _UINT32
    for byte in data:
        state = int(_BYTE_TABLE[(state ^ byte) & 0xFF]) ^ (state >> 8)
    return state ^ _UINT32


def crc32c_batch(records: Sequence[bytes]) -> np.ndarray:
    """uint32 [len(records)]: the CRC-32C of every record, computed column by column across the batch.

    Records are sorted by length (longest first) and stacked into a zero-padded matrix of 4-byte words, so the
    records still running at word w are always a prefix of the rows; the last 0-3 bytes of each go bytewise.
    """
    count = len(records)
    if count == 0:
        return np.zeros(0, dtype=np.uint32)
    lengths = np.fromiter(map(len, records), dtype=np.int64, count=count)
    order = np.argsort(-lengths, kind="stable")
    sorted_lengths = lengths[order]
    row_bytes = (int(sorted_lengths[0]) + 3) // 4 * 4
    if row_bytes == 0:
        return np.zeros(count, dtype=np.uint32)  # CRC-32C of empty records
    matrix = b"".join([records[i].ljust(row_bytes, b"\0") for i in order.tolist()])
    words = np.frombuffer(matrix, dtype="<u4").reshape(count, row_bytes // 4).T.copy()  # [words, records]
    full_words = sorted_lengths // 4
    running = np.searchsorted(-full_words, -np.arange(row_bytes // 4), side="left")  # rows with > w words
    state = np.full(count, _UINT32, dtype=np.uint32)
    for word_index, rows in enumerate(running.tolist()):
        if rows == 0:
            break
        mixed = state[:rows] ^ words[word_index, :rows]
        state[:rows] = _LOW_HALF_TABLE[mixed & 0xFFFF] ^ _HIGH_HALF_TABLE[mixed >> 16]
    _crc_tail_bytes(state, np.frombuffer(matrix, dtype=np.uint8).reshape(count, row_bytes), sorted_lengths)
    result = np.empty(count, dtype=np.uint32)
    result[order] = state ^ np.uint32(_UINT32)
    return result


def _crc_tail_bytes(state: np.ndarray, byte_rows: np.ndarray, lengths: np.ndarray) -> None:
    """Folds the 0-3 bytes after each record's last full word into `state`, in place."""
    tail_start = lengths // 4 * 4
    for offset in range(3):
        rows = np.nonzero(lengths - tail_start > offset)[0]
        if rows.size == 0:
            return
        values = byte_rows[rows, tail_start[rows] + offset]
        current = state[rows]
        state[rows] = _BYTE_TABLE[(current ^ values) & 0xFF] ^ (current >> 8)


def masked_crc32c(crc: np.ndarray) -> np.ndarray:
    """The TFRecord format stores CRCs rotated right by 15 bits plus a constant (uint32 arithmetic)."""
    crc = crc.astype(np.uint64)
    rotated = ((crc >> 15) | (crc << 17)) & _UINT32
    return ((rotated + _CRC_MASK_DELTA) & _UINT32).astype(np.uint32)


@functools.lru_cache(maxsize=None)
def _length_header(length: int) -> bytes:
    """The 12 bytes before a record: uint64 length and the masked CRC of those 8 bytes."""
    encoded = struct.pack("<Q", length)
    return encoded + struct.pack("<I", int(masked_crc32c(np.array([crc32c(encoded)], dtype=np.uint32))[0]))


def frame_records(payloads: Sequence[bytes], chunk_size: int = 4096) -> List[bytes]:
    """Each payload as a complete TFRecord entry: header, payload and the payload's masked CRC.

    CRCs are computed `chunk_size` records at a time, which keeps the padded work matrix small.
    """
    framed = []
    for start in range(0, len(payloads), chunk_size):
        chunk = payloads[start:start + chunk_size]
        footers = masked_crc32c(crc32c_batch(chunk)).astype("<u4").tobytes()
        framed.extend(_length_header(len(payload)) + payload + footers[4 * i:4 * i + 4]
                      for i, payload in enumerate(chunk))
    return framed


# ----------------------------------------------------------------------------------------------------------------
# tf.train.Example encoding
# ----------------------------------------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    """Protocol-buffer base-128 varint of a non-negative integer."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _length_delimited(field_tag: int, payload: bytes) -> bytes:
    return bytes((field_tag,)) + _varint(len(payload)) + payload


# Wire tags (field number << 3 | 2, length-delimited) of the messages in tensorflow/core/example/*.proto.
_TAG_FEATURES = 0x0A        # Example.features, Features.feature (map entry), Int64List/FloatList.value (packed)
_TAG_MAP_KEY = 0x0A
_TAG_MAP_VALUE = 0x12
_TAG_FLOAT_LIST = 0x12      # Feature.float_list
_TAG_INT64_LIST = 0x1A      # Feature.int64_list


def _feature_entry(name: str, feature: bytes) -> bytes:
    """One `Features.feature` map entry: key `name`, value the encoded `Feature`."""
    entry = _length_delimited(_TAG_MAP_KEY, name.encode("utf-8")) + _length_delimited(_TAG_MAP_VALUE, feature)
    return _length_delimited(_TAG_FEATURES, entry)


def _int64_feature(packed_varints: bytes) -> bytes:
    return _length_delimited(_TAG_INT64_LIST, _length_delimited(_TAG_FEATURES, packed_varints))


def _float_feature(values: Sequence[float]) -> bytes:
    packed = struct.pack(f"<{len(values)}f", *values)
    return _length_delimited(_TAG_FLOAT_LIST, _length_delimited(_TAG_FEATURES, packed))


class ExampleEncoder:
    """Serialises pre-training instances as `tf.train.Example` bytes with the original's seven features.

    Padding is applied here (ids, mask and segment ids with 0 up to max_seq_length; positions, ids and weights
    with 0 up to max_predictions_per_seq), as in the original's writer. Everything around the packed values of a
    feature depends only on the feature and the packed length, so those prefixes are encoded once and cached.
    """

    def __init__(self, max_seq_length: int, max_predictions_per_seq: int, max_id: int):
        self.max_seq_length = max_seq_length
        self.max_predictions_per_seq = max_predictions_per_seq
        self._varints = [_varint(value) for value in range(max(max_id, max_seq_length) + 1)]
        self._prefixes = {}
        length, predictions = max_seq_length, max_predictions_per_seq
        self._mask_entries = [self._int_entry("input_mask", b"\1" * n + b"\0" * (length - n))
                              for n in range(length + 1)]
        self._weights_entries = [
            _feature_entry("masked_lm_weights", _float_feature([1.0] * n + [0.0] * (predictions - n)))
            for n in range(predictions + 1)]
        self._label_entries = [self._int_entry("next_sentence_labels", _varint(label)) for label in (0, 1)]

    def encode(self, input_ids: Sequence[int], segment_ids: Sequence[int], masked_lm_positions: Sequence[int],
               masked_lm_ids: Sequence[int], next_sentence_label: int) -> bytes:
        """The serialized Example; sequences are unpadded and must fit their maximum lengths."""
        num_tokens, num_predictions = len(input_ids), len(masked_lm_positions)
        if num_tokens > self.max_seq_length or num_predictions > self.max_predictions_per_seq:
            raise ValueError(f"instance of {num_tokens} tokens / {num_predictions} predictions exceeds "
                             f"max_seq_length={self.max_seq_length} / "
                             f"max_predictions_per_seq={self.max_predictions_per_seq}")
        varint = self._varints.__getitem__
        token_padding = b"\0" * (self.max_seq_length - num_tokens)
        prediction_padding = b"\0" * (self.max_predictions_per_seq - num_predictions)
        # Segment ids are 0/1, a one-byte varint each; positions are one byte while below 128.
        positions = (bytes(masked_lm_positions) if self.max_seq_length <= 128
                     else b"".join(map(varint, masked_lm_positions)))
        # The order protobuf (upb) serialises the original's feature map in, so files come out byte-identical.
        entries = (
            self._int_entry("masked_lm_ids", b"".join(map(varint, masked_lm_ids)) + prediction_padding),
            self._int_entry("input_ids", b"".join(map(varint, input_ids)) + token_padding),
            self._int_entry("masked_lm_positions", positions + prediction_padding),
            self._label_entries[next_sentence_label],
            self._mask_entries[num_tokens],
            self._weights_entries[num_predictions],
            self._int_entry("segment_ids", bytes(segment_ids) + token_padding),
        )
        body = b"".join(entries)
        return self._length_prefix(_TAG_FEATURES, len(body)) + body

    def _int_entry(self, name: str, packed_varints: bytes) -> bytes:
        key = (name, len(packed_varints))
        prefix = self._prefixes.get(key)
        if prefix is None:
            prefix = _feature_entry(name, _int64_feature(packed_varints))[:-len(packed_varints) or None]
            self._prefixes[key] = prefix
        return prefix + packed_varints

    def _length_prefix(self, tag: int, length: int) -> bytes:
        key = (tag, length)
        prefix = self._prefixes.get(key)
        if prefix is None:
            prefix = bytes((tag,)) + _varint(length)
            self._prefixes[key] = prefix
        return prefix


# ----------------------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------------------


class RoundRobinRecordWriter:
    """Writes TFRecord entries to several files in turn (record i goes to file i mod n), as the original did.

    `write` takes serialized Examples and frames them in batches (the CRC is vectorised); `write_framed` takes
    entries already framed elsewhere (sharded mode frames them in the worker processes).
    """

    def __init__(self, output_files: Sequence[str], batch_size: int = 8192):
        if not output_files:
            raise ValueError("at least one output file is needed")
        self.output_files = list(output_files)
        self.num_written = 0
        self._batch_size = batch_size
        self._pending: List[bytes] = []
        self._files = []
        try:
            for path in self.output_files:
                self._files.append(ReplacingFile(path, "wb"))
        except BaseException:
            self._abandon_files()
            raise

    def write(self, payload: bytes) -> None:
        self._pending.append(payload)
        if len(self._pending) >= self._batch_size:
            self._flush()

    def write_framed(self, entries: Sequence[bytes]) -> None:
        self._flush()
        files = [output.file for output in self._files]
        first = self.num_written
        for offset, entry in enumerate(entries):
            files[(first + offset) % len(files)].write(entry)
        self.num_written += len(entries)

    def _flush(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, []
            self.write_framed(frame_records(pending))

    def _abandon_files(self) -> None:
        for output in self._files:
            output.abandon()
        self._files = []

    def close(self) -> None:
        """Completes the files: only now do they appear under their names (each written as a ReplacingFile)."""
        try:
            self._flush()
        except BaseException:
            self._abandon_files()
            raise
        for output in self._files:
            output.commit()
        self._files = []

    def __enter__(self) -> "RoundRobinRecordWriter":
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abandon_files()
