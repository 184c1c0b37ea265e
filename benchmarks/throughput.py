"""Throughput of BERT fine-tuning and inference on the installed device, against the device's matmul peak.

A training step here is the classifier's (the encoder, pooler and a 2-way head, AdamWeightDecay with clipping),
built with the same `create_optimizer` and session options the task scripts use, so each opt-in feature of
`bert.runtime.performance` is measured as it runs there. Inputs are random ids held in device memory: the numbers
exclude the input pipeline, checkpointing and Estimator overhead.

FLOPs count multiply-adds as 2 and only the matrix products (which are nearly all of BERT's arithmetic); a
training step counts 3x the forward pass (the backward pass computes two products per forward one).
"""

import dataclasses
import os
import resource
import sys
import time
import types
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import tensorflow.compat.v1 as tf

import harness
from bert import modeling, optimization
from bert.classifier import model as classifier_model
from bert.runtime import performance
from bert.runtime.performance import PerformanceSettings

# Architectures to benchmark without a bert_config.json at hand.
PRESETS: Dict[str, Dict[str, int]] = {
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, vocab_size=99),
    "minilm_l6_h384": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
}
NUM_LABELS = 2


def preset_config(name: str) -> modeling.BertConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    values = dict(vocab_size=30522, max_position_embeddings=512)
    values.update(PRESETS[name])
    return modeling.BertConfig(**values)


def forward_flops_per_example(config: modeling.BertConfig, seq_length: int, num_labels: int = NUM_LABELS) -> float:
    """Matrix-product FLOPs of one example's forward pass through the encoder, pooler and classifier."""
    s, h, i = seq_length, config.hidden_size, config.intermediate_size
    projections = 2 * s * h * (4 * h + 2 * i)  # query, key, value, attention output; intermediate and output
    attention = 2 * 2 * s * s * h  # scores (Q K^T) and context (P V), over all heads
    token_types = 2 * s * config.type_vocab_size * h  # the token-type embeddings are a one-hot matrix product
    return float(config.num_hidden_layers * (projections + attention) + token_types + 2 * h * h + 2 * h * num_labels)


def training_flops_per_example(config: modeling.BertConfig, seq_length: int) -> float:
    return 3.0 * forward_flops_per_example(config, seq_length)


@dataclasses.dataclass
class Measurement:
    examples_per_second: float
    seconds_per_run: float
    flops_per_example: float

    @property
    def flops_per_second(self) -> float:
        return self.examples_per_second * self.flops_per_example


def time_runs(session: tf.Session, op, num_runs: int, num_warmup_runs: int) -> float:
    """Median seconds of one `session.run(op)` over `num_runs`, after `num_warmup_runs` (graph rewrites, XLA)."""
    if num_runs < 1:
        raise ValueError(f"num_runs must be >= 1, got {num_runs}")
    for _ in range(num_warmup_runs):
        session.run(op)
    durations = []
    for _ in range(num_runs):
        start = time.perf_counter()
        session.run(op)
        durations.append(time.perf_counter() - start)
    return float(np.median(durations))


def measure(build_op: Callable[[], tf.Operation], examples_per_run: int, flops_per_example: float,
            config: Optional[tf.ConfigProto], num_runs: int = 10, num_warmup_runs: int = 3) -> Measurement:
    """Builds `build_op()` in a new graph and times it; each run processes `examples_per_run` examples."""
    with tf.Graph().as_default() as graph:
        tf.set_random_seed(0)
        op = build_op()
        initializers = [tf.global_variables_initializer(), tf.local_variables_initializer()]
        graph.finalize()
        with tf.Session(graph=graph, config=config) as session:
            session.run(initializers)
            seconds = time_runs(session, op, num_runs, num_warmup_runs)
    return Measurement(examples_per_run / seconds, seconds, flops_per_example)


def _random_inputs(config: modeling.BertConfig, batch_size: int, seq_length: int) -> Dict[str, tf.Tensor]:
    """int32 [batch_size, seq_length] ids, mask and segments (and [batch_size] labels), in variables."""

    # Global (not local) variables: tf.custom_gradient (gradient_checkpointing) looks every variable its backward
    # pass reads up among the global ones, and fails on one it cannot find.
    def constant(name, values):
        return tf.get_variable(name, initializer=tf.constant(values), dtype=tf.as_dtype(values.dtype),
                               trainable=False)

    rng = np.random.RandomState(0)
    return {
        "input_ids": constant("input_ids", rng.randint(0, config.vocab_size, (batch_size, seq_length), np.int32)),
        "input_mask": constant("input_mask", np.ones((batch_size, seq_length), np.int32)),
        "segment_ids": constant("segment_ids", (np.arange(seq_length) >= seq_length // 2).astype(np.int32)
                                [None, :].repeat(batch_size, 0)),
        "label_ids": constant("label_ids", rng.randint(0, NUM_LABELS, batch_size).astype(np.int32)),
    }


@dataclasses.dataclass(frozen=True)
class Implementation:
    """The modules a benchmark builds its graph from: this package's, or the original release's (`load_original`)."""

    name: str
    modeling: types.ModuleType
    optimization: types.ModuleType

    @property
    def is_ours(self) -> bool:
        return self.modeling is modeling


OURS = Implementation("ours", modeling, optimization)


def load_original(bert_dir: str) -> Implementation:
    """Imports modeling.py and optimization.py of a checkout of the original release (google-research/bert).

    They were written for TensorFlow 1.x and say `import tensorflow as tf`; while they load, that name gives them
    `original_code.tensorflow1_stand_in()` (`tensorflow.compat.v1` plus the `tf.contrib` members they use, such as
    `layers.layer_norm`, served by this package's equivalent). Nothing of theirs is changed.
    """
    paths = {name: os.path.join(bert_dir, name + ".py") for name in ("modeling", "optimization")}
    for path in paths.values():
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} not found: --original_bert_dir must be a checkout of google-research/bert")
    original_code = harness.original_code()
    tf1 = original_code.tensorflow1_stand_in()
    modules = {name: original_code.load_module(path, f"original_bert_{name}", tf1) for name, path in paths.items()}
    return Implementation("original", modules["modeling"], modules["optimization"])


def _classifier_outputs(implementation: Implementation, config: modeling.BertConfig, features: Dict[str, tf.Tensor],
                        is_training: bool, gradient_checkpointing: bool = False) -> Tuple[tf.Tensor, tf.Tensor]:
    """(mean loss, probabilities) of the classifier's graph: BERT, dropout on the pooled vector, a linear layer."""
    if implementation.is_ours:
        loss, _, _, probabilities = classifier_model.create_model(
            config, is_training, features["input_ids"], features["input_mask"], features["segment_ids"],
            features["label_ids"], NUM_LABELS, use_one_hot_embeddings=False,
            gradient_checkpointing=gradient_checkpointing)
        return loss, probabilities
    # The original's run_classifier.create_model, which cannot be imported without its flags.
    model = implementation.modeling.BertModel(
        config=config, is_training=is_training, input_ids=features["input_ids"], input_mask=features["input_mask"],
        token_type_ids=features["segment_ids"], use_one_hot_embeddings=False)
    pooled = model.get_pooled_output()
    weights = tf.get_variable("output_weights", [NUM_LABELS, config.hidden_size],
                              initializer=tf.truncated_normal_initializer(stddev=0.02))
    bias = tf.get_variable("output_bias", [NUM_LABELS], initializer=tf.zeros_initializer())
    if is_training:
        pooled = tf.nn.dropout(pooled, rate=0.1)
    logits = tf.nn.bias_add(tf.matmul(pooled, weights, transpose_b=True), bias)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=features["label_ids"], logits=logits))
    return loss, tf.nn.softmax(logits)


def training_step_builder(config: modeling.BertConfig, batch_size: int, seq_length: int,
                          settings: PerformanceSettings,
                          implementation: Implementation = OURS) -> Callable[[], tf.Operation]:
    """One run = a micro-batch of `batch_size` on each replica (an update every `num_accumulation_steps` runs)."""
    new_arguments = {}
    if implementation.is_ours:
        new_arguments = dict(num_accumulation_steps=settings.num_accumulation_steps,
                             loss_scaling=settings.uses_loss_scaling, optimizer=settings.optimizer)

    def replica_step():
        # As a task's model_fn and train_spec do with the run's settings.
        features = _random_inputs(config, batch_size, seq_length)
        loss, _ = _classifier_outputs(implementation, config, features, is_training=True,
                                      gradient_checkpointing=settings.gradient_checkpointing)
        return implementation.optimization.create_optimizer(loss, 5e-5, 10 ** 6, 100, False, **new_arguments)

    def build_op():
        strategy = performance.make_distribution_strategy(settings)
        if strategy is None:
            return replica_step()
        with strategy.scope():
            tf.train.get_or_create_global_step()
            return strategy.group(strategy.extended.call_for_each_replica(replica_step))

    return build_op


def inference_builder(config: modeling.BertConfig, batch_size: int, seq_length: int,
                      implementation: Implementation = OURS) -> Callable[[], tf.Tensor]:
    """One run = the class probabilities of `batch_size` examples."""

    def build_op():
        features = _random_inputs(config, batch_size, seq_length)
        return _classifier_outputs(implementation, config, features, is_training=False)[1]

    return build_op


def check_supported(settings: PerformanceSettings, implementation: Implementation) -> None:
    """The original has none of the training-step features; only session options (bf16, XLA) apply to it."""
    settings.validate()
    if not implementation.is_ours and (settings.num_accumulation_steps != 1 or settings.is_distributed
                                       or settings.uses_loss_scaling or settings.gradient_checkpointing
                                       or settings.optimizer != "adamw"):
        raise ValueError("the original implementation has no gradient accumulation, distribution strategy, loss "
                         "scaling, gradient checkpointing or LAMB; benchmark it with fp32 or bf16 and optionally "
                         "XLA")


def num_replicas(settings: PerformanceSettings) -> int:
    strategy = performance.make_distribution_strategy(settings)
    return 1 if strategy is None else strategy.num_replicas_in_sync


def measure_training(config: modeling.BertConfig, batch_size: int, seq_length: int, settings: PerformanceSettings,
                     num_runs: int = 10, num_warmup_runs: int = 3,
                     implementation: Implementation = OURS) -> Measurement:
    """Training examples/s with updates of `batch_size` examples, split as the task scripts split train_batch_size:
    into `num_accumulation_steps` micro-batches, each shared by the replicas."""
    check_supported(settings, implementation)
    parts = settings.num_accumulation_steps * num_replicas(settings)
    if batch_size % parts:
        raise ValueError(f"batch_size {batch_size} cannot be split into {settings.num_accumulation_steps} "
                         f"micro-batches x {parts // settings.num_accumulation_steps} replicas")
    micro_batch_size = batch_size // parts
    return measure(training_step_builder(config, micro_batch_size, seq_length, settings, implementation),
                   batch_size // settings.num_accumulation_steps, training_flops_per_example(config, seq_length),
                   performance.session_config(settings), num_runs, num_warmup_runs)


def measure_inference(config: modeling.BertConfig, batch_size: int, seq_length: int, settings: PerformanceSettings,
                      num_runs: int = 10, num_warmup_runs: int = 3,
                      implementation: Implementation = OURS) -> Measurement:
    """Prediction examples/s (precision and XLA apply; inference runs on one device)."""
    settings.validate()
    single_device = dataclasses.replace(settings, distribution_strategy="none", num_accumulation_steps=1)
    return measure(inference_builder(config, batch_size, seq_length, implementation), batch_size,
                   forward_flops_per_example(config, seq_length), performance.session_config(single_device),
                   num_runs, num_warmup_runs)


def peak_rss_bytes() -> int:
    """The peak resident memory of this whole process so far (getrusage counts KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def matmul_dtype(precision: str) -> tf.DType:
    """The dtype the precision's matrix products run in on this machine (float16 is only emulated on CPU)."""
    if precision == "bf16":
        return tf.bfloat16
    if precision == "fp16" and tf.config.list_physical_devices("GPU"):
        return tf.float16
    return tf.float32


def measure_matmul_peak(dtype: tf.DType = tf.float32, size: int = 2048, num_runs: int = 5,
                        num_warmup_runs: int = 2) -> float:
    """FLOP/s of `size` x `size` matrix products in `dtype`: the practical peak the model is compared with."""

    def build_op():
        def matrix(name):
            values = np.random.RandomState(len(name)).standard_normal((size, size)).astype(np.float32)
            return tf.cast(tf.get_variable(name, initializer=tf.constant(values), trainable=False), dtype)

        a, b = matrix("a"), matrix("bb")
        # Four products per run so the session's per-run overhead is small; the sum keeps them all alive.
        products = [tf.matmul(a + tf.cast(k, dtype), b) for k in range(4)]
        return tf.add_n([tf.reduce_sum(tf.cast(p, tf.float32)) for p in products])

    flops_per_run = 4 * 2.0 * size ** 3
    result = measure(build_op, 1, flops_per_run, None, num_runs, num_warmup_runs)
    return result.flops_per_second
