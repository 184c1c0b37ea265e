"""The run_squad job: fine-tune on a SQuAD training file and/or predict answers for a SQuAD file.

Writes the original's files to output_dir: train.tf_record (training), eval.tf_record, predictions.json,
nbest_predictions.json and, for SQuAD 2.0, null_odds.json (prediction). `scripts/run_squad.py` only turns flags
into `SquadOptions` and calls `run`.
"""

import dataclasses
import functools
import os
import random
from typing import Dict, List, Optional

import tensorflow.compat.v1 as tf

from bert.common.errors import UserError
from bert.runtime import checkpoints, export, input_pipeline, sequence_length, specs
from bert.runtime.engine import make_estimator
from bert.runtime.options import FineTuningOptions
from bert.runtime.pretrained import load_pretrained
from bert.runtime.task_file import TaskDescription, save_task_description, save_with_saved_model
from bert.squad import data as squad
from bert.squad import model as squad_model
from bert.squad import postprocess as squad_postprocess
from bert.squad import text_graph as squad_text_graph
from bert.squad.postprocess import PredictionOptions, RawResult

TRAIN_SHUFFLE_SEED = 12345


@dataclasses.dataclass
class SquadOptions(FineTuningOptions):
    """Everything one run needs; field names and defaults are the original's flags."""

    train_file: Optional[str] = None
    predict_file: Optional[str] = None
    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64
    n_best_size: int = 20
    max_answer_length: int = 30
    verbose_logging: bool = False
    version_2_with_negative: bool = False
    null_score_diff_threshold: float = 0.0


    def prediction_options(self) -> PredictionOptions:
        return PredictionOptions(
            n_best_size=self.n_best_size, max_answer_length=self.max_answer_length,
            do_lower_case=self.do_lower_case, version_2_with_negative=self.version_2_with_negative,
            null_score_diff_threshold=self.null_score_diff_threshold, verbose_logging=self.verbose_logging)


def validate_options(options: SquadOptions) -> None:
    """The original's flag checks, before any file is written.

    Raises:
      ValueError: nothing to do, a required file flag missing, or sequence lengths that cannot work.
    """
    if not (options.do_train or options.do_predict or options.export_dir):
        raise UserError("At least one of `do_train` or `do_predict` must be True (or `export_dir` set).")
    if options.do_train and not options.train_file:
        raise UserError("If `do_train` is True, then `train_file` must be specified.")
    if options.do_predict and not options.predict_file:
        raise UserError("If `do_predict` is True, then `predict_file` must be specified.")
    options.length_settings()
    squad.check_window_settings(options.max_seq_length, options.doc_stride, options.max_query_length)
    if options.do_predict and not options.do_train:
        checkpoints.check_weights_for_inference(options.output_dir, options.init_checkpoint, "do_predict")


def run(options: SquadOptions) -> Optional[Dict[str, str]]:
    """Trains, predicts and/or exports as `options` say; returns the predicted answers by question id when
    predicting."""
    bert_config, tokenizer, init_checkpoint = load_pretrained(
        options.bert_config_file, options.vocab_file, options.init_checkpoint, options.do_lower_case,
        options.max_seq_length, options.preserve_unused_tokens, output_dir=options.output_dir)
    validate_options(options)
    tf.io.gfile.makedirs(options.output_dir)
    description = task_description(options, bert_config)
    save_task_description(options.output_dir, description, options.vocab_file)

    train_examples, num_train_steps, num_warmup_steps = None, None, None
    if options.do_train:
        train_examples = squad.read_squad_examples(options.train_file, is_training=True,
                                                   version_2_with_negative=options.version_2_with_negative)
        num_train_steps = specs.training_steps(len(train_examples), options.train_batch_size,
                                               options.num_train_epochs, options.train_file)
        num_warmup_steps = int(num_train_steps * options.warmup_proportion)
        # Shuffling here spares the input_fn a shuffle buffer as large as the data set.
        random.Random(TRAIN_SHUFFLE_SEED).shuffle(train_examples)
        checkpoints.warn_if_resuming(options.output_dir)

    use_tpu = options.run.use_tpu
    model_fn = squad_model.model_fn_builder(
        bert_config=bert_config, init_checkpoint=init_checkpoint, learning_rate=options.learning_rate,
        num_train_steps=num_train_steps, num_warmup_steps=num_warmup_steps, use_tpu=use_tpu,
        use_one_hot_embeddings=use_tpu)
    estimator = make_estimator(model_fn, options.run, train_batch_size=options.train_batch_size,
                               predict_batch_size=options.predict_batch_size)

    if options.do_train:
        train(estimator, train_examples, tokenizer, options, num_train_steps)
    answers = predict(estimator, tokenizer, options) if options.do_predict else None
    if options.export_dir:
        # unique_ids is fed as zeros: a serving client matches answers to its windows by position.
        saved_model_dir = export.export_task_model(
            estimator, options.export_dir, squad.feature_spec(options.max_seq_length, is_training=False),
            init_checkpoint, text_signature=_text_signature(options, bert_config))
        save_with_saved_model(saved_model_dir, description, options.vocab_file)
    return answers


def _text_signature(options: SquadOptions, bert_config) -> Optional[export.TextSignature]:
    """Questions and contexts in, answers out; none for --preserve_unused_tokens runs (the graph tokenizer is
    FullTokenizer's default)."""
    if options.preserve_unused_tokens:
        return None
    inputs = squad_text_graph.QuestionsInContexts(
        options.max_seq_length, options.doc_stride, options.max_query_length, options.n_best_size,
        options.max_answer_length, options.version_2_with_negative, options.null_score_diff_threshold)
    model_outputs = functools.partial(squad_model.prediction_outputs, options.run.performance.model_config(bert_config))
    return export.TextSignature(model_outputs, options.vocab_file, options.do_lower_case, inputs)


PREDICTION_SETTINGS = ("doc_stride", "max_query_length", "n_best_size", "max_answer_length",
                       "version_2_with_negative", "null_score_diff_threshold")


def task_description(options: SquadOptions, bert_config) -> TaskDescription:
    """What answering questions with this run's model needs: the windows' and post-processing's settings."""
    return TaskDescription(task="squad", max_seq_length=options.max_seq_length, do_lower_case=options.do_lower_case,
                           bert_config=bert_config.to_dict(), preserve_unused_tokens=options.preserve_unused_tokens,
                           settings={name: getattr(options, name) for name in PREDICTION_SETTINGS})


def _convert(examples: List[squad.SquadExample], tokenizer, options: SquadOptions, is_training: bool,
             output_fn) -> None:
    squad.convert_examples_to_features(
        examples=examples, tokenizer=tokenizer, max_seq_length=options.max_seq_length,
        doc_stride=options.doc_stride, max_query_length=options.max_query_length, is_training=is_training,
        output_fn=output_fn)


def train(estimator, examples: List[squad.SquadExample], tokenizer, options: SquadOptions,
          num_train_steps: int) -> None:
    """Writes train.tf_record (one record per window) and trains until global step `num_train_steps`."""
    writer = squad.FeatureWriter(os.path.join(options.output_dir, "train.tf_record"), is_training=True,
                                 max_seq_length=options.max_seq_length)
    _convert(examples, tokenizer, options, is_training=True, output_fn=writer.process_feature)
    writer.close()

    tf.logging.info("***** Running training *****")
    tf.logging.info("  Num orig examples = %d", len(examples))
    tf.logging.info("  Num split examples = %d", writer.num_features)
    tf.logging.info("  Batch size = %d", options.train_batch_size)
    tf.logging.info("  Num steps = %d", num_train_steps)
    input_fn = input_pipeline.input_fn_builder(
        writer.filename, squad.feature_spec(options.max_seq_length, is_training=True), is_training=True,
        drop_remainder=True, lengths=options.length_settings())
    estimator.train(input_fn=input_fn, max_steps=num_train_steps)


def predict(estimator, tokenizer, options: SquadOptions) -> Dict[str, str]:
    """Writes eval.tf_record, runs the model over it in batches and writes the prediction JSON files.

    With dynamic padding the windows are written shortest first; results find their window by unique_id.
    """
    lengths = options.length_settings()
    examples = squad.read_squad_examples(options.predict_file, is_training=False)
    writer = squad.FeatureWriter(os.path.join(options.output_dir, "eval.tf_record"), is_training=False,
                                 max_seq_length=options.max_seq_length)
    features = []
    _convert(examples, tokenizer, options, is_training=False, output_fn=features.append)
    order = range(len(features))
    if lengths.dynamic_padding:
        order = sequence_length.order_by_length([sum(feature.input_mask) for feature in features])
    for index in order:
        writer.process_feature(features[index])
    writer.close()

    tf.logging.info("***** Running predictions *****")
    tf.logging.info("  Num orig examples = %d", len(examples))
    tf.logging.info("  Num split examples = %d", len(features))
    tf.logging.info("  Batch size = %d", options.predict_batch_size)
    input_fn = input_pipeline.input_fn_builder(
        writer.filename, squad.feature_spec(options.max_seq_length, is_training=False), is_training=False,
        drop_remainder=False, lengths=lengths)
    results = _raw_results(estimator.predict(input_fn, yield_single_examples=True))

    return squad_postprocess.write_predictions(
        examples, features, results, options.prediction_options(),
        output_prediction_file=os.path.join(options.output_dir, "predictions.json"),
        output_nbest_file=os.path.join(options.output_dir, "nbest_predictions.json"),
        output_null_log_odds_file=os.path.join(options.output_dir, "null_odds.json"))


def _raw_results(predictions) -> List[RawResult]:
    """Model outputs as Python floats, the form post-processing (and its JSON) works with."""
    results = []
    for prediction in predictions:
        if len(results) % 1000 == 0:
            tf.logging.info("Processing example: %d", len(results))
        results.append(RawResult(unique_id=int(prediction["unique_ids"]),
                                 start_logits=[float(x) for x in prediction["start_logits"].flat],
                                 end_logits=[float(x) for x in prediction["end_logits"].flat]))
    return results
