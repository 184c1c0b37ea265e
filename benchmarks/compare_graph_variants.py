"""Candidate rewrites of the encoder graph, each measured on its own against the original graph, back to back in
one process (issue 27, "take it back"):

  fast_kernels      the package's --fast_kernels (modeling.fused_gelu): GELU as tf.nn.gelu(approximate=True),
                    the same formula, which oneDNN's graph rewrite fuses into the preceding matrix product when
                    predicting (a training step's backward pass needs the product alone, which keeps them apart)
  layer_norm_fused  layer normalisation as one FusedBatchNormV3 over [1, rows, width, 1] (Keras' trick), then
                    the learned scale and offset, which oneDNN's rewrite makes one _MklLayerNorm when predicting
  fused_qkv         the query, key and value projections as one matrix product (the three kernels concatenated
                    at run time, so the variables and checkpoints stay the original's) and one transpose
  einsum_attention  attention's two batched products as einsums over the heads where the projections leave them
                    ([B, S, N, H]): no transposes in the graph (oneDNN's _MklEinsum does them inside)
  all               fast_kernels, layer_norm_fused and fused_qkv together
  fast_kernels_einsum  fast_kernels and einsum_attention together

Nothing here changes the package: the variants replace `bert.modeling` functions while their graph is built.

    cd benchmarks && python compare_graph_variants.py --mode=predict --batch_size=1 --seq_length=50
    cd benchmarks && python compare_graph_variants.py --mode=train --batch_size=32 --seq_length=128

`predict` runs the encoder on fixed token ids with the converted MiniLM's weights (--init_checkpoint) and prints
each variant's largest difference from the original graph's pooled output; `train` times the benchmark's
fine-tuning step (random weights; dropout makes single steps incomparable, so no difference is printed). The
variants alternate in --rounds rounds; the median time of each is printed with its ratio to the original's.
"""

import contextlib
import math
import os
import statistics
import time
from typing import Callable, Dict, Iterator, Optional

import numpy as np
import tensorflow.compat.v1 as tf
from absl import app, flags

import throughput
from bert import modeling
from bert.runtime.performance import PerformanceSettings

FLAGS = flags.FLAGS
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANTS = ("original", "fast_kernels", "layer_norm_fused", "fused_qkv", "einsum_attention", "all",
            "fast_kernels_einsum")

flags.DEFINE_enum("mode", "predict", ["predict", "train"], "Encoder forward pass, or the whole training step.")
flags.DEFINE_list("variants", list(VARIANTS), "Variants to compare; the first is the baseline.")
flags.DEFINE_integer("batch_size", 1, "Examples per run.")
flags.DEFINE_integer("seq_length", 50, "Tokens per example.")
flags.DEFINE_integer("rounds", 10, "Rounds; each round runs every variant --runs_per_round times.")
flags.DEFINE_integer("runs_per_round", 20, "Timed runs of a variant in a row.")
flags.DEFINE_string("init_checkpoint", os.path.join(REPO_ROOT, "runs", "minilm_l6_h384_uncased", "bert_model.ckpt"),
                    "predict: the weights (the main job's converted MiniLM).")
flags.DEFINE_string("bert_config_file",
                    os.path.join(REPO_ROOT, "runs", "minilm_l6_h384_uncased", "bert_config.json"),
                    "predict: its configuration.")


def layer_norm_fused(input_tensor: tf.Tensor, name: Optional[str] = None) -> tf.Tensor:
    width = input_tensor.shape[-1]
    with tf.variable_scope(name, default_name="LayerNorm"):
        beta = tf.get_variable("beta", shape=[width], initializer=tf.zeros_initializer())
        gamma = tf.get_variable("gamma", shape=[width], initializer=tf.ones_initializer())
        shape = tf.shape(input_tensor)
        rows = tf.reduce_prod(shape[:-1])
        normalized, _, _ = tf.nn.fused_batch_norm(
            tf.reshape(input_tensor, [1, rows, width, 1]), tf.ones([rows]), tf.zeros([rows]),
            epsilon=modeling.LAYER_NORM_EPSILON, data_format="NCHW", is_training=True)
        normalized = tf.reshape(normalized, shape)
        normalized.set_shape(input_tensor.shape)
        return normalized * gamma + beta


def fused_qkv_attention(from_tensor: tf.Tensor, to_tensor: tf.Tensor, attention_mask: Optional[tf.Tensor] = None,
                        num_attention_heads: int = 1, size_per_head: int = 512,
                        attention_probs_dropout_prob: float = 0.0, initializer_range: float = 0.02,
                        do_return_2d_tensor: bool = False, batch_size=None, from_seq_length=None,
                        to_seq_length=None, dropout_seed=None, **unused) -> tf.Tensor:
    """Self-attention only (from_tensor is to_tensor), rank-2 input, as the encoder layers call it."""
    width = num_attention_heads * size_per_head
    initializer = modeling.create_initializer(initializer_range)
    kernels, biases = [], []
    for name in ("query", "key", "value"):
        with tf.variable_scope(name):
            kernels.append(tf.get_variable("kernel", [from_tensor.shape[-1], width], initializer=initializer))
            biases.append(tf.get_variable("bias", [width], initializer=tf.zeros_initializer()))
    projected = tf.nn.bias_add(tf.matmul(from_tensor, tf.concat(kernels, axis=1)), tf.concat(biases, axis=0))
    projected = tf.reshape(projected, [batch_size, from_seq_length, 3, num_attention_heads, size_per_head])
    query, key, value = tf.unstack(tf.transpose(projected, [2, 0, 3, 1, 4]))  # each [B, N, S, H]
    scores = tf.matmul(query, key, transpose_b=True) * (1.0 / math.sqrt(float(size_per_head)))
    if attention_mask is not None:
        mask = tf.cast(tf.expand_dims(attention_mask, axis=1), tf.float32)
        scores += (1.0 - mask) * modeling.MASKED_SCORE_PENALTY
    probs = modeling.dropout(tf.nn.softmax(scores), attention_probs_dropout_prob, dropout_seed)
    context = tf.transpose(tf.matmul(probs, value), [0, 2, 1, 3])  # [B, S, N, H]
    return tf.reshape(context, [batch_size * from_seq_length, width])


def einsum_attention(from_tensor: tf.Tensor, to_tensor: tf.Tensor, attention_mask: Optional[tf.Tensor] = None,
                     num_attention_heads: int = 1, size_per_head: int = 512,
                     attention_probs_dropout_prob: float = 0.0, initializer_range: float = 0.02,
                     do_return_2d_tensor: bool = False, batch_size=None, from_seq_length=None,
                     to_seq_length=None, dropout_seed=None, **unused) -> tf.Tensor:
    """Rank-2 inputs, as the encoder layers call it: the heads stay where the projections put them ([B, S, N, H])
    and two einsums contract over them, with no transposes written in the graph."""
    width = num_attention_heads * size_per_head
    initializer = modeling.create_initializer(initializer_range)
    heads = {}
    for name, tensor, length in (("query", from_tensor, from_seq_length), ("key", to_tensor, to_seq_length),
                                 ("value", to_tensor, to_seq_length)):
        projected = modeling.dense(tensor, width, None, initializer, name=name)
        heads[name] = tf.reshape(projected, [batch_size, length, num_attention_heads, size_per_head])
    scores = tf.einsum("bfnh,btnh->bnft", heads["query"], heads["key"]) * (1.0 / math.sqrt(float(size_per_head)))
    if attention_mask is not None:
        mask = tf.cast(tf.expand_dims(attention_mask, axis=1), tf.float32)
        scores += (1.0 - mask) * modeling.MASKED_SCORE_PENALTY
    probs = modeling.dropout(tf.nn.softmax(scores), attention_probs_dropout_prob, dropout_seed)
    context = tf.einsum("bnft,btnh->bfnh", probs, heads["value"])
    return tf.reshape(context, [batch_size * from_seq_length, width])


@contextlib.contextmanager
def variant_graph(variant: str) -> Iterator[None]:
    """Replaces the modeling functions the variant rewrites while its graph is built."""
    replaced = {}
    if variant in ("fast_kernels", "all", "fast_kernels_einsum"):
        replaced["_ACTIVATIONS"] = dict(modeling._ACTIVATIONS, gelu=modeling.fused_gelu)
    if variant in ("layer_norm_fused", "all"):
        replaced["layer_norm"] = layer_norm_fused
    if variant in ("fused_qkv", "all"):
        replaced["attention_layer"] = fused_qkv_attention
    if variant in ("einsum_attention", "fast_kernels_einsum"):
        replaced["attention_layer"] = einsum_attention
    originals = {name: getattr(modeling, name) for name in replaced}
    for name, value in replaced.items():
        setattr(modeling, name, value)
    try:
        yield
    finally:
        for name, value in originals.items():
            setattr(modeling, name, value)


def build_predict(variant: str, config: modeling.BertConfig, init_checkpoint: str, batch_size: int,
                  seq_length: int) -> Callable[[], np.ndarray]:
    """A function running the variant's encoder on fixed ids with the checkpoint's weights: the pooled output."""
    ids = np.random.RandomState(0).randint(1000, config.vocab_size, [batch_size, seq_length])
    graph = tf.Graph()
    with graph.as_default(), variant_graph(variant):
        model = modeling.BertModel(config, is_training=False, input_ids=tf.constant(ids, tf.int32),
                                   input_mask=tf.ones_like(ids, tf.int32), token_type_ids=tf.zeros_like(ids, tf.int32))
        tf.train.init_from_checkpoint(init_checkpoint, {"bert/": "bert/"})
        output = model.get_pooled_output()
        session = tf.Session(graph=graph)
        session.run(tf.global_variables_initializer())
    return lambda: session.run(output)


def build_train(variant: str, batch_size: int, seq_length: int) -> Callable[[], None]:
    """A function running one step of the benchmark's MiniLM fine-tuning (random weights) with the variant."""
    config = throughput.preset_config("minilm_l6_h384")
    graph = tf.Graph()
    with graph.as_default(), variant_graph(variant):
        tf.set_random_seed(0)
        step = throughput.training_step_builder(config, batch_size, seq_length, PerformanceSettings())()
        session = tf.Session(graph=graph)
        session.run([tf.global_variables_initializer(), tf.local_variables_initializer()])
    return lambda: session.run(step)


def main(_):
    unknown = [name for name in FLAGS.variants if name not in VARIANTS]
    if unknown:
        raise app.UsageError(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    if FLAGS.mode == "predict":
        config = modeling.BertConfig.from_json_file(FLAGS.bert_config_file)
        runs: Dict[str, Callable] = {
            name: build_predict(name, config, FLAGS.init_checkpoint, FLAGS.batch_size, FLAGS.seq_length)
            for name in FLAGS.variants}
    else:
        runs = {name: build_train(name, FLAGS.batch_size, FLAGS.seq_length) for name in FLAGS.variants}
    baseline = FLAGS.variants[0]
    reference = runs[baseline]() if FLAGS.mode == "predict" else None
    for run in runs.values():  # warm-up
        for _ in range(3):
            run()
    seconds = {name: [] for name in runs}
    for _ in range(FLAGS.rounds):
        for name, run in runs.items():
            for _ in range(FLAGS.runs_per_round):
                start = time.perf_counter()
                run()
                seconds[name].append(time.perf_counter() - start)
    print(f"\n{FLAGS.mode}, batch {FLAGS.batch_size}, length {FLAGS.seq_length}; "
          f"{FLAGS.rounds} rounds x {FLAGS.runs_per_round} runs")
    print("| variant | median ms | vs " + baseline + " | largest difference |")
    print("|---|---|---|---|")
    base = statistics.median(seconds[baseline])
    for name, run in runs.items():
        median = statistics.median(seconds[name])
        difference = f"{np.abs(run() - reference).max():.1e}" if reference is not None else "-"
        print(f"| {name} | {1e3 * median:.1f} | {median / base:.3f}x | {difference} |")


if __name__ == "__main__":
    app.run(main)
