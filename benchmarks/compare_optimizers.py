"""[New] Pre-trains a small BERT from scratch with AdamW and with LAMB at a large batch and plots the MLM losses.

The corpus goes through the project's create_pretraining_data (text files, plus optionally the sentence pairs of
a GLUE MRPC train.tsv, one two-sentence document per pair); each run then trains the pre-training heads of
`bert.pretraining.job` with `optimization.create_optimizer(..., optimizer=...)` in a plain session loop, recording
the masked-LM and next-sentence losses of every step. Every run starts from the same initial weights and reads
the same batches. matplotlib is needed for the plot only, and only here.

  python benchmarks/compare_optimizers.py --output_dir=/tmp/lamb --vocab_file=vocab.txt \\
    --input_file=sample_text.txt --mrpc_tsv=glue/MRPC/train.tsv --runs=adamw:1e-3,lamb:1e-2 \\
    --plot=docs/lamb_vs_adamw.png
"""

import sys

from bert.runtime import logs

if __name__ == "__main__":  # run as a program: TensorFlow's start-up lines are hidden before it is imported
    logs.quiet_start(sys.argv)

import csv
import json
import os
import time
from typing import Dict, List, Sequence, Tuple

import numpy as np
import tensorflow.compat.v1 as tf
from absl import flags

from bert import modeling, optimization, tokenization
from bert.common.errors import UserError
from bert.pretraining import data as pretraining_data
from bert.pretraining import job as pretraining
from bert.runtime import flags as common_flags
from bert.runtime import input_pipeline

FLAGS = flags.FLAGS
SEED = 1234


def define_flags() -> None:
    flags.DEFINE_string("output_dir", None, "Work folder: corpus, records and one <run>.jsonl of losses per run.")
    flags.DEFINE_string("vocab_file", None, "WordPiece vocabulary (uncased).")
    flags.DEFINE_string("input_file", None, "Comma-separated plain-text corpora in create_pretraining_data's format.")
    flags.DEFINE_string("mrpc_tsv", None, "Optional GLUE MRPC train.tsv whose sentence pairs are added as documents.")
    flags.DEFINE_integer("num_hidden_layers", 2, "Encoder layers of the small BERT.")
    flags.DEFINE_integer("hidden_size", 128, "Hidden size of the small BERT.")
    flags.DEFINE_integer("num_attention_heads", 2, "Attention heads of the small BERT.")
    flags.DEFINE_integer("intermediate_size", 512, "Feed-forward width of the small BERT.")
    flags.DEFINE_integer("max_seq_length", 64, "Sequence length of the pre-training examples.")
    flags.DEFINE_integer("max_predictions_per_seq", 10, "Masked positions per example.")
    flags.DEFINE_integer("dupe_factor", 5, "Times the corpus is masked over (create_pretraining_data).")
    flags.DEFINE_integer("train_batch_size", 256, "Examples per update (8x run_pretraining's default of 32).")
    flags.DEFINE_integer("num_train_steps", 300, "Updates per run; the learning rate decays linearly to 0 there.")
    flags.DEFINE_integer("num_warmup_steps", 30, "Steps of linear warmup.")
    flags.DEFINE_string("runs", "adamw:1e-3,lamb:1e-2",
                        "Comma-separated optimizer:learning_rate pairs to train (optimizer adamw or lamb).")
    flags.DEFINE_string("plot", None, "Write the MLM loss curves of every <run>.jsonl in output_dir to this PNG.")
    flags.DEFINE_bool("plot_only", False, "Only draw --plot from the runs already in output_dir.")


def parse_runs(text: str) -> List[Tuple[str, float]]:
    """"adamw:1e-3,lamb:1e-2" -> [("adamw", 0.001), ("lamb", 0.01)]; names a bad entry of --runs."""
    runs = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        name, _, rate = entry.partition(":")
        try:
            learning_rate = float(rate)
        except ValueError:
            learning_rate = -1.0
        if name not in optimization.OPTIMIZERS or learning_rate <= 0:
            raise UserError(f"--runs entry {entry!r} must be optimizer:learning_rate with optimizer one of "
                            f"{', '.join(optimization.OPTIMIZERS)} and a positive rate, e.g. lamb:1e-2")
        runs.append((name, learning_rate))
    if not runs:
        raise UserError("--runs names no run; give e.g. adamw:1e-3,lamb:1e-2")
    return runs


def write_mrpc_corpus(tsv_path: str, corpus_path: str) -> int:
    """Writes each MRPC pair (columns 3 and 4) as a two-line document; returns the number of documents."""
    count = 0
    with open(tsv_path, encoding="utf-8-sig") as source, open(corpus_path, "w", encoding="utf-8") as corpus:
        rows = csv.reader(source, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(rows, None)
        for row in rows:
            if len(row) < 5:
                raise UserError(f"{tsv_path}: line {rows.line_num} has {len(row)} columns, an MRPC row has 5")
            corpus.write(f"{row[3]}\n{row[4]}\n\n")
            count += 1
    return count


def make_records(output_dir: str) -> str:
    """create_pretraining_data over the corpora; returns the TFRecord path (made once per output_dir)."""
    records = os.path.join(output_dir, "pretraining.tfrecord")
    if os.path.exists(records):
        return records
    inputs = [path for path in (FLAGS.input_file or "").split(",") if path]
    if FLAGS.mrpc_tsv:
        inputs.append(os.path.join(output_dir, "mrpc_corpus.txt"))
        write_mrpc_corpus(FLAGS.mrpc_tsv, inputs[-1])
    if not inputs:
        raise UserError("give --input_file and/or --mrpc_tsv: there is no text to pre-train on")
    options = pretraining_data.DataOptions(max_seq_length=FLAGS.max_seq_length,
                                           max_predictions_per_seq=FLAGS.max_predictions_per_seq,
                                           dupe_factor=FLAGS.dupe_factor)
    tokenizer = tokenization.FullTokenizer(FLAGS.vocab_file, do_lower_case=True)
    count = pretraining_data.create_pretraining_data(inputs, [records + ".partial"], tokenizer, options)
    os.rename(records + ".partial", records)
    print(f"{count} pre-training examples from {', '.join(inputs)}")
    return records


def small_config(vocab_size: int) -> modeling.BertConfig:
    return modeling.BertConfig(vocab_size=vocab_size, hidden_size=FLAGS.hidden_size,
                               num_hidden_layers=FLAGS.num_hidden_layers,
                               num_attention_heads=FLAGS.num_attention_heads,
                               intermediate_size=FLAGS.intermediate_size,
                               max_position_embeddings=max(512, FLAGS.max_seq_length))


def train(records: str, config: modeling.BertConfig, optimizer: str, learning_rate: float,
          log_path: str) -> List[Dict[str, float]]:
    """One run from the shared initial weights; writes and returns one {step, mlm_loss, nsp_loss, seconds} a step."""
    spec = pretraining.pretraining_feature_spec(FLAGS.max_seq_length, FLAGS.max_predictions_per_seq)
    input_fn = input_pipeline.input_fn_builder(records, spec, is_training=True, drop_remainder=True)
    with tf.Graph().as_default():
        tf.set_random_seed(SEED)
        features = tf.data.make_one_shot_iterator(input_fn({"batch_size": FLAGS.train_batch_size})).get_next()
        model = modeling.BertModel(config, is_training=True, input_ids=features["input_ids"],
                                   input_mask=features["input_mask"], token_type_ids=features["segment_ids"])
        mlm_loss, _, _ = pretraining.get_masked_lm_output(
            config, model.get_sequence_output(), model.get_embedding_table(), features["masked_lm_positions"],
            features["masked_lm_ids"], features["masked_lm_weights"])
        nsp_loss, _, _ = pretraining.get_next_sentence_output(config, model.get_pooled_output(),
                                                              features["next_sentence_labels"])
        train_op = optimization.create_optimizer(mlm_loss + nsp_loss, learning_rate, FLAGS.num_train_steps,
                                                 FLAGS.num_warmup_steps, False, optimizer=optimizer)
        history = []
        with tf.Session() as session, open(log_path, "w") as log:
            session.run(tf.global_variables_initializer())
            start = time.time()
            for step in range(1, FLAGS.num_train_steps + 1):
                _, mlm, nsp = session.run([train_op, mlm_loss, nsp_loss])
                record = dict(step=step, mlm_loss=float(mlm), nsp_loss=float(nsp), seconds=time.time() - start)
                log.write(json.dumps(record) + "\n")
                log.flush()
                history.append(record)
    return history


def read_runs(output_dir: str) -> Dict[str, List[Dict[str, float]]]:
    runs = {}
    for name in sorted(os.listdir(output_dir)):
        if name.endswith(".jsonl"):
            with open(os.path.join(output_dir, name)) as f:
                runs[name[: -len(".jsonl")]] = [json.loads(line) for line in f if line.strip()]
    return runs


def smoothed(values: Sequence[float], window: int = 10) -> np.ndarray:
    """Trailing mean over up to `window` steps (the losses of single batches are noisy)."""
    cumulative = np.cumsum(np.insert(np.asarray(values, dtype=np.float64), 0, 0.0))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)


def plot(runs: Dict[str, List[Dict[str, float]]], path: str, title: str) -> None:
    try:
        import matplotlib  # pylint: disable=import-outside-toplevel
        matplotlib.use("Agg")
        from matplotlib import pyplot  # pylint: disable=import-outside-toplevel
    except ImportError as error:
        raise UserError("--plot needs matplotlib, which bert does not depend on: pip install matplotlib") from error
    figure, axes = pyplot.subplots(figsize=(8, 5))
    for name, history in runs.items():
        steps = [r["step"] for r in history]
        losses = [r["mlm_loss"] for r in history]
        line, = axes.plot(steps, smoothed(losses), label=name)
        axes.plot(steps, losses, color=line.get_color(), alpha=0.2, linewidth=0.8)
    axes.set_xlabel("update")
    axes.set_ylabel("masked-LM training loss (10-step mean; raw faint)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def summary_line(name: str, history: List[Dict[str, float]]) -> str:
    last = [r["mlm_loss"] for r in history[-20:]]
    return (f"| {name} | {len(history)} | {history[0]['mlm_loss']:.3f} | {np.mean(last):.3f} | "
            f"{min(smoothed([r['mlm_loss'] for r in history])):.3f} | {history[-1]['seconds'] / len(history):.2f} |")


def run_all() -> None:
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    if not FLAGS.plot_only:
        if not FLAGS.vocab_file:
            raise UserError("--vocab_file is required to make the pre-training data")
        runs = parse_runs(FLAGS.runs)
        records = make_records(FLAGS.output_dir)
        config = small_config(len(tokenization.load_vocab(FLAGS.vocab_file)))
        for optimizer, learning_rate in runs:
            name = f"{optimizer}_lr{learning_rate:g}"
            train(records, config, optimizer, learning_rate, os.path.join(FLAGS.output_dir, name + ".jsonl"))
    results = read_runs(FLAGS.output_dir)
    print("| run | steps | first MLM loss | mean of last 20 | best 10-step mean | s/step |\n|---|---|---|---|---|---|")
    for name, history in results.items():
        print(summary_line(name, history))
    if FLAGS.plot:
        plot(results, FLAGS.plot,
             f"BERT L-{FLAGS.num_hidden_layers} H-{FLAGS.hidden_size}, seq {FLAGS.max_seq_length}, "
             f"batch {FLAGS.train_batch_size}, {FLAGS.num_train_steps} steps")


def main() -> None:
    define_flags()
    common_flags.run_program(run_all, required_flags=("output_dir",))


if __name__ == "__main__":
    main()
