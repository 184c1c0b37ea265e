"""The BERT encoder: configuration, embeddings, Transformer layers and pooler.

Variable names and shapes match the original release exactly, so its checkpoints
(and checkpoints converted from other formats) load unchanged:

    bert/embeddings/{word_embeddings, token_type_embeddings, position_embeddings, LayerNorm/{beta,gamma}}
    bert/encoder/layer_<i>/attention/self/{query,key,value}/{kernel,bias}
    bert/encoder/layer_<i>/attention/output/{dense/{kernel,bias}, LayerNorm/{beta,gamma}}
    bert/encoder/layer_<i>/intermediate/dense/{kernel,bias}
    bert/encoder/layer_<i>/output/{dense/{kernel,bias}, LayerNorm/{beta,gamma}}
    bert/pooler/dense/{kernel,bias}

The module reads top-down: configuration, the model, then the building blocks it uses
(activations, layer norm, dense, embeddings, attention, Transformer), then shape helpers.
"""

import collections
import copy
import functools
import json
import math
import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf_v2
import tensorflow.compat.v1 as tf

from bert.common import file_io
from bert.common.errors import UserError

# A dimension as returned by get_shape_list: a Python int when static, a scalar Tensor when not.
Dim = Union[int, tf.Tensor]
Activation = Optional[Callable[[tf.Tensor], tf.Tensor]]
Initializer = Callable[..., tf.Tensor]

LAYER_NORM_EPSILON = 1e-12
# Added to the attention scores of masked positions; large enough that softmax gives them ~0.
MASKED_SCORE_PENALTY = -10000.0


# ----------------------------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------------------------


class BertConfig(object):
    """Hyper-parameters of a `BertModel`; the content of a release's `bert_config.json`."""

    def __init__(self,
                 vocab_size: Optional[int],
                 hidden_size: int = 768,
                 num_hidden_layers: int = 12,
                 num_attention_heads: int = 12,
                 intermediate_size: int = 3072,
                 hidden_act: Union[str, Callable] = "gelu",
                 hidden_dropout_prob: float = 0.1,
                 attention_probs_dropout_prob: float = 0.1,
                 max_position_embeddings: int = 512,
                 type_vocab_size: int = 16,
                 initializer_range: float = 0.02):
        """Stores the hyper-parameters.

        Args:
          vocab_size: number of rows of the word embedding table (WordPiece vocab size).
          hidden_size: width of the embeddings, every encoder layer and the pooler.
          num_hidden_layers: number of Transformer layers.
          num_attention_heads: attention heads per layer; must divide hidden_size.
          intermediate_size: width of the feed-forward ("intermediate") layer.
          hidden_act: activation of the feed-forward layer: a name understood by get_activation, or a function.
          hidden_dropout_prob: dropout rate after embeddings and every dense sub-layer.
          attention_probs_dropout_prob: dropout rate on the attention probabilities.
          max_position_embeddings: rows of the position table, i.e. the longest usable sequence.
          type_vocab_size: number of token types (segments) the model knows.
          initializer_range: stddev of the truncated normal used to initialise weight matrices.
        """
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.hidden_act = hidden_act
        self.intermediate_size = intermediate_size
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range

    @classmethod
    def from_dict(cls, json_object: Dict[str, Any]) -> "BertConfig":
        """Builds a config from a dict; unknown keys are kept as attributes (with a warning), as released
        multilingual/Chinese configs carry extra ones such as `directionality`."""
        if not isinstance(json_object, dict):
            raise ValueError(f"A BERT config must be a JSON object (dict), got {type(json_object).__name__}")
        config = cls(vocab_size=None)
        unknown_keys = sorted(set(json_object) - set(config.__dict__))
        if unknown_keys:
            tf.logging.warning("BERT config has keys BertModel does not use (kept as attributes): %s",
                               ", ".join(unknown_keys))
        for key, value in json_object.items():
            setattr(config, key, value)
        return config

    @classmethod
    def from_json_file(cls, json_file: str) -> "BertConfig":
        """Reads a `bert_config.json` (local path or any filesystem tf.io.gfile supports)."""
        json_object = file_io.read_json(json_file, "BERT config file")
        try:
            config = cls.from_dict(json_object)
            _check_config_values(config)
        except ValueError as error:
            raise UserError(f"BERT config file {json_file}: {error}") from None
        return config

    def to_dict(self) -> Dict[str, Any]:
        """All attributes, including unknown keys read from a file, as a new dict."""
        return copy.deepcopy(self.__dict__)

    def to_json_string(self) -> str:
        """The config as JSON text (sorted keys, indent 2, trailing newline), the released files' layout."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


def with_fast_kernels(config: BertConfig) -> BertConfig:
    """[New] A copy of `config` for building a graph that computes the same model with fewer, fused kernels (the
    programs' --fast_kernels): the original's GELU becomes `fused_gelu`. Variables and checkpoints stay the
    original's; outputs move in the last bits only (tests hold them within 1e-5 of the original graph). Build
    with it, but save and compare the original config (its activation is no longer a name)."""
    fast = copy.copy(config)
    if isinstance(config.hidden_act, str) and config.hidden_act.lower() == "gelu":
        fast.hidden_act = fused_gelu
    return fast


def check_sequence_length(bert_config: BertConfig, max_seq_length: int,
                          bert_config_file: Optional[str] = None) -> None:
    """Fails early when --max_seq_length exceeds what the position embedding table covers.

    Raises:
      ValueError: max_seq_length > bert_config.max_position_embeddings.
    """
    if max_seq_length > bert_config.max_position_embeddings:
        source = bert_config_file or "the BERT config (--bert_config_file)"
        raise UserError(
            f"--max_seq_length={max_seq_length} is longer than max_position_embeddings="
            f"{bert_config.max_position_embeddings} in {source}: the model has no position embeddings beyond "
            f"{bert_config.max_position_embeddings} tokens. Lower --max_seq_length.")


def check_vocab_fits(bert_config: BertConfig, vocab_size: int, vocab_file: Optional[str] = None) -> None:
    """Fails early when token ids could index past the word embedding table.

    Out-of-range ids do not fail cleanly everywhere (on some devices a gather returns zeros), so a vocab
    larger than the config's vocab_size trains into garbage. A smaller vocab leaves rows unused, as some models
    pad their table, but it is also what a vocab file cut short by an interrupted download looks like (its
    missing words would all become [UNK]): that gets a warning.

    Raises:
      ValueError: vocab_size > bert_config.vocab_size.
    """
    source = f"vocab file {vocab_file}" if vocab_file else "the vocabulary"
    if vocab_size < bert_config.vocab_size:
        tf.logging.warning("%s has %d entries, fewer than the BERT config's vocab_size=%d: fine if the model's "
                           "embedding table was padded, but if the file was cut short (an interrupted download) "
                           "download it again", source, vocab_size, bert_config.vocab_size)
    if vocab_size > bert_config.vocab_size:
        raise UserError(
            f"{source} has {vocab_size} entries but the BERT config has vocab_size={bert_config.vocab_size}: "
            f"ids >= {bert_config.vocab_size} have no word embedding. Use the vocab and config of the same model.")


_POSITIVE_INTEGER_SETTINGS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                              "intermediate_size", "max_position_embeddings", "type_vocab_size")


def _check_config_values(config: BertConfig) -> None:
    """A config read from a file must give the sizes BertModel needs and a known activation."""
    for name in _POSITIVE_INTEGER_SETTINGS:
        value = getattr(config, name)
        if value is None:
            raise ValueError(f"it lacks \"{name}\"")
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"\"{name}\" must be a positive integer, got {value!r}")
    get_activation(config.hidden_act)


def check_heads_divide_hidden_size(hidden_size: int, num_attention_heads: int) -> None:
    """Each head gets hidden_size / num_attention_heads dimensions, so the division must be exact.

    Raises:
      ValueError: hidden_size is not a multiple of num_attention_heads.
    """
    if num_attention_heads <= 0 or hidden_size % num_attention_heads != 0:
        raise ValueError(f"hidden_size ({hidden_size}) is not a multiple of num_attention_heads "
                         f"({num_attention_heads})")


# ----------------------------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------------------------


class BertModel(object):
    """BERT ("Bidirectional Encoder Representations from Transformers") built into the current graph.

    Example:

        config = BertConfig(vocab_size=32000, hidden_size=512, num_hidden_layers=8,
                            num_attention_heads=8, intermediate_size=1024)
        model = BertModel(config, is_training=True, input_ids=input_ids,
                          input_mask=input_mask, token_type_ids=token_type_ids)
        logits = tf.matmul(model.get_pooled_output(), output_weights)
    """

    def __init__(self,
                 config: BertConfig,
                 is_training: bool,
                 input_ids: tf.Tensor,
                 input_mask: Optional[tf.Tensor] = None,
                 token_type_ids: Optional[tf.Tensor] = None,
                 use_one_hot_embeddings: bool = False,
                 scope: Optional[str] = None,
                 gradient_checkpointing: bool = False):
        """Builds embeddings, encoder and pooler under variable scope `scope` (default "bert").

        Args:
          config: the model's hyper-parameters.
          is_training: False turns every dropout off.
          input_ids: int32 Tensor [batch_size, seq_length] of WordPiece ids.
          input_mask: optional int32 Tensor [batch_size, seq_length], 1 for real tokens, 0 for padding;
            default all ones.
          token_type_ids: optional int32 Tensor [batch_size, seq_length] of segment ids; default all zeros.
          use_one_hot_embeddings: look words up by one-hot matmul (fast on TPU) instead of tf.gather.
          scope: optional variable scope name.
          gradient_checkpointing: [new] recompute each encoder layer in the backward pass instead of keeping its
            activations (training only; off, the original's graph, by default).

        Raises:
          ValueError: the config is inconsistent or a tensor has the wrong rank or length.
        """
        check_heads_divide_hidden_size(config.hidden_size, config.num_attention_heads)
        config = copy.deepcopy(config)
        if not is_training:
            config.hidden_dropout_prob = 0.0
            config.attention_probs_dropout_prob = 0.0

        batch_size, seq_length = get_shape_list(input_ids, expected_rank=2)
        if input_mask is None:
            input_mask = tf.ones(shape=[batch_size, seq_length], dtype=tf.int32)
        if token_type_ids is None:
            token_type_ids = tf.zeros(shape=[batch_size, seq_length], dtype=tf.int32)

        with tf.variable_scope(scope, default_name="bert"):
            with tf.variable_scope("embeddings"):
                (self.word_embedding_output, self.embedding_output,
                 self.embedding_table) = _bert_embeddings(config, input_ids, token_type_ids, use_one_hot_embeddings)
            with tf.variable_scope("encoder"):
                attention_mask = create_attention_mask_from_input_mask(input_ids, input_mask)
                self.all_encoder_layers = transformer_model(
                    input_tensor=self.embedding_output,
                    attention_mask=attention_mask,
                    hidden_size=config.hidden_size,
                    num_hidden_layers=config.num_hidden_layers,
                    num_attention_heads=config.num_attention_heads,
                    intermediate_size=config.intermediate_size,
                    intermediate_act_fn=get_activation(config.hidden_act),
                    hidden_dropout_prob=config.hidden_dropout_prob,
                    attention_probs_dropout_prob=config.attention_probs_dropout_prob,
                    initializer_range=config.initializer_range,
                    do_return_all_layers=True,
                    gradient_checkpointing=gradient_checkpointing and is_training)
            self.sequence_output = self.all_encoder_layers[-1]
            with tf.variable_scope("pooler"):
                self.pooled_output = _pooler(self.sequence_output, config)

    def get_pooled_output(self) -> tf.Tensor:
        """float32 Tensor [batch_size, hidden_size]: tanh(dense(first token's final hidden state))."""
        return self.pooled_output

    def get_sequence_output(self) -> tf.Tensor:
        """float32 Tensor [batch_size, seq_length, hidden_size]: the last encoder layer."""
        return self.sequence_output

    def get_all_encoder_layers(self) -> List[tf.Tensor]:
        """num_hidden_layers float32 Tensors [batch_size, seq_length, hidden_size], first layer first."""
        return self.all_encoder_layers

    def get_embedding_output(self) -> tf.Tensor:
        """float32 Tensor [batch_size, seq_length, hidden_size]: word + token type + position embeddings,
        layer-normalised (and dropped out when training); the encoder's input."""
        return self.embedding_output

    def get_word_embedding_output(self) -> tf.Tensor:
        """float32 Tensor [batch_size, seq_length, hidden_size]: the word-piece embeddings alone, before token
        types and positions are added (bert-tensorflow 1.0.4's accessor)."""
        return self.word_embedding_output

    def get_embedding_table(self) -> tf.Variable:
        """float32 Variable [vocab_size, hidden_size]: the word embeddings (shared with the MLM output layer)."""
        return self.embedding_table


def _bert_embeddings(config: BertConfig, input_ids: tf.Tensor, token_type_ids: tf.Tensor,
                     use_one_hot_embeddings: bool) -> Tuple[tf.Tensor, tf.Tensor, tf.Variable]:
    """The embedding block: word lookup, then token types, positions, layer norm and dropout.

    Returns:
      (word embeddings, block output: float32 Tensors [batch_size, seq_length, hidden_size]; the word embedding
      table).
    """
    word_embeddings, embedding_table = embedding_lookup(
        input_ids=input_ids,
        vocab_size=config.vocab_size,
        embedding_size=config.hidden_size,
        initializer_range=config.initializer_range,
        word_embedding_name="word_embeddings",
        use_one_hot_embeddings=use_one_hot_embeddings)
    embedding_output = embedding_postprocessor(
        input_tensor=word_embeddings,
        use_token_type=True,
        token_type_ids=token_type_ids,
        token_type_vocab_size=config.type_vocab_size,
        token_type_embedding_name="token_type_embeddings",
        use_position_embeddings=True,
        position_embedding_name="position_embeddings",
        initializer_range=config.initializer_range,
        max_position_embeddings=config.max_position_embeddings,
        dropout_prob=config.hidden_dropout_prob)
    return word_embeddings, embedding_output, embedding_table


def _pooler(sequence_output: tf.Tensor, config: BertConfig) -> tf.Tensor:
    """Summarises a sequence by its first ([CLS]) token, as pre-trained by next-sentence prediction.

    Args:
      sequence_output: float32 Tensor [batch_size, seq_length, hidden_size].

    Returns:
      float32 Tensor [batch_size, hidden_size].
    """
    first_token = sequence_output[:, 0, :]  # [B, hidden]
    return dense(first_token, config.hidden_size, activation=tf.tanh,
                 kernel_initializer=create_initializer(config.initializer_range))


# ----------------------------------------------------------------------------------------------------------------
# Activations, initialisers, dropout, layer norm, dense
# ----------------------------------------------------------------------------------------------------------------


def gelu(x: tf.Tensor) -> tf.Tensor:
    """Gaussian Error Linear Unit (https://arxiv.org/abs/1606.08415), in the tanh approximation BERT was
    trained with (not the exact erf form)."""
    cdf = 0.5 * (1.0 + tf.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * tf.pow(x, 3))))
    return x * cdf


def fused_gelu(x: tf.Tensor) -> tf.Tensor:
    """[New] `gelu`'s formula computed by TensorFlow's own GELU op, which oneDNN fuses into the matrix product
    before it (one kernel instead of eight element-wise ops); it differs from `gelu` in the last bits only."""
    return tf_v2.nn.gelu(x, approximate=True)


_ACTIVATIONS = {
    "linear": None,
    "relu": tf.nn.relu,
    "gelu": gelu,
    "tanh": tf.tanh,
}


def get_activation(activation_string: Union[str, Callable, None]) -> Activation:
    """Maps an activation name ("gelu", "relu", "tanh", "linear"; any case) to its function.

    Returns None for None, "" and "linear"; a non-string (already a function) is returned unchanged.

    Raises:
      ValueError: an unknown name.
    """
    if not isinstance(activation_string, str):
        return activation_string
    if not activation_string:
        return None
    name = activation_string.lower()
    if name not in _ACTIVATIONS:
        raise ValueError(f"Unsupported activation: {name} (known: {', '.join(sorted(_ACTIVATIONS))})")
    return _ACTIVATIONS[name]


def create_initializer(initializer_range: float = 0.02) -> Initializer:
    """Truncated normal initialiser with stddev `initializer_range`, used for every BERT weight matrix."""
    return tf.truncated_normal_initializer(stddev=initializer_range)


def dropout(input_tensor: tf.Tensor, dropout_prob: Optional[float], seed: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Drops values with probability `dropout_prob` (the rate to drop, not to keep); None or 0 is a no-op.

    [New] With `seed` (int64 Tensor [2]) the mask is a pure function of the seed (stateless random numbers): a
    recomputation with the same seed drops the same values.
    """
    if dropout_prob is None or dropout_prob == 0.0:
        return input_tensor
    if seed is not None:
        return tf.nn.experimental.stateless_dropout(input_tensor, rate=dropout_prob, seed=seed)
    return tf.nn.dropout(input_tensor, rate=dropout_prob)


def layer_norm(input_tensor: tf.Tensor, name: Optional[str] = None) -> tf.Tensor:
    """Layer normalisation over the last axis, with variables `<name or LayerNorm>/beta` and `/gamma`.

    Same math as the original's tf.contrib.layers.layer_norm: moments over the last axis, epsilon 1e-12,
    learned offset (zeros) and scale (ones) of the last dimension's size.
    """
    width = input_tensor.shape[-1]
    with tf.variable_scope(name, default_name="LayerNorm"):
        beta = tf.get_variable("beta", shape=[width], dtype=input_tensor.dtype, initializer=tf.zeros_initializer())
        gamma = tf.get_variable("gamma", shape=[width], dtype=input_tensor.dtype, initializer=tf.ones_initializer())
        mean, variance = tf.nn.moments(input_tensor, axes=[-1], keepdims=True)
        return tf.nn.batch_normalization(input_tensor, mean, variance, offset=beta, scale=gamma,
                                         variance_epsilon=LAYER_NORM_EPSILON)


def layer_norm_and_dropout(input_tensor: tf.Tensor, dropout_prob: Optional[float],
                           name: Optional[str] = None) -> tf.Tensor:
    """Layer normalisation, then dropout."""
    return dropout(layer_norm(input_tensor, name), dropout_prob)


def dense(input_tensor: tf.Tensor, units: int, activation: Activation = None,
          kernel_initializer: Optional[Initializer] = None,
          name: Optional[str] = None) -> tf.Tensor:
    """Fully connected layer `activation(x @ kernel + bias)` with variables `<name or dense>/kernel|bias`.

    Equivalent to tf.compat.v1.layers.dense on a matrix (same names, zero bias), without Keras.

    Args:
      input_tensor: float32 Tensor [rows, in_width].
      units: out_width.
      kernel_initializer: default create_initializer().

    Returns:
      float32 Tensor [rows, units].
    """
    assert_rank(input_tensor, 2)
    in_width = input_tensor.shape[-1]
    with tf.variable_scope(name, default_name="dense"):
        kernel = tf.get_variable("kernel", shape=[in_width, units], dtype=input_tensor.dtype,
                                 initializer=kernel_initializer or create_initializer())
        bias = tf.get_variable("bias", shape=[units], dtype=input_tensor.dtype, initializer=tf.zeros_initializer())
        output = tf.nn.bias_add(tf.matmul(input_tensor, kernel), bias)  # [rows, units]
        return activation(output) if activation is not None else output


def dense_layer_2d(input_tensor: tf.Tensor, output_size: int, initializer: Initializer, activation: Activation,
                   name: Optional[str] = None) -> tf.Tensor:
    """`dense` on the last axis of a [B, S, in_width] Tensor: [B, S, output_size] (bert-tensorflow 1.0.4)."""
    shape = get_shape_list(input_tensor, expected_rank=3)
    output = dense(reshape_to_matrix(input_tensor), output_size, activation, initializer, name=name)
    return tf.reshape(output, shape[:-1] + [output_size])


def dense_layer_3d(input_tensor: tf.Tensor, num_attention_heads: int, size_per_head: int,
                   initializer: Initializer, activation: Activation, name: Optional[str] = None) -> tf.Tensor:
    """[B, S, in_width] -> per-head projections [B, S, N, H]; the kernel is stored as the 2-D [in_width, N*H] of
    `dense`, so checkpoints are the same (bert-tensorflow 1.0.4)."""
    batch_size, seq_length, _ = get_shape_list(input_tensor, expected_rank=3)
    output = dense_layer_2d(input_tensor, num_attention_heads * size_per_head, initializer, activation, name)
    return tf.reshape(output, [batch_size, seq_length, num_attention_heads, size_per_head])


def dense_layer_3d_proj(input_tensor: tf.Tensor, hidden_size: int, num_attention_heads: int, head_size: int,
                        initializer: Initializer, activation: Activation, name: Optional[str] = None) -> tf.Tensor:
    """Per-head values [B, F, N, H] -> [B, F, hidden_size] through one [N*H, hidden_size] kernel, the attention
    output projection (bert-tensorflow 1.0.4)."""
    batch_size, seq_length, _, _ = get_shape_list(input_tensor, expected_rank=4)
    heads_joined = tf.reshape(input_tensor, [batch_size, seq_length, num_attention_heads * head_size])
    return dense_layer_2d(heads_joined, hidden_size, initializer, activation, name)


# ----------------------------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------------------------


def get_assignment_map_from_checkpoint(tvars: Sequence[tf.Variable],
                                       init_checkpoint: str) -> Tuple[Dict[str, str], Dict[str, int]]:
    """Which of `tvars` a checkpoint can initialise (by name; a checkpoint may hold more or fewer variables).

    Returns:
      (assignment_map, initialized_variable_names): an OrderedDict checkpoint name -> variable name for
      tf.train.init_from_checkpoint (in checkpoint order), and a dict holding each matched name both with and
      without its ":0" suffix (value 1), for logging which variables came from the checkpoint.
    """
    name_to_variable = collections.OrderedDict((_strip_output_index(var.name), var) for var in tvars)
    assignment_map = collections.OrderedDict()
    initialized_variable_names = {}
    for name, _ in tf.train.list_variables(init_checkpoint):
        if name not in name_to_variable:
            continue
        assignment_map[name] = name
        initialized_variable_names[name] = 1
        initialized_variable_names[name + ":0"] = 1
    return assignment_map, initialized_variable_names


def _strip_output_index(tensor_name: str) -> str:
    """"bert/pooler/dense/kernel:0" -> "bert/pooler/dense/kernel"."""
    match = re.match(r"^(.*):\d+$", tensor_name)
    return match.group(1) if match else tensor_name


# ----------------------------------------------------------------------------------------------------------------
# Embeddings
# ----------------------------------------------------------------------------------------------------------------


def embedding_lookup(input_ids: tf.Tensor,
                     vocab_size: int,
                     embedding_size: int = 128,
                     initializer_range: float = 0.02,
                     word_embedding_name: str = "word_embeddings",
                     use_one_hot_embeddings: bool = False) -> Tuple[tf.Tensor, tf.Variable]:
    """Creates the word embedding table and looks `input_ids` up in it.

    Args:
      input_ids: int32 Tensor [batch_size, seq_length] (or [batch_size, seq_length, num_inputs], whose
        embeddings are concatenated).
      vocab_size: rows of the table.
      embedding_size: width of the table.
      initializer_range: stddev of the table's initialiser.
      word_embedding_name: variable name of the table.
      use_one_hot_embeddings: one-hot matmul (fast on TPU) instead of tf.gather; same values.

    Returns:
      (float32 Tensor [batch_size, seq_length, num_inputs * embedding_size], the table
      Variable [vocab_size, embedding_size]).
    """
    if input_ids.shape.ndims == 2:
        input_ids = tf.expand_dims(input_ids, axis=-1)  # [B, S, 1]

    embedding_table = tf.get_variable(name=word_embedding_name, shape=[vocab_size, embedding_size],
                                      initializer=create_initializer(initializer_range))
    flat_input_ids = tf.reshape(input_ids, [-1])  # [B*S*num_inputs]
    if use_one_hot_embeddings:
        one_hot_ids = tf.one_hot(flat_input_ids, depth=vocab_size)  # [B*S*num_inputs, vocab]
        output = tf.matmul(one_hot_ids, embedding_table)
    else:
        output = tf.gather(embedding_table, flat_input_ids)  # [B*S*num_inputs, E]

    input_shape = get_shape_list(input_ids)
    output = tf.reshape(output, input_shape[:-1] + [input_shape[-1] * embedding_size])  # [B, S, num_inputs*E]
    return output, embedding_table


def embedding_postprocessor(input_tensor: tf.Tensor,
                            use_token_type: bool = False,
                            token_type_ids: Optional[tf.Tensor] = None,
                            token_type_vocab_size: int = 16,
                            token_type_embedding_name: str = "token_type_embeddings",
                            use_position_embeddings: bool = True,
                            position_embedding_name: str = "position_embeddings",
                            initializer_range: float = 0.02,
                            max_position_embeddings: int = 512,
                            dropout_prob: float = 0.1) -> tf.Tensor:
    """Adds token type and position embeddings to word embeddings, then layer norm and dropout.

    Args:
      input_tensor: float32 Tensor [batch_size, seq_length, width].
      use_token_type: add embeddings of `token_type_ids`.
      token_type_ids: int32 Tensor [batch_size, seq_length]; required when use_token_type.
      token_type_vocab_size: rows of the token type table.
      token_type_embedding_name: variable name of the token type table.
      use_position_embeddings: add learned embeddings of the positions 0..seq_length-1.
      position_embedding_name: variable name of the position table.
      initializer_range: stddev of the tables' initialiser.
      max_position_embeddings: rows of the position table; seq_length may not exceed it.
      dropout_prob: dropout rate of the result.

    Returns:
      float32 Tensor [batch_size, seq_length, width].

    Raises:
      ValueError: wrong rank, missing token_type_ids, or seq_length > max_position_embeddings.
    """
    batch_size, seq_length, width = get_shape_list(input_tensor, expected_rank=3)
    output = input_tensor
    if use_token_type:
        if token_type_ids is None:
            raise ValueError("`token_type_ids` must be given when `use_token_type` is True")
        output += _token_type_embeddings(token_type_ids, token_type_vocab_size, token_type_embedding_name,
                                         initializer_range, [batch_size, seq_length, width])
    if use_position_embeddings:
        output += _position_embeddings(seq_length, width, position_embedding_name, initializer_range,
                                       max_position_embeddings)
    return layer_norm_and_dropout(output, dropout_prob)


def _token_type_embeddings(token_type_ids: tf.Tensor, token_type_vocab_size: int, table_name: str,
                           initializer_range: float, output_shape: List[Dim]) -> tf.Tensor:
    """Looks token types up by one-hot matmul (the table is tiny, so this is the fast way).

    Returns:
      float32 Tensor `output_shape` = [batch_size, seq_length, width].
    """
    table = tf.get_variable(name=table_name, shape=[token_type_vocab_size, output_shape[-1]],
                            initializer=create_initializer(initializer_range))
    flat_ids = tf.reshape(token_type_ids, [-1])  # [B*S]
    one_hot_ids = tf.one_hot(flat_ids, depth=token_type_vocab_size)  # [B*S, types]
    return tf.reshape(tf.matmul(one_hot_ids, table), output_shape)  # [B, S, W]


def _position_embeddings(seq_length: Dim, width: int, table_name: str, initializer_range: float,
                         max_position_embeddings: int) -> tf.Tensor:
    """The first `seq_length` rows of the learned position table, to broadcast over the batch.

    Returns:
      float32 Tensor [1, seq_length, width].
    """
    if isinstance(seq_length, int):
        if seq_length > max_position_embeddings:
            raise ValueError(f"Input sequence length {seq_length} is longer than max_position_embeddings "
                             f"{max_position_embeddings}: the model has no position embedding for the extra tokens")
        dependencies = []
    else:
        dependencies = [tf.assert_less_equal(
            seq_length, max_position_embeddings,
            message="Input sequence length is longer than max_position_embeddings")]
    table = tf.get_variable(name=table_name, shape=[max_position_embeddings, width],
                            initializer=create_initializer(initializer_range))
    with tf.control_dependencies(dependencies):
        positions = tf.slice(table, [0, 0], [seq_length, -1])  # [S, W]
    return tf.reshape(positions, [1, seq_length, width])  # [1, S, W]


# ----------------------------------------------------------------------------------------------------------------
# Attention
# ----------------------------------------------------------------------------------------------------------------


def create_attention_mask_from_input_mask(from_tensor: tf.Tensor, to_mask: tf.Tensor) -> tf.Tensor:
    """Turns a padding mask into an attention mask: every position may attend to every real token.

    Args:
      from_tensor: Tensor [batch_size, from_seq_length] or [batch_size, from_seq_length, width] (only its
        shape is used: attending *from* padding is harmless).
      to_mask: int32 Tensor [batch_size, to_seq_length], 1 for real tokens, 0 for padding.

    Returns:
      float32 Tensor [batch_size, from_seq_length, to_seq_length]; entry [b, i, j] = to_mask[b, j].
    """
    batch_size, from_seq_length = get_shape_list(from_tensor, expected_rank=[2, 3])[:2]
    to_seq_length = get_shape_list(to_mask, expected_rank=2)[1]
    to_mask = tf.cast(tf.reshape(to_mask, [batch_size, 1, to_seq_length]), tf.float32)  # [B, 1, T]
    broadcast_ones = tf.ones(shape=[batch_size, from_seq_length, 1], dtype=tf.float32)  # [B, F, 1]
    return broadcast_ones * to_mask  # [B, F, T]


def attention_layer(from_tensor: tf.Tensor,
                    to_tensor: tf.Tensor,
                    attention_mask: Optional[tf.Tensor] = None,
                    num_attention_heads: int = 1,
                    size_per_head: int = 512,
                    query_act: Activation = None,
                    key_act: Activation = None,
                    value_act: Activation = None,
                    attention_probs_dropout_prob: float = 0.0,
                    initializer_range: float = 0.02,
                    do_return_2d_tensor: bool = False,
                    batch_size: Optional[Dim] = None,
                    from_seq_length: Optional[Dim] = None,
                    to_seq_length: Optional[Dim] = None,
                    dropout_seed: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Multi-head scaled dot-product attention from `from_tensor` to `to_tensor` ("Attention Is All You Need").

    Creates variables query/, key/ and value/ {kernel, bias} in the current scope. The heads are not separate
    tensors: the projections are reshaped to [B, N, ·, H] and attended in one batched matmul.

    Shape legend:
      B = batch size (number of sequences)
      F = `from_tensor` sequence length
      T = `to_tensor` sequence length
      N = `num_attention_heads`
      H = `size_per_head`

    Args:
      from_tensor: float32 Tensor [B, F, from_width], or [B*F, from_width] with the sizes below given.
      to_tensor: float32 Tensor [B, T, to_width], or [B*T, to_width]; same rank as from_tensor.
      attention_mask: optional int32 or float32 Tensor [B, F, T]: 1 where attending is allowed, 0 where not.
      num_attention_heads: N.
      size_per_head: H.
      query_act, key_act, value_act: optional activations of the three projections.
      attention_probs_dropout_prob: dropout rate on the attention probabilities.
      initializer_range: stddev of the projection kernels' initialiser.
      do_return_2d_tensor: return [B*F, N*H] instead of [B, F, N*H].
      batch_size, from_seq_length, to_seq_length: B, F, T; required when the inputs are rank 2.
      dropout_seed: [new] optional int64 Tensor [2] making the dropout mask stateless (see `dropout`).

    Returns:
      float32 Tensor [B, F, N*H], or [B*F, N*H] when do_return_2d_tensor.

    Raises:
      ValueError: ranks differ, or rank-2 inputs without B, F and T.
    """
    from_shape = get_shape_list(from_tensor, expected_rank=[2, 3])
    to_shape = get_shape_list(to_tensor, expected_rank=[2, 3])
    if len(from_shape) != len(to_shape):
        raise ValueError(f"`from_tensor` (rank {len(from_shape)}) and `to_tensor` (rank {len(to_shape)}) "
                         f"must have the same rank")
    if len(from_shape) == 3:
        batch_size, from_seq_length = from_shape[0], from_shape[1]
        to_seq_length = to_shape[1]
    elif batch_size is None or from_seq_length is None or to_seq_length is None:
        raise ValueError("With rank 2 inputs, attention_layer needs `batch_size`, `from_seq_length` and "
                         "`to_seq_length`")

    from_tensor_2d = reshape_to_matrix(from_tensor)  # [B*F, from_width]
    to_tensor_2d = reshape_to_matrix(to_tensor)  # [B*T, to_width]
    initializer = create_initializer(initializer_range)
    all_heads_width = num_attention_heads * size_per_head
    query = dense(from_tensor_2d, all_heads_width, query_act, initializer, name="query")  # [B*F, N*H]
    key = dense(to_tensor_2d, all_heads_width, key_act, initializer, name="key")  # [B*T, N*H]
    value = dense(to_tensor_2d, all_heads_width, value_act, initializer, name="value")  # [B*T, N*H]

    query = _split_heads(query, batch_size, from_seq_length, num_attention_heads, size_per_head)  # [B, N, F, H]
    key = _split_heads(key, batch_size, to_seq_length, num_attention_heads, size_per_head)  # [B, N, T, H]
    value = _split_heads(value, batch_size, to_seq_length, num_attention_heads, size_per_head)  # [B, N, T, H]

    scores = tf.matmul(query, key, transpose_b=True)  # [B, N, F, T]
    scores = tf.multiply(scores, 1.0 / math.sqrt(float(size_per_head)))
    if attention_mask is not None:
        mask = tf.cast(tf.expand_dims(attention_mask, axis=1), tf.float32)  # [B, 1, F, T]
        scores += (1.0 - mask) * MASKED_SCORE_PENALTY
    probs = tf.nn.softmax(scores)  # [B, N, F, T]
    # Dropping whole attended-to tokens, as the original Transformer does.
    probs = dropout(probs, attention_probs_dropout_prob, dropout_seed)

    context = tf.matmul(probs, value)  # [B, N, F, H]
    context = tf.transpose(context, [0, 2, 1, 3])  # [B, F, N, H]
    if do_return_2d_tensor:
        return tf.reshape(context, [batch_size * from_seq_length, all_heads_width])  # [B*F, N*H]
    return tf.reshape(context, [batch_size, from_seq_length, all_heads_width])  # [B, F, N*H]


def _split_heads(tensor_2d: tf.Tensor, batch_size: Dim, seq_length: Dim, num_heads: int,
                 size_per_head: int) -> tf.Tensor:
    """[B*S, N*H] -> [B, N, S, H]."""
    tensor = tf.reshape(tensor_2d, [batch_size, seq_length, num_heads, size_per_head])  # [B, S, N, H]
    return tf.transpose(tensor, [0, 2, 1, 3])  # [B, N, S, H]


# ----------------------------------------------------------------------------------------------------------------
# Transformer encoder
# ----------------------------------------------------------------------------------------------------------------


def transformer_model(input_tensor: tf.Tensor,
                      attention_mask: Optional[tf.Tensor] = None,
                      hidden_size: int = 768,
                      num_hidden_layers: int = 12,
                      num_attention_heads: int = 12,
                      intermediate_size: int = 3072,
                      intermediate_act_fn: Activation = gelu,
                      hidden_dropout_prob: float = 0.1,
                      attention_probs_dropout_prob: float = 0.1,
                      initializer_range: float = 0.02,
                      do_return_all_layers: bool = False,
                      gradient_checkpointing: bool = False) -> Union[tf.Tensor, List[tf.Tensor]]:
    """The Transformer encoder: `num_hidden_layers` post-norm layers under scopes layer_0, layer_1, ...

    Args:
      input_tensor: float32 Tensor [batch_size, seq_length, hidden_size].
      attention_mask: optional Tensor [batch_size, seq_length, seq_length], 1 = may attend, 0 = may not.
      hidden_size: width of every layer; must equal the input width and be a multiple of num_attention_heads.
      num_hidden_layers: number of layers.
      num_attention_heads: heads per layer.
      intermediate_size: width of the feed-forward layer.
      intermediate_act_fn: activation of the feed-forward layer.
      hidden_dropout_prob: dropout rate after each dense sub-layer.
      attention_probs_dropout_prob: dropout rate on attention probabilities.
      initializer_range: stddev of the weight initialiser.
      do_return_all_layers: return every layer's output rather than only the last.
      gradient_checkpointing: [new] keep only each layer's input for the backward pass and recompute the layer
        there (`_checkpointed_layer`); same variables, same values, same gradients.

    Returns:
      float32 Tensor [batch_size, seq_length, hidden_size] (the last layer), or a list of one per layer.

    Raises:
      ValueError: hidden_size is not a multiple of num_attention_heads, or the input width != hidden_size.
    """
    check_heads_divide_hidden_size(hidden_size, num_attention_heads)
    input_shape = get_shape_list(input_tensor, expected_rank=3)
    batch_size, seq_length, input_width = input_shape
    if input_width != hidden_size:
        raise ValueError(f"The width of the input tensor ({input_width}) != hidden size ({hidden_size}): the "
                         f"residual connections need them equal")

    # Layers work on [B*S, hidden] matrices, so reshapes happen once here, not in every layer.
    layer_output = reshape_to_matrix(input_tensor)
    all_layer_outputs = []
    layer = functools.partial(
        _transformer_layer, batch_size=batch_size, seq_length=seq_length,
        hidden_size=hidden_size, num_attention_heads=num_attention_heads, intermediate_size=intermediate_size,
        intermediate_act_fn=intermediate_act_fn, hidden_dropout_prob=hidden_dropout_prob,
        attention_probs_dropout_prob=attention_probs_dropout_prob, initializer_range=initializer_range)
    uses_dropout = bool(hidden_dropout_prob) or bool(attention_probs_dropout_prob)
    for layer_index in range(num_hidden_layers):
        if gradient_checkpointing:
            # custom gradients in graph mode need resource variables; the names are the same.
            with tf.variable_scope(f"layer_{layer_index}", use_resource=True):
                layer_output = _checkpointed_layer(layer, layer_output, attention_mask, uses_dropout)
        else:
            with tf.variable_scope(f"layer_{layer_index}"):
                layer_output = layer(layer_output, attention_mask)
        all_layer_outputs.append(layer_output)

    if do_return_all_layers:
        return [reshape_from_matrix(output, input_shape) for output in all_layer_outputs]
    return reshape_from_matrix(layer_output, input_shape)


def _checkpointed_layer(layer: Callable[..., tf.Tensor], layer_input: tf.Tensor,
                        attention_mask: Optional[tf.Tensor], uses_dropout: bool) -> tf.Tensor:
    """`layer(layer_input, attention_mask)` under `_recompute_in_backward_pass`: its activations are dropped after
    the forward pass and recomputed from `layer_input` when the backward pass reaches the layer.

    The mask is an input too, not a captured tensor: tf.custom_gradient searches the ops between its inputs and
    outputs for variables, and would wander into whatever the mask was computed from.

    The dropout masks must be the same both times, or the gradients would belong to a different network. So the
    layer's dropout is stateless, seeded by a random int64 pair drawn once per run outside the recomputed function
    (new masks every step and micro-batch, no mask tensors kept in memory).
    """
    seed = None
    if uses_dropout:
        seed = tf.random.uniform([2], maxval=tf.int64.max, dtype=tf.int64, name="dropout_seed")
    calls = []

    def forward(inputs: tf.Tensor, mask: Optional[tf.Tensor], dropout_seed: Optional[tf.Tensor]) -> tf.Tensor:
        # The recomputation finds the variables the forward pass created.
        with tf.variable_scope(tf.get_variable_scope(), reuse=True if calls else None):
            calls.append(True)
            return layer(inputs, mask, dropout_seed=dropout_seed)

    # The seed is an input, not a captured tensor, for memory: the recomputation's inputs wait for the incoming
    # gradient, so its mask ops run late. Mask ops fed by the very same seed tensor could run early, or Grappler
    # could merge them with the forward pass's, keeping every mask alive until the backward pass.
    inputs = [tensor for tensor in (layer_input, attention_mask, seed) if tensor is not None]

    def forward_inputs(*tensors: tf.Tensor) -> tf.Tensor:
        given = iter(tensors)
        return forward(next(given), next(given) if attention_mask is not None else None,
                       next(given) if seed is not None else None)

    return _recompute_in_backward_pass(forward_inputs)(*inputs)


def _recompute_in_backward_pass(function: Callable[..., tf.Tensor]) -> Callable[..., tf.Tensor]:
    """`function` with a gradient that runs it again and backpropagates through the new copy.

    The copy's inputs are gated on the incoming gradient by control dependencies, so none of its ops can run
    before the backward pass reaches it (the graph executor runs an op as soon as its inputs are ready; an
    ungated copy would run during the forward pass and its activations would live until the backward pass).
    tf.recompute_grad gates them by adding `where(g == g, 0, nan)` of the gradient instead; in this graph mode
    that gate does not hold after Grappler (measured: its copy ran during the forward pass, memory 0.95x).
    """
    @tf.custom_gradient
    def call(*inputs: tf.Tensor):
        output = function(*inputs)
        scope = tf.get_variable_scope()  # tf.gradients calls `gradient` outside it

        def gradient(output_gradient: tf.Tensor, variables: Sequence[tf.Variable] = ()):
            with tf.control_dependencies([output_gradient]):
                gated = [tf.identity(tensor) for tensor in inputs]
            with tf.variable_scope(scope):
                recomputed = function(*gated)
            differentiable = [tensor for tensor in gated if tensor.dtype.is_floating]
            grads = tf.gradients(recomputed, differentiable + list(variables), grad_ys=output_gradient)
            by_input = iter(grads[:len(differentiable)])
            input_grads = [next(by_input) if tensor.dtype.is_floating else None for tensor in gated]
            return input_grads, grads[len(differentiable):]

        return output, gradient

    return call


def _transformer_layer(layer_input: tf.Tensor, attention_mask: Optional[tf.Tensor], batch_size: Dim,
                       seq_length: Dim, hidden_size: int, num_attention_heads: int, intermediate_size: int,
                       intermediate_act_fn: Activation, hidden_dropout_prob: float,
                       attention_probs_dropout_prob: float, initializer_range: float,
                       dropout_seed: Optional[tf.Tensor] = None) -> tf.Tensor:
    """One encoder layer: self-attention block, then feed-forward block, each with residual + layer norm.

    Args:
      layer_input: float32 Tensor [B*S, hidden_size].
      dropout_seed: optional int64 Tensor [2]; when given, the three dropouts are stateless, seeded from it.

    Returns:
      float32 Tensor [B*S, hidden_size].
    """
    initializer = create_initializer(initializer_range)
    site_seeds = [None if dropout_seed is None else tf.random.experimental.stateless_fold_in(dropout_seed, site)
                  for site in range(3)]
    with tf.variable_scope("attention"):
        with tf.variable_scope("self"):
            attention_heads = attention_layer(
                from_tensor=layer_input,
                to_tensor=layer_input,
                attention_mask=attention_mask,
                num_attention_heads=num_attention_heads,
                size_per_head=hidden_size // num_attention_heads,
                attention_probs_dropout_prob=attention_probs_dropout_prob,
                initializer_range=initializer_range,
                do_return_2d_tensor=True,
                batch_size=batch_size,
                from_seq_length=seq_length,
                to_seq_length=seq_length,
                dropout_seed=site_seeds[0])  # [B*S, hidden]
        with tf.variable_scope("output"):
            attention_output = _project_add_and_norm(attention_heads, layer_input, hidden_size,
                                                     hidden_dropout_prob, initializer, site_seeds[1])  # [B*S, hidden]
    with tf.variable_scope("intermediate"):
        intermediate_output = dense(attention_output, intermediate_size, intermediate_act_fn,
                                    initializer)  # [B*S, intermediate]
    with tf.variable_scope("output"):
        return _project_add_and_norm(intermediate_output, attention_output, hidden_size, hidden_dropout_prob,
                                     initializer, site_seeds[2])  # [B*S, hidden]


def _project_add_and_norm(input_tensor: tf.Tensor, residual: tf.Tensor, hidden_size: int, dropout_prob: float,
                          initializer: Initializer, dropout_seed: Optional[tf.Tensor] = None) -> tf.Tensor:
    """layer_norm(dropout(dense(input)) + residual): the output half of each sub-layer.

    Args:
      input_tensor: float32 Tensor [rows, width].
      residual: float32 Tensor [rows, hidden_size].

    Returns:
      float32 Tensor [rows, hidden_size].
    """
    projected = dropout(dense(input_tensor, hidden_size, kernel_initializer=initializer), dropout_prob, dropout_seed)
    return layer_norm(projected + residual)


# ----------------------------------------------------------------------------------------------------------------
# Shape helpers
# ----------------------------------------------------------------------------------------------------------------


def get_shape_list(tensor: tf.Tensor, expected_rank: Union[int, Sequence[int], None] = None,
                   name: Optional[str] = None) -> List[Dim]:
    """The shape of `tensor` as a list: Python ints for static dimensions, scalar Tensors for dynamic ones.

    Raises:
      ValueError: `expected_rank` is given and the rank differs.
    """
    if name is None:
        name = tensor.name
    if expected_rank is not None:
        assert_rank(tensor, expected_rank, name)

    shape = tensor.shape.as_list()
    dynamic_indexes = [index for index, dim in enumerate(shape) if dim is None]
    if dynamic_indexes:
        dynamic_shape = tf.shape(tensor)
        for index in dynamic_indexes:
            shape[index] = dynamic_shape[index]
    return shape


def reshape_to_matrix(input_tensor: tf.Tensor) -> tf.Tensor:
    """[d0, ..., dn, width] -> [d0*...*dn, width]; a matrix is returned unchanged.

    Raises:
      ValueError: rank < 2.
    """
    ndims = input_tensor.shape.ndims
    if ndims < 2:
        raise ValueError(f"Input tensor must have at least rank 2. Shape = {input_tensor.shape}")
    if ndims == 2:
        return input_tensor
    return tf.reshape(input_tensor, [-1, input_tensor.shape[-1]])


def reshape_from_matrix(output_tensor: tf.Tensor, orig_shape_list: List[Dim]) -> tf.Tensor:
    """Undoes reshape_to_matrix: [rows, width] -> orig_shape_list[:-1] + [width]."""
    if len(orig_shape_list) == 2:
        return output_tensor
    width = get_shape_list(output_tensor)[-1]
    return tf.reshape(output_tensor, list(orig_shape_list[:-1]) + [width])


def assert_rank(tensor: tf.Tensor, expected_rank: Union[int, Sequence[int]], name: Optional[str] = None) -> None:
    """Checks a tensor's static rank.

    Args:
      expected_rank: an int or a list of allowed ints.
      name: name for the message; default the tensor's name.

    Raises:
      ValueError: the rank is not one of the expected ones.
    """
    if name is None:
        name = tensor.name
    allowed_ranks = {expected_rank} if isinstance(expected_rank, int) else set(expected_rank)
    actual_rank = tensor.shape.ndims
    if actual_rank not in allowed_ranks:
        scope_name = tf.get_variable_scope().name
        raise ValueError(f"For the tensor `{name}` in scope `{scope_name}`, the actual rank `{actual_rank}` "
                         f"(shape = {tensor.shape}) is not equal to the expected rank `{expected_rank}`")
