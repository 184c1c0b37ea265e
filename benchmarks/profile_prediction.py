"""Where one prediction request's time goes: the Predictor's model on one MRPC pair, traced op by op.

    python benchmarks/profile_prediction.py --run_dir=runs/mrpc_minilm [--fast_kernels]

Prints the median untraced latency of the model run (tokenization excluded), then the traced time per op type
(summed over --steps traced runs, shown per run) with the op count per run; a trace's own overhead makes its total
a little larger than the untraced run.
"""

import collections
import os
import statistics
import time

import numpy as np
import tensorflow.compat.v1 as tf
from absl import app, flags

from bert.runtime.encoding import encode_text
from bert.serving.predictor import Predictor

FLAGS = flags.FLAGS
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

flags.DEFINE_string("run_dir", os.path.join(REPO_ROOT, "runs", "mrpc_minilm"), "A fine-tuned MRPC run's output_dir.")
flags.DEFINE_string("text_a", "Amrozi accused his brother, whom he called \"the witness\", of deliberately "
                              "distorting his evidence.", "The request's first text.")
flags.DEFINE_string("text_b", "Referring to him as only \"the witness\", Amrozi accused his brother of "
                              "deliberately distorting his evidence.", "The request's second text.")
flags.DEFINE_integer("steps", 50, "Untimed warm-up runs, then as many timed and as many traced runs.")
flags.DEFINE_bool("fast_kernels", False, "Profile the model built with fast kernels (Predictor.load's option).")


def _op_type(node_stats) -> str:
    """The op type of a traced node: its timeline label reads "name = Type(inputs)"."""
    label = node_stats.timeline_label
    return label.split("=", 1)[1].split("(", 1)[0].strip() if "=" in label else node_stats.node_name


def main(_):
    predictor = Predictor.load(FLAGS.run_dir, FLAGS.fast_kernels)
    encoded = encode_text(predictor.tokenizer, FLAGS.text_a, FLAGS.text_b, predictor.description.max_seq_length)
    length = sum(encoded.input_mask)
    model = predictor._model  # the profile looks inside on purpose
    feed = {model.inputs[name]: np.array([getattr(encoded, name)[:length]], np.int32) for name in model.inputs}
    for _ in range(FLAGS.steps):
        model.session.run(model.outputs, feed)
    latencies = []
    for _ in range(FLAGS.steps):
        start = time.perf_counter()
        model.session.run(model.outputs, feed)
        latencies.append(time.perf_counter() - start)
    time_by_type, count_by_type = collections.Counter(), collections.Counter()
    for _ in range(FLAGS.steps):
        metadata = tf.RunMetadata()
        model.session.run(model.outputs, feed, options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE),
                          run_metadata=metadata)
        for device in metadata.step_stats.dev_stats:
            for node in device.node_stats:
                time_by_type[_op_type(node)] += node.op_end_rel_micros - node.op_start_rel_micros
                count_by_type[_op_type(node)] += 1
    total = sum(time_by_type.values())
    print(f"one request of {length} tokens: model run p50 {statistics.median(latencies) * 1e3:.2f} ms untraced; "
          f"traced op time {total / FLAGS.steps / 1e3:.2f} ms in {sum(count_by_type.values()) / FLAGS.steps:.0f} ops")
    print("| op type | ms per run | share | ops per run |")
    print("|---|---|---|---|")
    for op_type, micros in time_by_type.most_common(15):
        print(f"| {op_type} | {micros / FLAGS.steps / 1e3:.2f} | {micros / total:.0%} | "
              f"{count_by_type[op_type] / FLAGS.steps:.0f} |")


if __name__ == "__main__":
    app.run(main)
