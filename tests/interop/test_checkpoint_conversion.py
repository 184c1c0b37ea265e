"""Tests of bert.interop.hf_checkpoint: the real MiniLM, tiny synthetic HF directories, every input error."""

import json
import os
import re
import struct
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from bert.common.errors import UserError
from bert.interop import hf_checkpoint as checkpoint_conversion
from helpers import REPO_ROOT, shared_path

# ---------------------------------------------------------------------------------------------------------------
# A tiny safetensors writer/reader, independent of the code under test
# ---------------------------------------------------------------------------------------------------------------

_STORAGE = {"F32": "<f4", "F16": "<f2", "I64": "<i8"}


def _encode(dtype_name, array):
    if dtype_name == "BF16":  # values must be exactly representable: keep the upper 16 bits of the float32
        return (np.asarray(array, np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
    return np.asarray(array).astype(_STORAGE[dtype_name]).tobytes()


def write_safetensors(path, tensors, dtypes=None):
    """Writes {name: array} as safetensors; `dtypes` maps names to F16/BF16/I64 (default F32)."""
    dtypes = dtypes or {}
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, array in tensors.items():
        dtype_name = dtypes.get(name, "I64" if np.issubdtype(np.asarray(array).dtype, np.integer) else "F32")
        blob = _encode(dtype_name, array)
        header[name] = {"dtype": dtype_name, "shape": list(np.shape(array)),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    header_bytes = json.dumps(header).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)) + header_bytes + b"".join(blobs))


def _read_f32_safetensors(path):
    """{name: float32 array} of an all-F32 safetensors file (I64 buffers skipped)."""
    with open(path, "rb") as f:
        raw = f.read()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + length])
    data = raw[8 + length:]
    return {name: np.frombuffer(data[e["data_offsets"][0]:e["data_offsets"][1]], "<f4").reshape(e["shape"])
            for name, e in header.items() if name != "__metadata__" and e["dtype"] == "F32"}


def _hf_name(variable):
    """Independent spelling of the HF name of an original encoder variable (plain BertModel, no prefix)."""
    name = variable[len("bert/"):]
    name = re.sub(r"layer_(\d+)", r"layer.\1", name).replace("/", ".")
    name = re.sub(r"\.(kernel|gamma)$", ".weight", name)
    name = re.sub(r"\.beta$", ".bias", name)
    return name if name.endswith((".weight", ".bias")) else name + ".weight"


def _bit_equal(a, b):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


# ---------------------------------------------------------------------------------------------------------------
# The real MiniLM (6 layers, hidden 384)
# ---------------------------------------------------------------------------------------------------------------


def test_minilm_variables_match_original_model(minilm_checkpoint):
    golden = json.load(open(shared_path("golden", "minilm_model_vars.json")))
    expected = {name[:-len(":0")]: shape for name, shape in golden}
    reader = tf.train.load_checkpoint(os.path.join(minilm_checkpoint, "bert_model.ckpt"))
    assert reader.get_variable_to_shape_map() == expected
    assert len(expected) == 5 + 6 * 16 + 2


def test_minilm_values_are_bit_identical(minilm_hf_dir, minilm_checkpoint):
    source = _read_f32_safetensors(os.path.join(minilm_hf_dir, "model.safetensors"))
    reader = tf.train.load_checkpoint(os.path.join(minilm_checkpoint, "bert_model.ckpt"))
    for variable in reader.get_variable_to_shape_map():
        expected = source[_hf_name(variable)]
        if variable.endswith("/kernel"):
            expected = expected.T
        assert _bit_equal(reader.get_tensor(variable), expected), variable
    # Spot-check the transpose direction on a non-square kernel: [out=1536, in=384] -> [384, 1536].
    kernel = reader.get_tensor("bert/encoder/layer_0/intermediate/dense/kernel")
    assert kernel.shape == (384, 1536)
    assert kernel[5, 7] == source["encoder.layer.0.intermediate.dense.weight"][7, 5]


def test_minilm_config_and_vocab(minilm_hf_dir, minilm_checkpoint):
    hf_config = json.load(open(os.path.join(minilm_hf_dir, "config.json")))
    bert_config = json.load(open(os.path.join(minilm_checkpoint, "bert_config.json")))
    assert bert_config == {key: hf_config[key] for key in checkpoint_conversion.BERT_CONFIG_KEYS}
    assert bert_config["num_hidden_layers"] == 6 and bert_config["hidden_size"] == 384
    with open(os.path.join(minilm_hf_dir, "vocab.txt"), "rb") as a, \
            open(os.path.join(minilm_checkpoint, "vocab.txt"), "rb") as b:
        assert a.read() == b.read()
    assert sorted(os.listdir(minilm_checkpoint)) == [
        "bert_config.json", "bert_model.ckpt.data-00000-of-00001", "bert_model.ckpt.index", "vocab.txt"]


# ---------------------------------------------------------------------------------------------------------------
# Tiny synthetic HF directories
# ---------------------------------------------------------------------------------------------------------------

HIDDEN, INTERMEDIATE, VOCAB, POSITIONS, TYPES, LAYERS = 8, 12, 20, 16, 2, 2


def _hf_config(**overrides):
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": HIDDEN, "initializer_range": 0.02,
        "intermediate_size": INTERMEDIATE, "layer_norm_eps": 1e-12, "max_position_embeddings": POSITIONS,
        "num_attention_heads": 2, "num_hidden_layers": LAYERS, "pad_token_id": 0,
        "position_embedding_type": "absolute", "type_vocab_size": TYPES, "vocab_size": VOCAB,
    }
    config.update(overrides)
    return config


def _hf_tensors(prefix="", heads=False, old_layer_norm_names=False, seed=0):
    """Random HF-layout tensors of the tiny model (plus a position_ids buffer)."""
    rng = np.random.RandomState(seed)
    tensors = {}

    def add(name, *shape):
        tensors[name] = rng.standard_normal(shape).astype(np.float32)

    def dense(scope, out_size, in_size):
        add(f"{scope}.weight", out_size, in_size)
        add(f"{scope}.bias", out_size)

    def layer_norm(scope):
        weight, bias = ("gamma", "beta") if old_layer_norm_names else ("weight", "bias")
        add(f"{scope}.{weight}", HIDDEN)
        add(f"{scope}.{bias}", HIDDEN)

    p = prefix
    tensors[f"{p}embeddings.position_ids"] = np.arange(POSITIONS, dtype=np.int64)[None]
    add(f"{p}embeddings.word_embeddings.weight", VOCAB, HIDDEN)
    add(f"{p}embeddings.position_embeddings.weight", POSITIONS, HIDDEN)
    add(f"{p}embeddings.token_type_embeddings.weight", TYPES, HIDDEN)
    layer_norm(f"{p}embeddings.LayerNorm")
    for i in range(LAYERS):
        layer = f"{p}encoder.layer.{i}"
        for projection in ("query", "key", "value"):
            dense(f"{layer}.attention.self.{projection}", HIDDEN, HIDDEN)
        dense(f"{layer}.attention.output.dense", HIDDEN, HIDDEN)
        layer_norm(f"{layer}.attention.output.LayerNorm")
        dense(f"{layer}.intermediate.dense", INTERMEDIATE, HIDDEN)
        dense(f"{layer}.output.dense", HIDDEN, INTERMEDIATE)
        layer_norm(f"{layer}.output.LayerNorm")
    dense(f"{p}pooler.dense", HIDDEN, HIDDEN)
    if heads:
        dense("cls.predictions.transform.dense", HIDDEN, HIDDEN)
        layer_norm("cls.predictions.transform.LayerNorm")
        add("cls.predictions.bias", VOCAB)
        tensors["cls.predictions.decoder.weight"] = tensors[f"{p}embeddings.word_embeddings.weight"]
        tensors["cls.predictions.decoder.bias"] = tensors["cls.predictions.bias"]
        dense("cls.seq_relationship", 2, HIDDEN)
    return tensors


def _make_hf_dir(path, config=None, tensors=None, vocab_size=VOCAB, dtypes=None):
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config or _hf_config(), f)
    write_safetensors(os.path.join(path, "model.safetensors"), _hf_tensors() if tensors is None else tensors, dtypes)
    with open(os.path.join(path, "vocab.txt"), "w") as f:
        f.write("".join(f"tok{i}\n" for i in range(vocab_size)))
    return str(path)


def _expected_encoder_shapes():
    shapes = {
        "bert/embeddings/word_embeddings": [VOCAB, HIDDEN],
        "bert/embeddings/position_embeddings": [POSITIONS, HIDDEN],
        "bert/embeddings/token_type_embeddings": [TYPES, HIDDEN],
        "bert/embeddings/LayerNorm/gamma": [HIDDEN], "bert/embeddings/LayerNorm/beta": [HIDDEN],
        "bert/pooler/dense/kernel": [HIDDEN, HIDDEN], "bert/pooler/dense/bias": [HIDDEN],
    }
    for i in range(LAYERS):
        layer = f"bert/encoder/layer_{i}"
        for scope, in_size, out_size in [("attention/self/query", HIDDEN, HIDDEN),
                                         ("attention/self/key", HIDDEN, HIDDEN),
                                         ("attention/self/value", HIDDEN, HIDDEN),
                                         ("attention/output/dense", HIDDEN, HIDDEN),
                                         ("intermediate/dense", HIDDEN, INTERMEDIATE),
                                         ("output/dense", INTERMEDIATE, HIDDEN)]:
            shapes[f"{layer}/{scope}/kernel"] = [in_size, out_size]
            shapes[f"{layer}/{scope}/bias"] = [out_size]
        for scope in ("attention/output/LayerNorm", "output/LayerNorm"):
            shapes[f"{layer}/{scope}/gamma"] = [HIDDEN]
            shapes[f"{layer}/{scope}/beta"] = [HIDDEN]
    return shapes


HEAD_SHAPES = {
    "cls/predictions/transform/dense/kernel": [HIDDEN, HIDDEN], "cls/predictions/transform/dense/bias": [HIDDEN],
    "cls/predictions/transform/LayerNorm/gamma": [HIDDEN], "cls/predictions/transform/LayerNorm/beta": [HIDDEN],
    "cls/predictions/output_bias": [VOCAB],
    "cls/seq_relationship/output_weights": [2, HIDDEN], "cls/seq_relationship/output_bias": [2],
}


def _convert(hf_dir, out_dir, **kwargs):
    prefix = checkpoint_conversion.convert_hf_checkpoint(hf_dir, str(out_dir), **kwargs)
    return prefix, tf.train.load_checkpoint(prefix)


@pytest.mark.parametrize("prefix,heads,old_names", [("", False, False), ("bert.", False, False),
                                                    ("bert.", True, False), ("", True, True)])
def test_synthetic_names_shapes_and_values(tmp_path, prefix, heads, old_names):
    tensors = _hf_tensors(prefix, heads, old_names)
    config = _hf_config(architectures=["BertForPreTraining" if heads else "BertModel"])
    hf_dir = _make_hf_dir(tmp_path / "hf", config, tensors)
    checkpoint_prefix, reader = _convert(hf_dir, tmp_path / "out")

    assert checkpoint_prefix == os.path.join(str(tmp_path / "out"), "bert_model.ckpt")
    expected_shapes = {**_expected_encoder_shapes(), **(HEAD_SHAPES if heads else {})}
    assert reader.get_variable_to_shape_map() == expected_shapes
    for variable in expected_shapes:
        assert reader.get_variable_to_dtype_map()[variable] == tf.float32
    p = prefix
    gamma = "gamma" if old_names else "weight"
    assert _bit_equal(reader.get_tensor("bert/encoder/layer_1/attention/self/query/kernel"),
                      tensors[f"{p}encoder.layer.1.attention.self.query.weight"].T)
    assert _bit_equal(reader.get_tensor("bert/encoder/layer_0/output/dense/kernel"),
                      tensors[f"{p}encoder.layer.0.output.dense.weight"].T)
    assert _bit_equal(reader.get_tensor("bert/encoder/layer_0/output/LayerNorm/gamma"),
                      tensors[f"{p}encoder.layer.0.output.LayerNorm.{gamma}"])
    assert _bit_equal(reader.get_tensor("bert/embeddings/word_embeddings"),
                      tensors[f"{p}embeddings.word_embeddings.weight"])
    assert _bit_equal(reader.get_tensor("bert/pooler/dense/bias"), tensors[f"{p}pooler.dense.bias"])
    if heads:
        # The original keeps the next-sentence weights as [2, hidden]: no transpose.
        assert _bit_equal(reader.get_tensor("cls/seq_relationship/output_weights"),
                          tensors["cls.seq_relationship.weight"])
        assert _bit_equal(reader.get_tensor("cls/predictions/output_bias"), tensors["cls.predictions.bias"])
        assert _bit_equal(reader.get_tensor("cls/predictions/transform/dense/kernel"),
                          tensors["cls.predictions.transform.dense.weight"].T)


def test_half_precision_is_widened_exactly(tmp_path):
    tensors = _hf_tensors()
    word = "embeddings.word_embeddings.weight"
    query = "encoder.layer.0.attention.self.query.weight"
    tensors[word] = tensors[word].astype(np.float16).astype(np.float32)
    tensors[query] = (tensors[query].view(np.uint32) & 0xFFFF0000).view(np.float32)  # bfloat16 values
    hf_dir = _make_hf_dir(tmp_path / "hf", tensors=tensors, dtypes={word: "F16", query: "BF16"})
    _, reader = _convert(hf_dir, tmp_path / "out")
    assert _bit_equal(reader.get_tensor("bert/embeddings/word_embeddings"), tensors[word])
    assert _bit_equal(reader.get_tensor("bert/encoder/layer_0/attention/self/query/kernel"), tensors[query].T)


def test_checkpoint_loads_through_init_from_checkpoint(tmp_path):
    tensors = _hf_tensors("bert.", heads=True)
    prefix, _ = _convert(_make_hf_dir(tmp_path / "hf", tensors=tensors), tmp_path / "out")
    with tf.Graph().as_default():
        word = tf.get_variable("bert/embeddings/word_embeddings", shape=[VOCAB, HIDDEN])
        nsp = tf.get_variable("cls/seq_relationship/output_weights", shape=[2, HIDDEN])
        names = ("bert/embeddings/word_embeddings", "cls/seq_relationship/output_weights")
        tf.train.init_from_checkpoint(prefix, {name: name for name in names})
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            assert _bit_equal(sess.run(word), tensors["bert.embeddings.word_embeddings.weight"])
            assert _bit_equal(sess.run(nsp), tensors["cls.seq_relationship.weight"])


@pytest.mark.parametrize("hf_act,original_act", [("gelu", "gelu"), ("gelu_new", "gelu"), ("relu", "relu"),
                                                 ("tanh", "tanh")])
def test_config_activation_mapping(tmp_path, hf_act, original_act):
    hf_dir = _make_hf_dir(tmp_path / "hf", _hf_config(hidden_act=hf_act, hidden_dropout_prob=0.25))
    _convert(hf_dir, tmp_path / "out")
    config = json.load(open(tmp_path / "out" / "bert_config.json"))
    assert config["hidden_act"] == original_act
    assert config["hidden_dropout_prob"] == 0.25
    assert (config["vocab_size"], config["num_hidden_layers"], config["intermediate_size"]) == (VOCAB, LAYERS,
                                                                                               INTERMEDIATE)


def test_unused_tensors_are_reported(tmp_path, caplog):
    tensors = {**_hf_tensors("bert."), "classifier.weight": np.zeros((3, HIDDEN), np.float32)}
    hf_dir = _make_hf_dir(tmp_path / "hf", _hf_config(architectures=["BertForSequenceClassification"]), tensors)
    with caplog.at_level("WARNING"):
        _convert(hf_dir, tmp_path / "out")
    assert "classifier.weight" in caplog.text
    assert "position_ids" not in caplog.text


# ---------------------------------------------------------------------------------------------------------------
# read_safetensors
# ---------------------------------------------------------------------------------------------------------------


def test_read_safetensors_dtypes(tmp_path):
    path = str(tmp_path / "t.safetensors")
    f32 = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    bf16 = (np.array([1.5, -3.25, 1e-3], np.float32).view(np.uint32) & 0xFFFF0000).view(np.float32)
    write_safetensors(path, {"a": f32, "h": np.array([0.1, 65504.0], np.float32), "b": bf16,
                             "i": np.array([[-1, 2 ** 40]], np.int64), "s": np.float32(2.5)},
                      dtypes={"h": "F16", "b": "BF16"})
    tensors = checkpoint_conversion.read_safetensors(path)
    assert sorted(tensors) == ["a", "b", "h", "i", "s"]
    assert _bit_equal(tensors["a"], f32) and isinstance(tensors["a"], np.memmap)
    assert tensors["h"].dtype == np.float32
    np.testing.assert_array_equal(tensors["h"], np.array([0.1, 65504.0], np.float16).astype(np.float32))
    assert _bit_equal(tensors["b"], bf16)
    assert tensors["i"].dtype == np.int64 and tensors["i"].tolist() == [[-1, 2 ** 40]]
    assert tensors["s"].shape == () and tensors["s"] == 2.5


def _raw_file(path, header, data=b""):
    header_bytes = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)) + header_bytes + data)
    return str(path)


@pytest.mark.parametrize("content,message", [
    (b"\x01\x02", "only 2 bytes"),
    (struct.pack("<Q", 1000) + b"{}", "exceeds the file size"),
    (struct.pack("<Q", 3) + b"abc", "not JSON"),
])
def test_read_safetensors_rejects_non_safetensors(tmp_path, content, message):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        checkpoint_conversion.read_safetensors(str(path))


def test_read_safetensors_rejects_bad_entries(tmp_path):
    f64 = _raw_file(tmp_path / "f64", {"x": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}}, bytes(8))
    with pytest.raises(ValueError, match="unsupported dtype F64"):
        checkpoint_conversion.read_safetensors(f64)
    short = _raw_file(tmp_path / "short", {"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, bytes(8))
    with pytest.raises(ValueError, match="'x' has data_offsets"):
        checkpoint_conversion.read_safetensors(short)
    malformed = _raw_file(tmp_path / "malformed", {"x": {"dtype": "F32"}})
    with pytest.raises(ValueError, match="malformed header entry"):
        checkpoint_conversion.read_safetensors(malformed)


# ---------------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------------


def test_missing_tensors_are_all_listed(tmp_path):
    tensors = _hf_tensors("bert.", heads=True)
    for name in ("bert.encoder.layer.1.attention.self.key.weight", "bert.pooler.dense.bias",
                 "cls.seq_relationship.bias"):
        del tensors[name]
    hf_dir = _make_hf_dir(tmp_path / "hf", tensors=tensors)
    with pytest.raises(ValueError) as error:
        checkpoint_conversion.convert_hf_checkpoint(hf_dir, str(tmp_path / "out"))
    message = str(error.value)
    assert "3 tensor(s)" in message
    for name in ("bert.encoder.layer.1.attention.self.key.weight", "bert.pooler.dense.bias",
                 "cls.seq_relationship.bias"):
        assert name in message
    assert not os.path.exists(tmp_path / "out")  # nothing is written when validation fails


def test_shapes_that_disagree_with_config_are_listed(tmp_path):
    hf_dir = _make_hf_dir(tmp_path / "hf", _hf_config(intermediate_size=10))
    with pytest.raises(ValueError, match=r"encoder\.layer\.0\.intermediate\.dense\.weight has shape \[12, 8\], "
                                         r"the config implies \[10, 8\]"):
        checkpoint_conversion.convert_hf_checkpoint(hf_dir, str(tmp_path / "out"))


@pytest.mark.parametrize("override,setting", [
    ({"model_type": "roberta"}, "model_type"),
    ({"architectures": ["RobertaModel"]}, "architectures"),
    ({"position_embedding_type": "relative_key"}, "position_embedding_type"),
    ({"layer_norm_eps": 1e-5}, "layer_norm_eps"),
    ({"is_decoder": True}, "is_decoder"),
    ({"hidden_act": "swish"}, "hidden_act"),
])
def test_unsupported_settings(tmp_path, override, setting):
    hf_dir = _make_hf_dir(tmp_path / "hf", _hf_config(**override))
    with pytest.raises(ValueError, match=f"unsupported setting {setting}="):
        checkpoint_conversion.convert_hf_checkpoint(hf_dir, str(tmp_path / "out"))


def test_config_without_bert_settings(tmp_path):
    config = _hf_config()
    del config["type_vocab_size"], config["hidden_act"]
    hf_dir = _make_hf_dir(tmp_path / "hf", config)
    with pytest.raises(ValueError, match="lacks the BERT settings: hidden_act, type_vocab_size"):
        checkpoint_conversion.convert_hf_checkpoint(hf_dir, str(tmp_path / "out"))


@pytest.mark.parametrize("missing_file", ["config.json", "model.safetensors", "vocab.txt"])
def test_missing_input_file(tmp_path, missing_file):
    hf_dir = _make_hf_dir(tmp_path / "hf")
    os.remove(os.path.join(hf_dir, missing_file))
    with pytest.raises(FileNotFoundError, match=re.escape(missing_file)):
        checkpoint_conversion.convert_hf_checkpoint(hf_dir, str(tmp_path / "out"))


def test_missing_input_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        checkpoint_conversion.convert_hf_checkpoint(str(tmp_path / "nowhere"), str(tmp_path / "out"))


def test_vocab_larger_than_vocab_size(tmp_path):
    hf_dir = _make_hf_dir(tmp_path / "hf", vocab_size=VOCAB + 1)
    with pytest.raises(ValueError, match=f"{VOCAB + 1} entries but the BERT config has vocab_size={VOCAB}"):
        checkpoint_conversion.convert_hf_checkpoint(hf_dir, str(tmp_path / "out"))


def test_smaller_vocab_is_accepted(tmp_path):
    _convert(_make_hf_dir(tmp_path / "hf", vocab_size=VOCAB - 3), tmp_path / "out")
    assert len(open(tmp_path / "out" / "vocab.txt").read().splitlines()) == VOCAB - 3


def test_existing_output_is_kept_unless_overwrite(tmp_path):
    first = _hf_tensors(seed=1)
    out_dir = tmp_path / "out"
    _convert(_make_hf_dir(tmp_path / "hf1", tensors=first), out_dir)
    second = _hf_tensors(seed=2)
    hf2 = _make_hf_dir(tmp_path / "hf2", tensors=second)
    (out_dir / "bert_config.json").write_text("user's own config")
    (out_dir / "bert_model.ckpt.meta").write_text("stale meta graph")

    with pytest.raises(UserError, match="overwrite=True"):
        checkpoint_conversion.convert_hf_checkpoint(hf2, str(out_dir))
    assert (out_dir / "bert_config.json").read_text() == "user's own config"
    reader = tf.train.load_checkpoint(str(out_dir / "bert_model.ckpt"))
    assert _bit_equal(reader.get_tensor("bert/pooler/dense/bias"), first["pooler.dense.bias"])

    _, reader = _convert(hf2, out_dir, overwrite=True)
    assert _bit_equal(reader.get_tensor("bert/pooler/dense/bias"), second["pooler.dense.bias"])
    assert json.loads((out_dir / "bert_config.json").read_text())["hidden_size"] == HIDDEN
    assert not (out_dir / "bert_model.ckpt.meta").exists()


def test_lone_user_file_in_output_dir_is_protected(tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "vocab.txt").write_text("mine\n")
    with pytest.raises(UserError, match="vocab.txt"):
        checkpoint_conversion.convert_hf_checkpoint(_make_hf_dir(tmp_path / "hf"), str(out_dir))
    assert (out_dir / "vocab.txt").read_text() == "mine\n"


def test_output_dir_must_differ_from_input_dir(tmp_path):
    hf_dir = _make_hf_dir(tmp_path / "hf")
    with pytest.raises(ValueError, match="must differ"):
        checkpoint_conversion.convert_hf_checkpoint(hf_dir, hf_dir, overwrite=True)


# ---------------------------------------------------------------------------------------------------------------
# The script
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_script(tmp_path):
    hf_dir = _make_hf_dir(tmp_path / "hf", tensors=_hf_tensors("bert.", heads=True))
    out_dir = str(tmp_path / "out")
    command = [sys.executable, os.path.join(REPO_ROOT, "scripts", "convert_hf_checkpoint.py"),
               f"--input_dir={hf_dir}", f"--output_dir={out_dir}"]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert f"into {len(_expected_encoder_shapes()) + len(HEAD_SHAPES)} variables" in result.stdout
    for name in ("bert_model.ckpt.index", "bert_model.ckpt.data-00000-of-00001", "bert_config.json", "vocab.txt"):
        assert os.path.join(out_dir, name) in result.stdout

    refused = subprocess.run(command, capture_output=True, text=True, env=env)
    assert refused.returncode != 0
    assert "--overwrite" in refused.stderr and "Traceback" not in refused.stderr
