"""Converts a Hugging Face BERT directory into the checkpoint layout of the original BERT release.

Input: `config.json`, `model.safetensors`, `vocab.txt` (as written by `save_pretrained`).
Output: `bert_model.ckpt.index` + `bert_model.ckpt.data-00000-of-00001`, `bert_config.json`, `vocab.txt`, with
variables named as the original `modeling.BertModel` (and pre-training heads) creates them, e.g.
`bert/encoder/layer_0/attention/self/query/kernel`. Values are copied bit for bit (half precision is widened
to float32 exactly); dense kernels are transposed from PyTorch's [out, in] to TensorFlow's [in, out].
"""

import dataclasses
import glob
import json
import math
import os
import shutil
import struct
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow.compat.v1 as tf
from absl import logging

from bert import modeling
from bert.common import file_io
from bert.common.errors import UserError, UserFileNotFoundError

HF_CONFIG_FILE = "config.json"
HF_WEIGHTS_FILE = "model.safetensors"
VOCAB_FILE = "vocab.txt"
BERT_CONFIG_FILE = "bert_config.json"
CHECKPOINT_PREFIX = "bert_model.ckpt"

# ---------------------------------------------------------------------------------------------------------------
# safetensors
# ---------------------------------------------------------------------------------------------------------------

# Storage dtype of each supported safetensors dtype; BF16 is read as raw 16-bit words (numpy has no bfloat16).
_SAFETENSORS_DTYPES = {
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"),
}
_HEADER_LENGTH_BYTES = 8


def read_safetensors(path: str) -> Dict[str, np.ndarray]:
    """Reads every tensor of a safetensors file with numpy alone.

    F32 tensors are read-only views of a memory map of the file; F16 and BF16 tensors are widened to float32
    (exactly); I64 tensors come back as int64 views.

    Raises:
      ValueError: the file is not valid safetensors or holds a dtype other than F32, F16, BF16, I64.
    """
    header, data_start = _read_safetensors_header(path)
    data_size = os.path.getsize(path) - data_start
    if data_size > 0:
        data = np.memmap(path, dtype=np.uint8, mode="r", offset=data_start, shape=(data_size,))
    else:
        data = np.zeros((0,), dtype=np.uint8)
    return {name: _decode_tensor(path, name, entry, data)
            for name, entry in header.items() if name != "__metadata__"}


def _read_safetensors_header(path: str) -> Tuple[dict, int]:
    """The JSON header of a safetensors file and the byte offset at which tensor data starts."""
    file_size = os.path.getsize(path)
    with open(path, "rb") as f:
        length_bytes = f.read(_HEADER_LENGTH_BYTES)
        if len(length_bytes) < _HEADER_LENGTH_BYTES:
            raise UserError(f"{path}: not a safetensors file (only {file_size} bytes)")
        (header_length,) = struct.unpack("<Q", length_bytes)
        if header_length > file_size - _HEADER_LENGTH_BYTES:
            raise UserError(f"{path}: not a safetensors file (header length {header_length} exceeds the file "
                             f"size {file_size})")
        header_bytes = f.read(header_length)
    try:
        header = json.loads(header_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path}: not a safetensors file (header is not JSON: {error})") from None
    if not isinstance(header, dict):
        raise UserError(f"{path}: not a safetensors file (header is not a JSON object)")
    return header, _HEADER_LENGTH_BYTES + header_length


def _decode_tensor(path: str, name: str, entry: Mapping, data: np.ndarray) -> np.ndarray:
    """One tensor of the data section, described by its header `entry` (dtype, shape, data_offsets)."""
    try:
        dtype_name, shape, (begin, end) = entry["dtype"], [int(d) for d in entry["shape"]], entry["data_offsets"]
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{path}: malformed header entry for tensor {name!r}: {entry!r}") from None
    if dtype_name not in _SAFETENSORS_DTYPES:
        raise UserError(f"{path}: tensor {name!r} has unsupported dtype {dtype_name} "
                         f"(supported: {', '.join(_SAFETENSORS_DTYPES)})")
    dtype = _SAFETENSORS_DTYPES[dtype_name]
    expected_bytes = math.prod(shape) * dtype.itemsize
    if not 0 <= begin <= end <= data.size or end - begin != expected_bytes:
        raise UserError(f"{path}: tensor {name!r} has data_offsets [{begin}, {end}] inconsistent with shape "
                         f"{shape}, dtype {dtype_name} and a data section of {data.size} bytes")
    values = data[begin:end].view(dtype).reshape(shape)
    if dtype_name == "F16":
        return values.astype(np.float32)
    if dtype_name == "BF16":
        # bfloat16 is the upper half of a float32: shift the 16 bits into place.
        return (values.astype(np.uint32) << 16).view(np.float32)
    return values


# ---------------------------------------------------------------------------------------------------------------
# config.json -> bert_config.json
# ---------------------------------------------------------------------------------------------------------------

# The keys of the original BertConfig, all of which a HF BERT config.json also carries.
BERT_CONFIG_KEYS = (
    "attention_probs_dropout_prob",
    "hidden_act",
    "hidden_dropout_prob",
    "hidden_size",
    "initializer_range",
    "intermediate_size",
    "max_position_embeddings",
    "num_attention_heads",
    "num_hidden_layers",
    "type_vocab_size",
    "vocab_size",
)
# HF settings that change the architecture: a config may omit them, but if present they must have these values.
_REQUIRED_HF_SETTINGS = {
    "model_type": "bert",
    "position_embedding_type": "absolute",
    "is_decoder": False,
    "add_cross_attention": False,
}
# The original's layer norm has this epsilon built in.
_LAYER_NORM_EPS = 1e-12
# HF activation name -> original activation name. The original's "gelu" is the tanh approximation (HF
# "gelu_new"); HF "gelu" is the exact erf form, and the two are conventionally treated as the same activation
# when moving BERT checkpoints between the two code bases.
_HIDDEN_ACTS = {
    "gelu": "gelu",
    "gelu_new": "gelu",
    "gelu_pytorch_tanh": "gelu",
    "relu": "relu",
    "tanh": "tanh",
    "linear": "linear",
}


def bert_config_from_hf(hf_config: Mapping) -> Dict:
    """The original-format config (the BertConfig fields) of a HF BERT `config.json` dictionary.

    Raises:
      ValueError: the config describes a model the original BertModel cannot run (naming the setting), or
        lacks one of the BertConfig fields.
    """
    _check_supported_architecture(hf_config)
    missing = [key for key in BERT_CONFIG_KEYS if key not in hf_config]
    if missing:
        raise UserError(f"config.json lacks the BERT settings: {', '.join(missing)}")
    config = {key: hf_config[key] for key in BERT_CONFIG_KEYS}
    activation = str(config["hidden_act"]).lower()
    if activation not in _HIDDEN_ACTS:
        raise UserError(f"unsupported setting hidden_act={config['hidden_act']!r} "
                         f"(supported: {', '.join(_HIDDEN_ACTS)})")
    config["hidden_act"] = _HIDDEN_ACTS[activation]
    return config


def _check_supported_architecture(hf_config: Mapping) -> None:
    """Raises ValueError naming the first setting that the original BertModel does not implement."""
    for key, required in _REQUIRED_HF_SETTINGS.items():
        if key in hf_config and hf_config[key] != required:
            raise UserError(f"unsupported setting {key}={hf_config[key]!r} (only {required!r} is supported)")
    architectures = hf_config.get("architectures") or []
    not_bert = [name for name in architectures if not str(name).startswith("Bert")]
    if not_bert:
        raise UserError(f"unsupported setting architectures={architectures!r} (only BERT models, Bert*)")
    eps = hf_config.get("layer_norm_eps", _LAYER_NORM_EPS)
    if not isinstance(eps, (int, float)) or not math.isclose(eps, _LAYER_NORM_EPS, rel_tol=1e-6, abs_tol=0.0):
        raise UserError(f"unsupported setting layer_norm_eps={eps!r} (the original BERT uses {_LAYER_NORM_EPS})")


# ---------------------------------------------------------------------------------------------------------------
# HF tensor names -> original variable names
# ---------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _VariableSource:
    """Where one original variable comes from: HF tensor name(s) to try in order, and how to reshape."""
    variable: str                 # original name, e.g. "bert/pooler/dense/kernel"
    hf_names: Tuple[str, ...]     # alternatives; the first is the current HF name
    shape: Tuple[int, ...]        # shape of the original variable
    transpose: bool = False       # PyTorch Linear [out, in] -> TF dense kernel [in, out]

    @property
    def hf_shape(self) -> Tuple[int, ...]:
        return tuple(reversed(self.shape)) if self.transpose else self.shape


def _dense(variable_scope: str, hf_scope: str, in_size: int, out_size: int) -> List[_VariableSource]:
    return [_VariableSource(f"{variable_scope}/kernel", (f"{hf_scope}.weight",), (in_size, out_size), True),
            _VariableSource(f"{variable_scope}/bias", (f"{hf_scope}.bias",), (out_size,))]


def _layer_norm(variable_scope: str, hf_scope: str, size: int) -> List[_VariableSource]:
    # Older exports name the parameters gamma/beta, like TensorFlow.
    return [_VariableSource(f"{variable_scope}/gamma", (f"{hf_scope}.weight", f"{hf_scope}.gamma"), (size,)),
            _VariableSource(f"{variable_scope}/beta", (f"{hf_scope}.bias", f"{hf_scope}.beta"), (size,))]


def _encoder_sources(config: Mapping, hf_prefix: str) -> List[_VariableSource]:
    """The variables of the original BertModel; HF names carry `hf_prefix` ("bert." or "")."""
    hidden, intermediate = config["hidden_size"], config["intermediate_size"]
    p = hf_prefix
    sources = [
        _VariableSource("bert/embeddings/word_embeddings", (f"{p}embeddings.word_embeddings.weight",),
                        (config["vocab_size"], hidden)),
        _VariableSource("bert/embeddings/token_type_embeddings", (f"{p}embeddings.token_type_embeddings.weight",),
                        (config["type_vocab_size"], hidden)),
        _VariableSource("bert/embeddings/position_embeddings", (f"{p}embeddings.position_embeddings.weight",),
                        (config["max_position_embeddings"], hidden)),
        *_layer_norm("bert/embeddings/LayerNorm", f"{p}embeddings.LayerNorm", hidden),
    ]
    for index in range(config["num_hidden_layers"]):
        scope, hf_scope = f"bert/encoder/layer_{index}", f"{p}encoder.layer.{index}"
        for projection in ("query", "key", "value"):
            sources += _dense(f"{scope}/attention/self/{projection}", f"{hf_scope}.attention.self.{projection}",
                              hidden, hidden)
        sources += _dense(f"{scope}/attention/output/dense", f"{hf_scope}.attention.output.dense", hidden, hidden)
        sources += _layer_norm(f"{scope}/attention/output/LayerNorm", f"{hf_scope}.attention.output.LayerNorm",
                               hidden)
        sources += _dense(f"{scope}/intermediate/dense", f"{hf_scope}.intermediate.dense", hidden, intermediate)
        sources += _dense(f"{scope}/output/dense", f"{hf_scope}.output.dense", intermediate, hidden)
        sources += _layer_norm(f"{scope}/output/LayerNorm", f"{hf_scope}.output.LayerNorm", hidden)
    sources += _dense("bert/pooler/dense", f"{p}pooler.dense", hidden, hidden)
    return sources


def _masked_lm_head_sources(config: Mapping) -> List[_VariableSource]:
    """The masked-LM head of the original pre-training model (its output matrix is the word embeddings)."""
    hidden = config["hidden_size"]
    return [
        *_dense("cls/predictions/transform/dense", "cls.predictions.transform.dense", hidden, hidden),
        *_layer_norm("cls/predictions/transform/LayerNorm", "cls.predictions.transform.LayerNorm", hidden),
        _VariableSource("cls/predictions/output_bias", ("cls.predictions.bias", "cls.predictions.decoder.bias"),
                        (config["vocab_size"],)),
    ]


def _next_sentence_head_sources(config: Mapping) -> List[_VariableSource]:
    """The next-sentence head; the original keeps its weights as [2, hidden], the same layout as PyTorch."""
    return [
        _VariableSource("cls/seq_relationship/output_weights", ("cls.seq_relationship.weight",),
                        (2, config["hidden_size"])),
        _VariableSource("cls/seq_relationship/output_bias", ("cls.seq_relationship.bias",), (2,)),
    ]


# Tensors a HF export may hold that the original has no use for: index buffers, and decoder parameters tied
# to the word embeddings and to cls.predictions.bias.
_IGNORED_HF_SUFFIXES = ("embeddings.position_ids", "embeddings.token_type_ids", "cls.predictions.decoder.weight",
                        "cls.predictions.decoder.bias")


def map_hf_tensors(tensors: Mapping[str, np.ndarray], config: Mapping) -> Dict[str, np.ndarray]:
    """Original variable name -> float32 value, for the BERT encoder and any pre-training heads in `tensors`.

    HF names may carry the `bert.` prefix of the task models (BertForPreTraining etc.) or not (BertModel).
    The pre-training heads are converted when any of their tensors is present.

    Raises:
      ValueError: listing every missing tensor, or every tensor whose shape does not match `config`.
    """
    hf_prefix = "bert." if any(name.startswith("bert.") for name in tensors) else ""
    sources = _encoder_sources(config, hf_prefix)
    for head in (_masked_lm_head_sources(config), _next_sentence_head_sources(config)):
        if any(hf_name in tensors for source in head for hf_name in source.hf_names):
            sources += head

    found = {source: _first_present(tensors, source.hf_names) for source in sources}
    missing = [source.hf_names[0] for source, hf_name in found.items() if hf_name is None]
    if missing:
        raise UserError(f"the HF weights lack {len(missing)} tensor(s) of the BERT model: {', '.join(missing)}")
    _check_shapes_and_dtypes(tensors, found)
    _warn_about_unused(tensors, set(found.values()))
    return {source.variable: _to_variable_value(tensors[hf_name], source.transpose)
            for source, hf_name in found.items()}


def _first_present(tensors: Mapping[str, np.ndarray], hf_names: Sequence[str]) -> Optional[str]:
    return next((name for name in hf_names if name in tensors), None)


def _check_shapes_and_dtypes(tensors: Mapping[str, np.ndarray], found: Mapping[_VariableSource, str]) -> None:
    """Raises ValueError listing each tensor whose shape disagrees with the config or which is not floating."""
    problems = []
    for source, hf_name in found.items():
        value = tensors[hf_name]
        if tuple(value.shape) != source.hf_shape:
            problems.append(f"{hf_name} has shape {list(value.shape)}, the config implies {list(source.hf_shape)}")
        elif not np.issubdtype(value.dtype, np.floating):
            problems.append(f"{hf_name} has dtype {value.dtype}, expected floating point")
    if problems:
        raise UserError("the HF weights do not fit config.json: " + "; ".join(problems))


def _warn_about_unused(tensors: Mapping[str, np.ndarray], used: set) -> None:
    unused = sorted(name for name in tensors if name not in used and not name.endswith(_IGNORED_HF_SUFFIXES))
    if unused:
        logging.warning("Ignoring %d HF tensor(s) the original BERT has no variable for: %s",
                        len(unused), ", ".join(unused))


def _to_variable_value(value: np.ndarray, transpose: bool) -> np.ndarray:
    value = value.astype(np.float32, copy=False)
    return np.ascontiguousarray(value.T) if transpose else value


# ---------------------------------------------------------------------------------------------------------------
# Writing the checkpoint
# ---------------------------------------------------------------------------------------------------------------


def write_checkpoint(variables: Mapping[str, np.ndarray], checkpoint_prefix: str) -> None:
    """Writes a TF checkpoint (`<prefix>.index`, `<prefix>.data-00000-of-00001`) holding exactly `variables`.

    Uses the SaveV2 op directly, so names are stored verbatim (no `:0` or object-graph suffixes) and the values
    are fed at run time rather than embedded in a graph (no 2 GB graph limit).
    """
    names = sorted(variables)
    with tf.Graph().as_default() as graph:
        placeholders = [tf.placeholder(tf.as_dtype(variables[name].dtype), shape=variables[name].shape)
                        for name in names]
        save_op = tf.raw_ops.SaveV2(prefix=checkpoint_prefix, tensor_names=names,
                                    shape_and_slices=[""] * len(names), tensors=placeholders)
    with tf.Session(graph=graph) as sess:
        sess.run(save_op, feed_dict={placeholder: variables[name] for placeholder, name in zip(placeholders, names)})


# ---------------------------------------------------------------------------------------------------------------
# Directories
# ---------------------------------------------------------------------------------------------------------------


def convert_hf_checkpoint(input_dir: str, output_dir: str, overwrite: bool = False) -> str:
    """Converts the HF BERT model in `input_dir` into an original-format checkpoint directory `output_dir`.

    Everything is validated before anything is written. Files already in `output_dir` that the conversion
    would replace are left alone unless `overwrite` is True.

    Returns:
      The checkpoint prefix `<output_dir>/bert_model.ckpt`, the value the original scripts take as
      `--init_checkpoint`.

    Raises:
      UserError (a ValueError; UserFileNotFoundError, also a FileNotFoundError, when `input_dir` or one of its
        three files is missing): `output_dir` already holds a checkpoint, config or vocab and `overwrite` is
        False; unsupported model settings, missing or misshapen tensors, a vocab larger than vocab_size.
    """
    config_path, weights_path, vocab_path = _input_files(input_dir)
    _check_output_dir(input_dir, output_dir, overwrite)

    bert_config = bert_config_from_hf(file_io.read_json_object(config_path, "HF config"))
    with open(vocab_path, encoding="utf-8", errors="replace") as reader:
        modeling.check_vocab_fits(modeling.BertConfig(bert_config["vocab_size"]), sum(1 for _ in reader), vocab_path)
    variables = map_hf_tensors(read_safetensors(weights_path), bert_config)

    os.makedirs(output_dir, exist_ok=True)
    checkpoint_prefix = os.path.join(output_dir, CHECKPOINT_PREFIX)
    for stale_file in glob.glob(glob.escape(checkpoint_prefix) + ".*"):
        os.remove(stale_file)  # only reached with overwrite=True; a stale .meta or shard must not linger
    write_checkpoint(variables, checkpoint_prefix)
    with open(os.path.join(output_dir, BERT_CONFIG_FILE), "w", encoding="utf-8") as f:
        json.dump(bert_config, f, indent=2, sort_keys=True)
        f.write("\n")
    shutil.copyfile(vocab_path, os.path.join(output_dir, VOCAB_FILE))
    logging.info("Wrote %d variables to %s", len(variables), checkpoint_prefix)
    return checkpoint_prefix


def output_files(output_dir: str) -> List[str]:
    """The files of a converted checkpoint directory that exist, sorted."""
    candidates = glob.glob(glob.escape(os.path.join(output_dir, CHECKPOINT_PREFIX)) + ".*")
    candidates += [os.path.join(output_dir, name) for name in (BERT_CONFIG_FILE, VOCAB_FILE)]
    return sorted(path for path in candidates if os.path.isfile(path))


def _input_files(input_dir: str) -> Tuple[str, str, str]:
    """Paths of config.json, model.safetensors and vocab.txt in `input_dir`; FileNotFoundError naming any missing."""
    if not os.path.isdir(input_dir):
        raise UserFileNotFoundError(f"HF model directory not found: {input_dir}")
    paths = tuple(os.path.join(input_dir, name) for name in (HF_CONFIG_FILE, HF_WEIGHTS_FILE, VOCAB_FILE))
    missing = [path for path in paths if not os.path.isfile(path)]
    if missing:
        raise UserFileNotFoundError(f"HF model directory lacks: {', '.join(missing)}")
    return paths


def _check_output_dir(input_dir: str, output_dir: str, overwrite: bool) -> None:
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise UserError(f"output_dir is not a directory: {output_dir}")
    if os.path.realpath(output_dir) == os.path.realpath(input_dir):
        raise UserError(f"output_dir must differ from input_dir: {output_dir}")
    existing = output_files(output_dir)
    if existing and not overwrite:
        raise UserError(f"output_dir already holds a converted checkpoint ({', '.join(existing)}); "
                              "pass overwrite=True (--overwrite) to replace it")
