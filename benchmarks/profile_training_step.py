"""Where a training step's time goes: one fine-tuning step of the classifier (the benchmark's graph: BERT, the
classification head, AdamWeightDecay), traced op by op, at each of --seq_lengths.

    python benchmarks/profile_training_step.py --preset=minilm_l6_h384 --batch_size=32 --seq_lengths=128,64

For each length: the median untraced step, then the traced op time by part of the step (forward, backward,
optimizer update) and by kind of work, each with its share; a trace's own overhead makes its total a little larger
than the untraced step. Compare the shares with the FLOP floor printed beside them.
"""

import collections
import statistics
import time
from typing import Set, Tuple

import tensorflow.compat.v1 as tf
from absl import app, flags

import throughput
from bert.runtime.performance import PerformanceSettings

FLAGS = flags.FLAGS

flags.DEFINE_enum("preset", "minilm_l6_h384", list(throughput.PRESETS), "Architecture to profile.")
flags.DEFINE_integer("batch_size", 32, "Examples per step.")
flags.DEFINE_list("seq_lengths", ["128", "64"], "Sequence lengths to profile (128: the fixed length of the MRPC "
                  "runs; shorter: what --dynamic_padding batches are cut to).")
flags.DEFINE_integer("steps", 5, "Untimed warm-up steps, then as many timed and as many traced steps.")

# Kinds of work, by op type (oneDNN's fused ops included); the rest is "other".
_KINDS = (
    ("matrix products", ("MatMul", "BatchMatMul", "Einsum")),
    ("transposes and reshapes", ("Transpose", "Reshape")),
    ("softmax", ("Softmax",)),
    ("embeddings (gather, scatter)", ("Gather", "UnsortedSegmentSum", "ScatterAdd")),
    ("dropout (random numbers)", ("Random", "Stateless")),
    ("element-wise (layer norm, GELU, residuals, optimizer arithmetic)",
     ("Mul", "Add", "Sub", "Square", "SquaredDifference", "Mean", "Tanh", "Rsqrt", "Sqrt", "RealDiv", "Pow",
      "Sum", "Maximum", "Minimum", "Neg", "Select", "Cast", "Greater", "Less", "Tile", "BroadcastTo", "BiasAddGrad",
      "TanhGrad", "RsqrtGrad", "Fill")),
    ("variable reads and writes", ("ReadVariableOp", "VarHandleOp", "AssignVariableOp", "Assign", "Identity")),
)


def _op_type(node_stats) -> str:
    label = node_stats.timeline_label
    return label.split("=", 1)[1].split("(", 1)[0].strip() if "=" in label else node_stats.node_name


def _kind(op_type: str) -> str:
    for kind, markers in _KINDS:
        if any(marker in op_type for marker in markers):
            return kind
    return "other"


def _optimizer_ops(graph: tf.Graph) -> Set[str]:
    """The ops that use a gradient outside the gradients/ scope: clipping and the optimizer's update."""
    found, frontier = set(), [op for op in graph.get_operations() if op.name.startswith("gradients")]
    while frontier:
        for consumer in {c for output in frontier.pop().outputs for c in output.consumers()}:
            if not consumer.name.startswith("gradients") and consumer.name not in found:
                found.add(consumer.name)
                frontier.append(consumer)
    return found


def _part(node_name: str, optimizer_ops: Set[str]) -> str:
    if node_name.startswith("gradients"):
        return "backward"
    return "optimizer update" if node_name in optimizer_ops else "forward"


def profile(seq_length: int) -> Tuple[float, collections.Counter, collections.Counter]:
    config = throughput.preset_config(FLAGS.preset)
    build = throughput.training_step_builder(config, FLAGS.batch_size, seq_length, PerformanceSettings())
    with tf.Graph().as_default() as graph:
        tf.set_random_seed(0)
        step = build()
        initializers = [tf.global_variables_initializer(), tf.local_variables_initializer()]
        optimizer_ops = _optimizer_ops(graph)
        graph.finalize()
        with tf.Session(graph=graph) as session:
            session.run(initializers)
            for _ in range(FLAGS.steps):
                session.run(step)
            durations = []
            for _ in range(FLAGS.steps):
                start = time.perf_counter()
                session.run(step)
                durations.append(time.perf_counter() - start)
            by_part, by_kind = collections.Counter(), collections.Counter()
            for _ in range(FLAGS.steps):
                metadata = tf.RunMetadata()
                session.run(step, options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE), run_metadata=metadata)
                for device in metadata.step_stats.dev_stats:
                    for node in device.node_stats:
                        micros = node.op_end_rel_micros - node.op_start_rel_micros
                        by_part[_part(node.node_name, optimizer_ops)] += micros
                        by_kind[_kind(_op_type(node))] += micros
    return statistics.median(durations), by_part, by_kind


def _table(title: str, counter: collections.Counter) -> None:
    total = sum(counter.values())
    print(f"| {title} | ms per step | share |")
    print("|---|---|---|")
    for name, micros in counter.most_common():
        print(f"| {name} | {micros / FLAGS.steps / 1e3:.1f} | {micros / total:.0%} |")
    print()


def main(_):
    config = throughput.preset_config(FLAGS.preset)
    for seq_length in [int(value) for value in FLAGS.seq_lengths]:
        seconds, by_part, by_kind = profile(seq_length)
        floor = throughput.training_flops_per_example(config, seq_length) * FLAGS.batch_size
        print(f"## {FLAGS.preset}, batch {FLAGS.batch_size}, length {seq_length}: step {seconds * 1e3:.0f} ms "
              f"untraced ({FLAGS.batch_size / seconds:.1f} examples/s), {floor / 1e9:.0f} GFLOP per step "
              f"({floor / seconds / 1e9:.0f} GFLOP/s)\n")
        _table("part of the step", by_part)
        _table("kind of work", by_kind)


if __name__ == "__main__":
    app.run(main)
