"""The run_ner job: fine-tune BERT for named-entity recognition on CoNLL files, score it, label a test set.

Files written to output_dir: `ner_labels.json` (tag scheme and label list of the training file, so that later
predict-only runs use the same ids), `eval_results.txt` (entity-level precision/recall/F1 with conlleval
semantics, F1 per type, token accuracy, global_step), `test_predictions.txt` (CoNLL: word, gold tag if the test
file has one, predicted tag; BIO, valid spans) and, when the test file is tagged, `test_results.txt`.
"""

import dataclasses
import functools
import json
import os
import time
from typing import Dict, List, Optional, Sequence, Tuple

import tensorflow.compat.v1 as tf

from bert.common.errors import UserError
from bert.common.file_io import written_then_renamed
from bert.ner import data as ner_data
from bert.ner import metrics as ner_metrics
from bert.ner import model as ner_model
from bert.ner import text_graph as ner_text_graph
from bert.ner.data import Sentence
from bert.runtime import checkpoints, export, sequence_length, specs
from bert.runtime.engine import make_estimator
from bert.runtime.options import REQUIRED, FineTuningOptions
from bert.runtime.outputs import write_key_value_results
from bert.runtime.pretrained import load_pretrained
from bert.runtime.task_file import TaskDescription, save_task_description, save_with_saved_model

LABELS_FILE = "ner_labels.json"


@dataclasses.dataclass
class NerOptions(FineTuningOptions):
    """Everything one run needs; field names are the flag names (run_classifier's, plus the NER ones)."""

    data_dir: str = REQUIRED
    do_eval: bool = False
    eval_batch_size: int = 8
    train_file: str = "train.txt"  # names inside data_dir (or absolute paths)
    dev_file: str = "dev.txt"
    test_file: str = "test.txt"
    tag_scheme: str = "auto"  # one of ner_data.TAG_SCHEMES; auto = detected from the training file
    alternative_tags: str = "error"  # one of ner_data.ALTERNATIVE_TAG_POLICIES
    doc_stride: int = 64  # sub-tokens between the starts of a long sentence's windows
    TOKEN_FEATURES = ner_data.TOKEN_FEATURES  # the per-token labels are cut with the tokens

    def path(self, name: str) -> str:
        return os.path.join(self.data_dir, name)


@dataclasses.dataclass
class NerResults:
    eval_results: Optional[Dict[str, object]] = None
    predictions_file: Optional[str] = None
    test_results: Optional[Dict[str, object]] = None
    saved_model_dir: Optional[str] = None


@dataclasses.dataclass
class LabelSet:
    """The tag scheme of the data and the BIO labels the model predicts (index = label id)."""

    tag_scheme: str
    labels: List[str]


def _check_options(options: NerOptions) -> None:
    if not (options.do_train or options.do_eval or options.do_predict or options.export_dir):
        raise UserError("at least one of --do_train, --do_eval or --do_predict must be true (or --export_dir set)")
    if not tf.io.gfile.isdir(options.data_dir):
        raise UserError(f"--data_dir={options.data_dir} is not a directory")
    if options.tag_scheme not in ner_data.TAG_SCHEMES:
        raise UserError(f"--tag_scheme={options.tag_scheme} is not one of {', '.join(ner_data.TAG_SCHEMES)}")
    if options.alternative_tags not in ner_data.ALTERNATIVE_TAG_POLICIES:
        raise UserError(f"--alternative_tags={options.alternative_tags} is not one of "
                        f"{', '.join(ner_data.ALTERNATIVE_TAG_POLICIES)}")
    ner_data.check_window_settings(options.max_seq_length, options.doc_stride)
    if not options.do_train and (options.do_eval or options.do_predict):
        checkpoints.check_weights_for_inference(options.output_dir, options.init_checkpoint, "do_eval/do_predict")


def _label_set(options: NerOptions, train_sentences: Optional[List[Sentence]], train_scheme: Optional[str]
               ) -> LabelSet:
    """The labels of this training run, or of the run that trained the model in output_dir."""
    labels_path = os.path.join(options.output_dir, LABELS_FILE)
    saved = None
    if tf.io.gfile.exists(labels_path):
        with tf.io.gfile.GFile(labels_path) as reader:
            saved = LabelSet(**json.load(reader))
    if train_sentences is None:
        if saved is None:
            raise UserError(f"{labels_path} not found: the labels of a model come from its training run; run with "
                            "--do_train into this --output_dir first")
        return saved
    label_set = LabelSet(train_scheme, ner_data.label_list_from(train_sentences))
    if saved is not None and saved.labels != label_set.labels and checkpoints.checkpoint_global_step(
            options.output_dir):
        raise UserError(f"the training file's labels {label_set.labels} differ from those of the model already in "
                        f"--output_dir={options.output_dir} ({saved.labels}); use a new output_dir")
    with written_then_renamed(labels_path) as writer:
        json.dump(dataclasses.asdict(label_set), writer, indent=1)
    return label_set


def run(options: NerOptions) -> NerResults:
    """Runs the requested phases (train, eval, predict, export) and writes their files to output_dir."""
    _check_options(options)
    bert_config, tokenizer, init_checkpoint = load_pretrained(
        options.bert_config_file, options.vocab_file, options.init_checkpoint, options.do_lower_case,
        options.max_seq_length, options.preserve_unused_tokens, do_train=options.do_train,
        output_dir=options.output_dir)
    tf.io.gfile.makedirs(options.output_dir)

    train_sentences, train_scheme = None, None
    if options.do_train:
        train_sentences, train_scheme = ner_data.read_training_sentences(
            options.path(options.train_file), options.tag_scheme, options.alternative_tags)
    label_set = _label_set(options, train_sentences, train_scheme)
    description = TaskDescription(
        task="ner", max_seq_length=options.max_seq_length, do_lower_case=options.do_lower_case,
        bert_config=bert_config.to_dict(), preserve_unused_tokens=options.preserve_unused_tokens,
        labels=list(label_set.labels), settings={"doc_stride": options.doc_stride})
    save_task_description(options.output_dir, description, options.vocab_file)
    # Read every input before the (long) training so that a bad dev/test file fails at once.
    dev_sentences, test_sentences = None, None
    if options.do_eval:
        dev_sentences = ner_data.read_evaluation_sentences(
            options.path(options.dev_file), "--dev_file", label_set.tag_scheme, label_set.labels,
            options.alternative_tags)
    if options.do_predict:
        test_sentences = ner_data.read_evaluation_sentences(
            options.path(options.test_file), "--test_file", label_set.tag_scheme, label_set.labels,
            options.alternative_tags, require_tags=False)

    num_train_steps, num_warmup_steps, train_windows = None, None, None
    if options.do_train:
        train_windows = ner_data.make_windows(train_sentences, label_set.labels, tokenizer, options.max_seq_length,
                                              options.doc_stride)
        num_train_steps = specs.training_steps(len(train_windows), options.train_batch_size,
                                               options.num_train_epochs,
                                               f"the training file {options.train_file}")
        num_warmup_steps = int(num_train_steps * options.warmup_proportion)
        checkpoints.warn_if_resuming(options.output_dir)

    use_tpu = options.run.use_tpu
    model_fn = ner_model.model_fn_builder(
        bert_config=bert_config, num_labels=len(label_set.labels), init_checkpoint=init_checkpoint,
        learning_rate=options.learning_rate, num_train_steps=num_train_steps, num_warmup_steps=num_warmup_steps,
        use_tpu=use_tpu, use_one_hot_embeddings=use_tpu)
    estimator = make_estimator(
        model_fn, options.run, train_batch_size=options.train_batch_size,
        eval_batch_size=options.eval_batch_size, predict_batch_size=options.predict_batch_size)

    phase = _Phase(options, label_set, tokenizer, estimator)
    results = NerResults()
    if options.do_train:
        phase.train(train_windows, num_train_steps)
    if options.do_eval:
        results.eval_results = phase.evaluate(dev_sentences)
    if options.do_predict:
        results.predictions_file, results.test_results = phase.predict(test_sentences)
    if options.export_dir:
        spec = ner_data.ner_feature_spec(options.max_seq_length)
        text_signature = None
        if not options.preserve_unused_tokens:  # the graph tokenizer is FullTokenizer's default
            text_signature = export.TextSignature(
                functools.partial(ner_model.prediction_outputs, options.run.performance.model_config(bert_config),
                                  num_labels=len(label_set.labels)),
                options.vocab_file, options.do_lower_case,
                ner_text_graph.TextsToTag(options.max_seq_length, options.doc_stride, label_set.labels))
        results.saved_model_dir = export.export_task_model(estimator, options.export_dir, spec, init_checkpoint,
                                                           text_signature=text_signature)
        save_with_saved_model(results.saved_model_dir, description, options.vocab_file)
    return results


class _Phase:
    """Training and labelling of sentences, sharing the labels, tokenizer and estimator."""

    def __init__(self, options: NerOptions, label_set: LabelSet, tokenizer, estimator):
        self.options = options
        self.labels = label_set.labels
        self.tokenizer = tokenizer
        self.estimator = estimator
        self.lengths = options.length_settings()

    def _record_path(self, name: str) -> str:
        return os.path.join(self.options.output_dir, name)

    def train(self, windows: List[ner_data.Window], num_train_steps: int) -> None:
        path = self._record_path("train.tf_record")
        ner_data.write_windows(windows, path, self.options.max_seq_length)
        tf.logging.info("***** Running training *****")
        tf.logging.info("  Num windows = %d", len(windows))
        tf.logging.info("  Batch size = %d", self.options.train_batch_size)
        tf.logging.info("  Num steps = %d", num_train_steps)
        start = time.time()
        input_fn = ner_data.input_fn_builder(path, self.options.max_seq_length, is_training=True,
                                             drop_remainder=True, lengths=self.lengths)
        self.estimator.train(input_fn=input_fn, max_steps=num_train_steps)
        tf.logging.info("Training took %.1f s", time.time() - start)

    def label(self, sentences: Sequence[Sentence], batch_size: int, record_name: str) -> List[List[str]]:
        """The predicted BIO tags of every word of `sentences` (valid spans)."""
        max_seq_length = self.options.max_seq_length
        windows = ner_data.make_windows(sentences, self.labels, self.tokenizer, max_seq_length,
                                        self.options.doc_stride)
        num_actual = len(windows)
        use_tpu = self.options.run.use_tpu
        if use_tpu:  # TPUs need whole batches; padding windows own no word
            windows = ner_data.padded_for_tpu(windows, batch_size, max_seq_length)
        # With dynamic_padding, windows run shortest first (shorter batches) and results return to input order.
        order = (sequence_length.order_by_length([sum(w.input_mask) for w in windows])
                 if self.lengths.dynamic_padding else list(range(len(windows))))
        path = self._record_path(record_name)
        ner_data.write_windows([windows[i] for i in order], path, max_seq_length)
        tf.logging.info("***** Labelling %d sentences: %d windows (%d padding), batch size %d *****",
                        len(sentences), len(windows), len(windows) - num_actual, batch_size)
        input_fn = ner_data.input_fn_builder(path, max_seq_length, is_training=False, drop_remainder=use_tpu,
                                             lengths=self.lengths)
        probabilities = [p["probabilities"] for p in self.estimator.predict(input_fn=input_fn)]
        if len(probabilities) != len(windows):
            raise RuntimeError(f"got {len(probabilities)} predictions for {len(windows)} windows")
        probabilities = sequence_length.restore_order(probabilities, order)
        label_ids = ner_data.word_label_ids(windows[:num_actual], probabilities[:num_actual], sentences)
        return [ner_metrics.repair_bio([self.labels[i] for i in ids]) for ids in label_ids]

    def _scores(self, sentences: Sequence[Sentence], predicted: Sequence[Sequence[str]], file_name: str
                ) -> Dict[str, object]:
        scores = ner_metrics.entity_scores([s.tags for s in sentences], predicted)
        results = {"eval_" + key: value for key, value in scores.items()}
        results["global_step"] = checkpoints.checkpoint_global_step(self.options.output_dir)
        write_key_value_results(self._record_path(file_name), results)
        return results

    def evaluate(self, sentences: Sequence[Sentence]) -> Dict[str, object]:
        predicted = self.label(sentences, self.options.eval_batch_size, "eval.tf_record")
        return self._scores(sentences, predicted, "eval_results.txt")

    def predict(self, sentences: Sequence[Sentence]) -> Tuple[str, Optional[Dict[str, object]]]:
        predicted = self.label(sentences, self.options.predict_batch_size, "predict.tf_record")
        output_path = self._record_path("test_predictions.txt")
        write_predictions(output_path, sentences, predicted)
        has_gold = all(s.tags is not None for s in sentences)
        return output_path, self._scores(sentences, predicted, "test_results.txt") if has_gold else None


def write_predictions(path: str, sentences: Sequence[Sentence], predicted: Sequence[Sequence[str]]) -> None:
    """CoNLL lines `word<TAB>gold<TAB>predicted` (no gold column for an untagged file), a blank line after each
    sentence; gold tags are the BIO conversion of the file's."""
    with written_then_renamed(path) as writer:
        for sentence, tags in zip(sentences, predicted):
            for index, (word, tag) in enumerate(zip(sentence.words, tags)):
                columns = [word] + ([sentence.tags[index]] if sentence.tags is not None else []) + [tag]
                writer.write("\t".join(columns) + "\n")
            writer.write("\n")
