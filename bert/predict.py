"""The predict program [new]: a fine-tuned model's predictions for raw texts, as JSON lines.

    python -m bert.predict --model_dir=runs/mrpc < pairs.tsv > predictions.jsonl
    python -m bert.predict --model_dir=runs/mrpc/export --input_file=pairs.jsonl --output_file=predictions.jsonl

--model_dir is a fine-tuning run's output_dir (its newest checkpoint), a SavedModel, or an --export_dir (its
newest SavedModel) of run_classifier, run_squad or run_ner; the run saved there what the texts need
(bert_task.json). Input lines are TSV (`text_a`, or `text_a<TAB>text_b`: a pair to classify, a question and its
context) or JSON lines (`{"text_a": ..., "text_b": ..., "id": ...}`; also "text", "question", "context"); each gives
one output line in input order: `{"line": N, "id": ..., "label": ..., "probabilities": {...}}` (classifier),
`{"line": N, "text": answer, "start": ..., "end": ..., "probability": ..., "score": ..., "null_score_diff": ...}`
(SQuAD; offsets in the context), `{"line": N, "entities": [{"text", "type", "start", "end"}, ...]}` (NER).
"""

import sys

from bert.runtime import logs

if __name__ == "__main__":  # run as a program: TensorFlow's start-up lines are hidden before it is imported
    logs.quiet_start(sys.argv)

import contextlib
import itertools
import json
import os
from typing import IO, Iterator

from absl import flags

from bert.common.errors import UserError
from bert.common.file_io import written_then_renamed
from bert.runtime import flags as common_flags
from bert.serving.predictor import Predictor
from bert.serving.json_lines import INPUT_FORMATS, prediction_records, read_text_inputs

FLAGS = flags.FLAGS
STANDARD_STREAM = "-"
CHUNK_SIZE = 1024  # inputs read, predicted and written at a time: memory stays flat on any input size


def define_flags() -> None:
    flags.DEFINE_string("model_dir", None, "A fine-tuning run's output_dir, a SavedModel, or an --export_dir.")
    flags.DEFINE_string("input_file", STANDARD_STREAM, "TSV or JSON lines of texts; - reads standard input.")
    flags.DEFINE_string("output_file", STANDARD_STREAM, "Where the JSON lines of predictions go; - is standard "
                        "output. A file appears only when complete.")
    flags.DEFINE_enum("input_format", "auto", INPUT_FORMATS,
                      "auto: JSON lines when the first line starts with '{', else TSV.")
    flags.DEFINE_integer("batch_size", 32, "Texts per model run (each batch is cut to its longest text).")
    flags.DEFINE_bool("fast_kernels", False, "Build a checkpoint's model from fused kernels: faster, results within "
                      "1e-5 (a SavedModel keeps the graph it was exported with).")


@contextlib.contextmanager
def _input_lines(path: str) -> Iterator[IO]:
    if path == STANDARD_STREAM:
        yield sys.stdin
        return
    if not os.path.isfile(path):
        raise UserError(f"--input_file={path} does not exist")
    with open(path, encoding="utf-8") as reader:
        yield reader


@contextlib.contextmanager
def _output(path: str) -> Iterator[IO]:
    if path == STANDARD_STREAM:
        yield sys.stdout
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"--output_file={path}: its folder {folder} does not exist")
    with written_then_renamed(path) as writer:
        yield writer


def predict_from_flags() -> None:
    with Predictor.load(FLAGS.model_dir, FLAGS.fast_kernels) as predictor, _input_lines(FLAGS.input_file) as lines, \
            _output(FLAGS.output_file) as writer:
        source = "standard input" if FLAGS.input_file == STANDARD_STREAM else FLAGS.input_file
        inputs = read_text_inputs(lines, FLAGS.input_format, source)
        while True:
            chunk = list(itertools.islice(inputs, CHUNK_SIZE))
            if not chunk:
                break
            for record in prediction_records(predictor, chunk, FLAGS.batch_size, source):
                writer.write(json.dumps(record, ensure_ascii=False) + "\n")
            writer.flush()


def main() -> None:
    define_flags()
    common_flags.run_program(predict_from_flags, required_flags=("model_dir",))


if __name__ == "__main__":
    main()
