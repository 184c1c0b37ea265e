"""The run_classifier job: fine-tune, evaluate and predict a sentence (pair) classifier, writing the original's files.

`scripts/run_classifier.py` only turns flags into `ClassifierOptions` and calls `run`; everything here is usable
from Python too.
"""

import dataclasses
import functools
import os
import time
from typing import Dict, List, Optional, Tuple

import tensorflow.compat.v1 as tf

from bert.classifier import data as classifier_data
from bert.classifier import model as classifier_model
from bert.common.errors import UserError, UserFileNotFoundError
from bert.common.file_io import written_then_renamed
from bert.runtime import checkpoints, export, sequence_length, specs
from bert.runtime.engine import make_estimator
from bert.runtime.options import REQUIRED, FineTuningOptions
from bert.runtime.outputs import write_key_value_results
from bert.runtime.pretrained import load_pretrained
from bert.runtime.task_file import TaskDescription, save_task_description, save_with_saved_model


@dataclasses.dataclass
class ClassifierOptions(FineTuningOptions):
    """Everything one run needs; field names are the original's flag names."""

    task_name: str = REQUIRED
    data_dir: str = REQUIRED
    do_eval: bool = False
    eval_batch_size: int = 8


@dataclasses.dataclass
class ClassifierResults:
    eval_results: Optional[Dict[str, object]] = None
    predictions_file: Optional[str] = None
    train_examples_per_second: Optional[float] = None
    saved_model_dir: Optional[str] = None


def _check_options(options: ClassifierOptions) -> None:
    if not (options.do_train or options.do_eval or options.do_predict or options.export_dir):
        raise UserError("At least one of `do_train`, `do_eval` or `do_predict` must be True (or `export_dir` set).")
    for name in ("data_dir", "output_dir"):
        if not getattr(options, name):
            raise UserError(f"--{name} is required")
    if not tf.io.gfile.isdir(options.data_dir):
        raise UserFileNotFoundError(f"data_dir {options.data_dir} does not exist (--data_dir: the folder of the "
                                    f"task's .tsv files)")
    if not options.do_train and (options.do_eval or options.do_predict):
        checkpoints.check_weights_for_inference(options.output_dir, options.init_checkpoint, "do_eval/do_predict")


def run(options: ClassifierOptions, encoder: Optional[classifier_model.Encoder] = None) -> ClassifierResults:
    """Runs the requested phases (train, eval, predict) of one task and writes their files to output_dir.

    `encoder` [new] (e.g. a TF Hub module) replaces the BERT of bert_config_file, vocab_file and init_checkpoint.
    """
    _check_options(options)
    options.length_settings()
    processor = classifier_data.get_processor(options.task_name)
    if encoder is None:
        bert_config, tokenizer, init_checkpoint = load_pretrained(
            options.bert_config_file, options.vocab_file, options.init_checkpoint, options.do_lower_case,
            options.max_seq_length, options.preserve_unused_tokens, do_train=options.do_train,
            output_dir=options.output_dir)
    else:
        bert_config, tokenizer, init_checkpoint = None, encoder.make_tokenizer(options.max_seq_length), None
    tf.io.gfile.makedirs(options.output_dir)

    label_list = processor.get_labels()
    description = None
    if encoder is None:  # a TF Hub encoder's run has no vocab file or config to save
        description = TaskDescription(
            task="classifier", max_seq_length=options.max_seq_length, do_lower_case=options.do_lower_case,
            bert_config=bert_config.to_dict(), preserve_unused_tokens=options.preserve_unused_tokens,
            task_name=options.task_name.lower(), labels=None if processor.is_regression else list(label_list))
        save_task_description(options.output_dir, description, options.vocab_file)
    train_examples, num_train_steps, num_warmup_steps = None, None, None
    if options.do_train:
        train_examples = processor.get_train_examples(options.data_dir)
        num_train_steps = specs.training_steps(len(train_examples), options.train_batch_size,
                                               options.num_train_epochs,
                                               f"the training set in {options.data_dir}")
        num_warmup_steps = int(num_train_steps * options.warmup_proportion)
        checkpoints.warn_if_resuming(options.output_dir)

    use_tpu = options.run.use_tpu
    model_fn = classifier_model.model_fn_builder(
        bert_config=bert_config, num_labels=1 if processor.is_regression else len(label_list),
        init_checkpoint=init_checkpoint, learning_rate=options.learning_rate, num_train_steps=num_train_steps,
        num_warmup_steps=num_warmup_steps, use_tpu=use_tpu, use_one_hot_embeddings=use_tpu,
        is_regression=processor.is_regression, metric_names=processor.metrics, encoder=encoder)
    estimator = make_estimator(
        model_fn, options.run, train_batch_size=options.train_batch_size,
        eval_batch_size=options.eval_batch_size, predict_batch_size=options.predict_batch_size)

    results = ClassifierResults()
    phase = _Phase(options, processor, tokenizer, estimator)
    if options.do_train:
        results.train_examples_per_second = phase.train(train_examples, num_train_steps)
    if options.do_eval:
        results.eval_results = phase.evaluate(processor.get_dev_examples(options.data_dir))
    if options.do_predict:
        results.predictions_file = phase.predict(processor.get_test_examples(options.data_dir))
    if options.export_dir:
        text_signature = None
        # The graph tokenizer is FullTokenizer's default; [unusedN] preservation keeps the ids signature only.
        if description is not None and not options.preserve_unused_tokens:
            num_labels = 1 if processor.is_regression else len(label_list)
            model_config = options.run.performance.model_config(bert_config)
            text_signature = export.TextSignature(
                functools.partial(classifier_model.prediction_outputs, model_config, num_labels=num_labels,
                                  is_regression=processor.is_regression),
                options.vocab_file, options.do_lower_case,
                export.PairTexts(options.max_seq_length, description.labels))
        results.saved_model_dir = phase.export(init_checkpoint, text_signature)
        if description is not None:
            save_with_saved_model(results.saved_model_dir, description, options.vocab_file)
    return results


class _Phase:
    """The three phases of a run, sharing the task, tokenizer and estimator."""

    def __init__(self, options: ClassifierOptions, processor, tokenizer, estimator):
        self.options = options
        self.processor = processor
        self.label_list = processor.get_labels()
        self.tokenizer = tokenizer
        self.estimator = estimator
        self.lengths = options.length_settings()

    def _write_records(self, examples: List, name: str) -> str:
        path = os.path.join(self.options.output_dir, name)
        classifier_data.file_based_convert_examples_to_features(
            examples, self.label_list, self.options.max_seq_length, self.tokenizer, path)
        return path

    def _input_fn(self, path: str, is_training: bool):
        drop_remainder = is_training or self.options.run.use_tpu
        return classifier_data.file_based_input_fn_builder(path, self.options.max_seq_length, is_training,
                                                           drop_remainder, self.processor.is_regression,
                                                           lengths=self.lengths)

    def _padded(self, examples: List, batch_size: int) -> List:
        # TPUs need whole batches: pad with examples that weigh nothing and whose predictions are dropped.
        return classifier_data.pad_for_tpu(examples, batch_size) if self.options.run.use_tpu else list(examples)

    def train(self, examples: List, num_train_steps: int) -> float:
        path = self._write_records(examples, "train.tf_record")
        batch_size = self.options.train_batch_size
        tf.logging.info("***** Running training *****")
        tf.logging.info("  Num examples = %d", len(examples))
        tf.logging.info("  Batch size = %d", batch_size)
        tf.logging.info("  Num steps = %d", num_train_steps)
        start_step = checkpoints.checkpoint_global_step(self.options.output_dir)
        start = time.time()
        self.estimator.train(input_fn=self._input_fn(path, is_training=True), max_steps=num_train_steps)
        seconds = time.time() - start
        steps_run = max(0, num_train_steps - start_step)
        speed = steps_run * batch_size / seconds if seconds > 0 else 0.0
        tf.logging.info("Trained %d steps in %.1f s: %.1f examples/s (including start-up and checkpointing)",
                        steps_run, seconds, speed)
        return speed

    def _write_records_by_length(self, examples: List, batch_size: int, name: str) -> Tuple[str, List[int]]:
        """With dynamic padding: writes `examples` shortest first (see `order_for_evaluation`), so that batches
        are short; returns the path and the input index of each record written."""
        path = os.path.join(self.options.output_dir, name)
        features = classifier_data.convert_examples_to_features(examples, self.label_list,
                                                                self.options.max_seq_length, self.tokenizer)
        order = sequence_length.order_for_evaluation([sum(feature.input_mask) for feature in features],
                                                     batch_size)
        classifier_data.write_features([features[index] for index in order], self.options.max_seq_length, path,
                                       self.processor.is_regression)
        return path, order

    def _write_padded_records(self, examples: List, batch_size: int, name: str,
                              title: str) -> Tuple[str, int, Optional[List[int]]]:
        """Pads `examples` for TPU, writes them to `name` and logs the phase; returns (path, examples written,
        input index of each record or None when they are in input order)."""
        num_actual = len(examples)
        examples = self._padded(examples, batch_size)
        order = None
        if self.lengths.dynamic_padding:
            path, order = self._write_records_by_length(examples, batch_size, name)
        else:
            path = self._write_records(examples, name)
        tf.logging.info("***** Running %s *****", title)
        tf.logging.info("  Num examples = %d (%d actual, %d padding)", len(examples), num_actual,
                        len(examples) - num_actual)
        tf.logging.info("  Batch size = %d", batch_size)
        return path, len(examples), order

    def evaluate(self, examples: List) -> Dict[str, object]:
        batch_size = self.options.eval_batch_size
        # The metrics do not depend on the order examples run in.
        path, num_written, _ = self._write_padded_records(examples, batch_size, "eval.tf_record", "evaluation")
        steps = num_written // batch_size if self.options.run.use_tpu else None
        result = self.estimator.evaluate(input_fn=self._input_fn(path, is_training=False), steps=steps)
        write_key_value_results(os.path.join(self.options.output_dir, "eval_results.txt"), result)
        return result

    def predict(self, examples: List) -> str:
        num_actual = len(examples)
        path, _, order = self._write_padded_records(examples, self.options.predict_batch_size,
                                                    "predict.tf_record", "prediction")
        output_path = os.path.join(self.options.output_dir, "test_results.tsv")
        predictions = self.estimator.predict(input_fn=self._input_fn(path, is_training=False))
        if order is not None:
            predictions = sequence_length.restore_order([p["probabilities"] for p in predictions], order)
        else:
            predictions = (p["probabilities"] for p in predictions)
        written = 0
        with written_then_renamed(output_path) as writer:
            for probabilities in predictions:
                if written >= num_actual:
                    break
                writer.write("\t".join(str(p) for p in probabilities) + "\n")
                written += 1
        if written != num_actual:
            raise RuntimeError(f"wrote {written} predictions for {num_actual} test examples")
        return output_path

    def export(self, init_checkpoint: Optional[str], text_signature: Optional[export.TextSignature]) -> str:
        """Exports the newest fine-tuned checkpoint (else `init_checkpoint`) as a SavedModel; returns its path."""
        spec = classifier_data.classifier_feature_spec(self.options.max_seq_length, self.processor.is_regression)
        return export.export_task_model(self.estimator, self.options.export_dir, spec, init_checkpoint,
                                        text_signature)
