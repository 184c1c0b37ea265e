#!/usr/bin/env python
"""[New] Training and inference examples/s of BERT on this machine, model FLOP/s and its share of the matmul peak.

Prints one markdown table row per run (and optionally appends a JSON line), e.g.
  python benchmarks/benchmark.py --preset=minilm_l6_h384 --max_seq_length=128 --batch_size=32 --precision=bf16
"""

import json

import tensorflow.compat.v1 as tf
from absl import app, flags

import throughput
from bert import modeling
from bert.runtime import flags as common_flags
from bert.runtime.performance import PerformanceSettings

flags.DEFINE_string("bert_config_file", None, "Architecture to measure; overrides --preset.")
flags.DEFINE_enum("preset", "minilm_l6_h384", list(throughput.PRESETS), "Architecture when no config file is given.")
flags.DEFINE_integer("max_seq_length", 128, "Sequence length of the synthetic examples.")
flags.DEFINE_integer("batch_size", 32, "Examples per training update (train_batch_size) and per prediction batch.")
flags.DEFINE_enum("mode", "both", ["train", "predict", "both"], "What to measure.")
flags.DEFINE_integer("num_runs", 10, "Timed session runs (the median is reported).")
flags.DEFINE_integer("num_warmup_runs", 3, "Untimed runs first (graph rewrites, XLA compilation).")
flags.DEFINE_integer("matmul_size", 2048, "Side of the square matrices of the peak measurement; 0 skips it.")
flags.DEFINE_integer("num_logical_cpus", None,
                     "Split the CPU into this many logical devices (to try distribution_strategy=mirrored on CPU).")
flags.DEFINE_string("output_json", None, "Append the results as one JSON line to this file.")
flags.DEFINE_string("original_bert_dir", None,
                    "Measure the original release instead: a checkout of google-research/bert (its modeling.py and "
                    "optimization.py run unchanged, see bert.throughput.load_original).")
common_flags.define_performance_flags()

FLAGS = flags.FLAGS

HEADER = ("| code | model | seq | batch | precision | XLA | accum. | strategy | grad. ckpt | train ex/s | "
          "predict ex/s | GFLOP/ex (train) | train TFLOP/s | peak RSS (MB) | % of matmul peak |\n|" + "---|" * 15)


def _model_config() -> modeling.BertConfig:
    if FLAGS.bert_config_file:
        return modeling.BertConfig.from_json_file(FLAGS.bert_config_file)
    return throughput.preset_config(FLAGS.preset)


def _split_cpu(count: int) -> None:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)


def main(_):
    if FLAGS.num_logical_cpus:
        _split_cpu(FLAGS.num_logical_cpus)
    settings = PerformanceSettings.from_flags(FLAGS)
    implementation = throughput.load_original(FLAGS.original_bert_dir) if FLAGS.original_bert_dir else throughput.OURS
    config = _model_config()
    seq, batch = FLAGS.max_seq_length, FLAGS.batch_size
    runs = dict(num_runs=FLAGS.num_runs, num_warmup_runs=FLAGS.num_warmup_runs, implementation=implementation)
    result = dict(code=implementation.name, model=FLAGS.bert_config_file or FLAGS.preset, seq=seq, batch=batch,
                  **vars(settings))
    if FLAGS.mode in ("train", "both"):
        training = throughput.measure_training(config, batch, seq, settings, **runs)
        result.update(train_examples_per_second=training.examples_per_second,
                      train_flops_per_example=training.flops_per_example,
                      train_flops_per_second=training.flops_per_second)
    if FLAGS.mode in ("predict", "both"):
        inference = throughput.measure_inference(config, batch, seq, settings, **runs)
        result.update(predict_examples_per_second=inference.examples_per_second,
                      predict_flops_per_second=inference.flops_per_second)
    if FLAGS.matmul_size:
        result["matmul_peak_flops_per_second"] = throughput.measure_matmul_peak(
            throughput.matmul_dtype(settings.precision), FLAGS.matmul_size)
    result["peak_rss_bytes"] = throughput.peak_rss_bytes()
    print(HEADER)
    print(_table_row(result))
    if FLAGS.output_json:
        with open(FLAGS.output_json, "a") as f:
            f.write(json.dumps(result) + "\n")


def _table_row(result: dict) -> str:
    def number(key, scale=1.0, digits=1):
        return f"{result[key] / scale:.{digits}f}" if key in result else "-"

    fraction = "-"
    if "train_flops_per_second" in result and "matmul_peak_flops_per_second" in result:
        fraction = f"{100 * result['train_flops_per_second'] / result['matmul_peak_flops_per_second']:.0f}%"
    cells = [result["code"], result["model"], result["seq"], result["batch"], result["precision"],
             "on" if result["use_xla"] else "off",
             result["num_accumulation_steps"], result["distribution_strategy"],
             "on" if result["gradient_checkpointing"] else "off", number("train_examples_per_second"),
             number("predict_examples_per_second"), number("train_flops_per_example", 1e9, 2),
             number("train_flops_per_second", 1e12, 3), number("peak_rss_bytes", 2 ** 20, 0), fraction]
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


if __name__ == "__main__":
    app.run(main)
