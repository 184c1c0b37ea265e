"""A warm predictor: a fine-tuned model loaded once, answering raw text for as long as the process lives.

`Estimator.predict` builds the graph and restores the checkpoint on every call, so one sentence takes seconds.
A `Predictor` does both once, in its own graph and session, and then only tokenizes and runs the model:

    predictor = Predictor.load("runs/mrpc")          # an output_dir, or a SavedModel from --export_dir
    predictor.classify("The cat sat.", "A cat was sitting.")
    # Classification(label='1', probabilities={'0': 0.08, '1': 0.92})

`classify` serves run_classifier's models, `answer` run_squad's, `tag` run_ner's, and `embed` any of them (its
encoder's layers, as extract_features). The folder must hold the `bert_task.json` its run saved
(bert.runtime.task_file): the task, labels and text settings. Inputs go through the programs' own code, so ids
equal the programs'; batches are cut to their longest input, which changes results only in the last bits (within
1e-5 of the programs' files). Calls may come from several threads at once (a TensorFlow session runs concurrent
calls safely).
"""

import dataclasses
import os
import threading
from typing import Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import tensorflow.compat.v1 as tf
from tensorflow.python.util import deprecation

from bert import modeling, tokenization
from bert.classifier import model as classifier_model
from bert.common.errors import UserError
from bert.features import extraction as feature_extraction
from bert.ner import data as ner_data
from bert.ner import metrics as ner_metrics
from bert.ner import model as ner_model
from bert.runtime import export
from bert.runtime.encoding import encode_text
from bert.runtime.task_file import SAVED_MODEL_EXTRAS, TaskDescription, load_task_description
from bert.squad import data as squad_data
from bert.squad import model as squad_model
from bert.squad import postprocess as squad_postprocess
from bert.squad.postprocess import Answer

DEFAULT_BATCH_SIZE = 32
POOLINGS = ("none", "cls", "mean")
_INPUT_NAMES = export.SERVING_FEATURE_NAMES  # input_ids, input_mask, segment_ids


@dataclasses.dataclass
class Classification:
    label: str  # the most probable label (for regression: the predicted value, as text)
    probabilities: Dict[str, float]  # every label's probability (regression: {"value": v})


@dataclasses.dataclass
class Entity:
    text: str  # text[start:end] of the text it was found in
    type: str  # the entity type of its tags (B-PER, I-PER: "PER")
    start: int
    end: int


class _ModelSession:
    """A graph and a session kept open, run on numpy inputs: the checkpoint's model built here, or a SavedModel's
    serving signature. `sequence_length` is what the inputs must be padded to (None: any length)."""

    def __init__(self, graph: tf.Graph, session: tf.Session, inputs: Mapping[str, tf.Tensor],
                 outputs: Mapping[str, tf.Tensor]):
        self.graph, self.session = graph, session
        self.inputs, self.outputs = dict(inputs), dict(outputs)
        self.sequence_length: Optional[int] = self.inputs[_INPUT_NAMES[0]].shape.as_list()[1]

    def run(self, features: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        return self.session.run(self.outputs, {self.inputs[name]: features[name] for name in self.inputs})

    def run_batches(self, encoded: Sequence, batch_size: int, full_length: Optional[int] = None
                    ) -> List[Dict[str, np.ndarray]]:
        """The outputs for each of the `encoded` inputs (ids, mask and segments padded to one length), in input
        order. Inputs run in batches of similar length, each cut to its longest input, unless the model takes one
        length only or `full_length` asks for that length."""
        lengths = [sum(item.input_mask) for item in encoded]
        order = sorted(range(len(encoded)), key=lengths.__getitem__)
        outputs: List[Optional[Dict[str, np.ndarray]]] = [None] * len(encoded)
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            length = full_length or self.sequence_length or max(lengths[i] for i in batch)
            features = {name: np.array([getattr(encoded[i], name)[:length] for i in batch], dtype=np.int32)
                        for name in _INPUT_NAMES}
            values = self.run(features)
            for position, index in enumerate(batch):
                outputs[index] = {name: value[position] for name, value in values.items()}
        return outputs

    def close(self) -> None:
        self.session.close()


def _inputs() -> Dict[str, tf.Tensor]:
    return {name: tf.placeholder(tf.int32, [None, None], name=name) for name in _INPUT_NAMES}


def _classifier_outputs(description: TaskDescription, config: modeling.BertConfig,
                        inputs: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    is_regression = description.labels is None
    return classifier_model.prediction_outputs(config, inputs, 1 if is_regression else len(description.labels),
                                               is_regression)


def _squad_outputs(description: TaskDescription, config: modeling.BertConfig,
                   inputs: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    return squad_model.prediction_outputs(config, inputs)


def _ner_outputs(description: TaskDescription, config: modeling.BertConfig,
                 inputs: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    return ner_model.prediction_outputs(config, inputs, len(description.labels))


def _model_config(description: TaskDescription, fast_kernels: bool) -> modeling.BertConfig:
    config = modeling.BertConfig.from_dict(description.bert_config)
    return modeling.with_fast_kernels(config) if fast_kernels else config


def _with_constant_weights(model: _ModelSession) -> _ModelSession:
    """The same model with its restored variables turned into constants: about 200 fewer ops per request (handles
    and reads), and oneDNN keeps each weight matrix in its own layout between requests once it knows it constant."""
    output_names = [tensor.op.name for tensor in model.outputs.values()]
    with deprecation.silence():  # its warning addresses TensorFlow 1 code, which this is on purpose
        graph_def = tf.graph_util.convert_variables_to_constants(model.session, model.graph.as_graph_def(),
                                                                 output_names)
    model.close()
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
        graph.finalize()
    tensor = graph.get_tensor_by_name
    return _ModelSession(graph, tf.Session(graph=graph), {name: tensor(t.name) for name, t in model.inputs.items()},
                         {name: tensor(t.name) for name, t in model.outputs.items()})


def _encoder_from_checkpoint(checkpoint: str, description: TaskDescription, fast_kernels: bool) -> _ModelSession:
    """BertModel alone with the checkpoint's encoder weights: all encoder layers, [batch, layers, length, hidden]."""
    graph = tf.Graph()
    with graph.as_default():
        inputs = _inputs()
        model = modeling.BertModel(_model_config(description, fast_kernels), is_training=False,
                                   input_ids=inputs["input_ids"], input_mask=inputs["input_mask"],
                                   token_type_ids=inputs["segment_ids"])
        layers = tf.stack(model.get_all_encoder_layers(), axis=1)
        saver = tf.train.Saver(tf.global_variables())
        session = tf.Session(graph=graph)
        saver.restore(session, checkpoint)
        graph.finalize()
    encoder = _ModelSession(graph, session, inputs, {"layers": layers})
    return _with_constant_weights(encoder) if fast_kernels else encoder


# Each task's PREDICT graph, as its model_fn builds it (same variables, so the run's checkpoint restores).
_TASK_OUTPUTS = {"classifier": _classifier_outputs, "squad": _squad_outputs, "ner": _ner_outputs}


def _from_checkpoint(checkpoint: str, description: TaskDescription, fast_kernels: bool) -> _ModelSession:
    """The task's model on inputs of any batch size and length, with the checkpoint's weights."""
    graph = tf.Graph()
    with graph.as_default():
        inputs = _inputs()
        outputs = _TASK_OUTPUTS[description.task](description, _model_config(description, fast_kernels), inputs)
        saver = tf.train.Saver()
        session = tf.Session(graph=graph)
        saver.restore(session, checkpoint)
        graph.finalize()
    model = _ModelSession(graph, session, inputs, outputs)
    return _with_constant_weights(model) if fast_kernels else model


def _from_saved_model(saved_model_dir: str) -> _ModelSession:
    graph = tf.Graph()
    session = tf.Session(graph=graph)
    with graph.as_default():
        meta_graph = tf.saved_model.loader.load(session, [export.SERVING_TAG], saved_model_dir)
        graph.finalize()
    signature = meta_graph.signature_def[export.SIGNATURE_KEY]
    tensor = graph.get_tensor_by_name
    return _ModelSession(graph, session, {name: tensor(info.name) for name, info in signature.inputs.items()},
                         {name: tensor(info.name) for name, info in signature.outputs.items()})


def _newest_saved_model(path: str) -> Optional[str]:
    """`path` if it is a SavedModel, else the newest numbered SavedModel in it (an --export_dir), else None."""
    if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        return path
    versions = [name.rstrip("/") for name in tf.io.gfile.listdir(path) if name.rstrip("/").isdigit()]
    for version in sorted(versions, key=int, reverse=True):
        if tf.io.gfile.exists(os.path.join(path, version, "saved_model.pb")):
            return os.path.join(path, version)
    return None


def _as_lists(first, second, first_name: str, second_name: str):
    """Two parallel lists of texts from two lists or two strings (`second` may be None: no second texts)."""
    if isinstance(first, str):
        first = [first]
        second = None if second is None else [second]
    elif isinstance(second, str):
        raise TypeError(f"{second_name} is one string but {first_name} is not: give both as lists")
    first = list(first)
    second = [None] * len(first) if second is None else list(second)
    if len(second) != len(first):
        raise ValueError(f"{len(first)} {first_name} but {len(second)} {second_name}")
    return first, second


class Predictor:
    """A fine-tuned model kept loaded; see the module's docstring. Build it with `Predictor.load(path)`."""

    def __init__(self, description: TaskDescription, tokenizer: tokenization.FullTokenizer, model: _ModelSession,
                 source: str, fast_kernels: bool = False):
        self.description = description
        self.tokenizer = tokenizer
        self.source = source  # the checkpoint or SavedModel loaded
        self.fast_kernels = fast_kernels
        self._model = model
        self._encoder_model: Optional[_ModelSession] = None
        self._encoder_lock = threading.Lock()

    @classmethod
    def load(cls, path: str, fast_kernels: bool = False) -> "Predictor":
        """Loads the output_dir of a fine-tuning run (its newest checkpoint), a SavedModel, or an --export_dir
        (its newest SavedModel). `fast_kernels` [new] builds a checkpoint's model from fused kernels
        (`modeling.with_fast_kernels`) with its weights as constants: faster, results within 1e-5. A SavedModel
        runs the graph it was exported with (a run with --fast_kernels exports the fused graph).

        Raises:
          UserError: the path does not exist, holds no checkpoint or SavedModel, or no task file.
        """
        if not tf.io.gfile.isdir(path):
            raise UserError(f"model path {path} is not a folder: give the output_dir of a fine-tuning run, or a "
                            "SavedModel (or the --export_dir holding them)")
        saved_model = _newest_saved_model(path)
        if saved_model is not None:
            description, vocab_file = load_task_description(os.path.join(saved_model, SAVED_MODEL_EXTRAS))
            model, source = None, saved_model
        else:
            description, vocab_file = load_task_description(path)
            source = tf.train.latest_checkpoint(path)
            if source is None:
                raise UserError(f"model path {path} holds no checkpoint and no SavedModel: train into it first "
                                "(--do_train=true), or give the run's --export_dir")
        if description.task not in _TASK_OUTPUTS:
            raise UserError(f"{path} holds a model of task {description.task!r}, which this version cannot serve "
                            f"(it serves {', '.join(sorted(_TASK_OUTPUTS))})")
        tokenizer = tokenization.FullTokenizer(vocab_file, description.do_lower_case,
                                               preserve_unused_tokens=description.preserve_unused_tokens)
        if saved_model is not None:
            if fast_kernels:
                raise UserError(f"fast_kernels builds the model from a checkpoint, and {saved_model} is a SavedModel "
                                "(its graph is fixed): load the run's output_dir, or export with --fast_kernels")
            model = _from_saved_model(saved_model)
        else:
            model = _from_checkpoint(source, description, fast_kernels)
        return cls(description, tokenizer, model, source, fast_kernels)

    def classify(self, texts_a: Union[str, Sequence[str]], texts_b: Union[None, str, Sequence[str]] = None,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> Union[Classification, List[Classification]]:
        """The label and probabilities of each text (or pair `texts_a[i]`, `texts_b[i]`), in input order; one
        text (or pair) of strings gives one result."""
        self._check_task("classifier", "classify")
        single = isinstance(texts_a, str)
        texts_a, texts_b = _as_lists(texts_a, texts_b, "texts_a", "texts_b")
        encoded = [encode_text(self.tokenizer, a, b, self.description.max_seq_length) for a, b in zip(texts_a, texts_b)]
        outputs = self._model.run_batches(encoded, batch_size)
        results = [self._classification(output["probabilities"]) for output in outputs]
        return results[0] if single else results

    def answer(self, questions: Union[str, Sequence[str]], contexts: Union[str, Sequence[str]],
               batch_size: int = DEFAULT_BATCH_SIZE) -> Union[Answer, List[Answer]]:
        """The answer to each question in its context, as run_squad's predictions.json gives it, with its
        character offsets (`contexts[i][answer.start:answer.end] == answer.text`), its probability among the
        n-best and, for SQuAD 2.0 models, the null score difference; "" at (0, 0) when the model finds none.

        A long context is cut into `doc_stride` windows as run_squad does. Windows run at the full max_seq_length:
        run_squad ranks the n-best among all positions, padding included, and cutting the padding could let a
        candidate in that it leaves out.
        """
        self._check_task("squad", "answer")
        single = isinstance(questions, str)
        questions, contexts = _as_lists(questions, contexts, "questions", "contexts")
        if any(context is None for context in contexts):
            raise ValueError("every question needs a context")
        examples = [squad_data.SquadExample(str(index), question, squad_data.split_paragraph(context)[0])
                    for index, (question, context) in enumerate(zip(questions, contexts))]
        settings = self.description.settings
        features: List[squad_data.InputFeatures] = []
        squad_data.convert_examples_to_features(
            examples, self.tokenizer, self.description.max_seq_length, settings["doc_stride"],
            settings["max_query_length"], is_training=False, output_fn=features.append, num_logged=0)
        outputs = self._model.run_batches(features, batch_size, full_length=self.description.max_seq_length)
        results = [squad_postprocess.RawResult(feature.unique_id, output["start_logits"].tolist(),
                                               output["end_logits"].tolist())
                   for feature, output in zip(features, outputs)]
        options = squad_postprocess.PredictionOptions(
            n_best_size=settings["n_best_size"], max_answer_length=settings["max_answer_length"],
            do_lower_case=self.description.do_lower_case,
            version_2_with_negative=settings["version_2_with_negative"],
            null_score_diff_threshold=settings["null_score_diff_threshold"])
        answers = squad_postprocess.answers_in_contexts(examples, contexts, features, results, options)
        return answers[0] if single else answers

    def tag(self, texts: Union[str, Sequence[str]], batch_size: int = DEFAULT_BATCH_SIZE
            ) -> Union[List[Entity], List[List[Entity]]]:
        """The entities of each raw text, as run_ner labels words: the text is split into words (at spaces, each
        punctuation character and CJK ideograph apart), a long one into `doc_stride` windows, and each entity is a
        chunk of its words' BIO tags with its character offsets (`text[entity.start:entity.end]`)."""
        self._check_task("ner", "tag")
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        words = [ner_data.split_words(text) for text in texts]
        sentences = [ner_data.Sentence([word for word, _, _ in sentence_words], None, "text", [])
                     for sentence_words in words]
        windows = [window for index, sentence in enumerate(sentences)
                   for window in ner_data.sentence_windows(index, sentence, None, self.tokenizer,
                                                           self.description.max_seq_length,
                                                           self.description.settings["doc_stride"])]
        outputs = self._model.run_batches(windows, batch_size)
        label_ids = ner_data.word_label_ids(windows, [output["probabilities"] for output in outputs], sentences)
        labels = self.description.labels
        entities = []
        for text, sentence_words, ids in zip(texts, words, label_ids):
            tags = ner_metrics.repair_bio([labels[i] for i in ids])
            entities.append([Entity(text[sentence_words[first][1]:sentence_words[last][2]], entity_type,
                                    sentence_words[first][1], sentence_words[last][2])
                             for entity_type, first, last in ner_metrics.spans(tags)])
        return entities[0] if single else entities

    def embed(self, texts_a: Union[str, Sequence[str]], texts_b: Union[None, str, Sequence[str]] = None,
              layers: Union[str, Sequence[int]] = (-1,), pooling: str = "none",
              batch_size: int = DEFAULT_BATCH_SIZE) -> Union[np.ndarray, List[np.ndarray]]:
        """The encoder's vectors for each text (or pair), as extract_features computes them with this model's
        weights: `layers` as its --layers (-1 the last); float32 arrays [num_layers, num_tokens, hidden] with
        pooling "none" (tokens [CLS] a [SEP] (b [SEP])), or [num_layers, hidden] with "cls" (the [CLS] token's
        vector) or "mean" (the mean over those tokens). Needs the run's checkpoint (a SavedModel keeps only its
        task's outputs)."""
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        config = modeling.BertConfig.from_dict(self.description.bert_config)
        layer_indexes = feature_extraction.parse_layer_indexes(layers, config.num_hidden_layers)
        single = isinstance(texts_a, str)
        texts_a, texts_b = _as_lists(texts_a, texts_b, "texts_a", "texts_b")
        encoded = [encode_text(self.tokenizer, a, b, self.description.max_seq_length) for a, b in zip(texts_a, texts_b)]
        vectors = []
        for item, outputs in zip(encoded, self._encoder().run_batches(encoded, batch_size)):
            tokens = outputs["layers"][layer_indexes, :len(item.tokens)]  # [num_layers, num_tokens, hidden]
            if pooling == "cls":
                tokens = tokens[:, 0]
            elif pooling == "mean":
                tokens = tokens.mean(axis=1)
            vectors.append(tokens)
        return vectors[0] if single else vectors

    def _encoder(self) -> _ModelSession:
        """The encoder alone, every layer as an output, built on first use beside the task's model."""
        with self._encoder_lock:
            if self._encoder_model is None:
                if tf.io.gfile.exists(os.path.join(self.source, "saved_model.pb")):
                    raise UserError(f"embed() needs a checkpoint, and {self.source} is a SavedModel (it keeps only "
                                    "its task's outputs): load the run's output_dir")
                self._encoder_model = _encoder_from_checkpoint(self.source, self.description, self.fast_kernels)
            return self._encoder_model

    def _check_task(self, task: str, method: str) -> None:
        if self.description.task != task:
            raise UserError(f"{method}() needs a {task} model, but {self.source} is a {self.description.task} model")

    def _classification(self, probabilities: np.ndarray) -> Classification:
        labels = self.description.labels
        if labels is None:
            value = float(np.reshape(probabilities, -1)[0])
            return Classification(label=str(value), probabilities={"value": value})
        return Classification(label=labels[int(np.argmax(probabilities))],
                              probabilities={label: float(p) for label, p in zip(labels, probabilities)})

    def close(self) -> None:
        self._model.close()
        if self._encoder_model is not None:
            self._encoder_model.close()

    def __enter__(self) -> "Predictor":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
