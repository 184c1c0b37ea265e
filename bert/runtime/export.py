"""SavedModel export for serving, shared by the task scripts.

The exported graph is the model_fn's PREDICT graph; its `serving_default` signature takes the raw int32 feature
tensors (e.g. input_ids, input_mask, segment_ids, each [batch_size, seq_length]) and returns the model_fn's
predictions. Features the model_fn reads but a client has no business sending (a classifier's `label_ids`) are fed
as zeros.
"""

import dataclasses
import os
import re
from typing import Any, Callable, Dict, Mapping, NamedTuple, Optional, Protocol, Sequence, Tuple

import numpy as np
import tensorflow.compat.v1 as tf

from bert import tokenization
from bert.runtime.graph_tokenization import GraphTokenizer, pack_pairs
from bert.runtime.input_pipeline import Feature, FeatureSpec
from bert.runtime.specs import estimator_available

SERVING_TAG = tf.saved_model.SERVING
SIGNATURE_KEY = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
# What a serving client sends for every task; any other feature of a task's spec is fed as zeros.
SERVING_FEATURE_NAMES = ("input_ids", "input_mask", "segment_ids")
TEXT_SIGNATURE_KEY = "text"  # [new] raw text in: text_a, text_b (classifier), question, context (SQuAD), text (NER)
TEXT_INPUT_NAMES = ("text_a", "text_b")


def _tensor_dtype(feature: Feature) -> tf.DType:
    """The dtype the model sees: the input pipeline reads int64 features back as int32."""
    return tf.float32 if feature.dtype == "float32" else tf.int32


class ServingInputs(NamedTuple):
    """What the session engine needs of a serving input receiver (the Estimator's ServingInputReceiver has more)."""

    features: Dict[str, tf.Tensor]
    receiver_tensors: Dict[str, tf.Tensor]


def serving_input_receiver_fn(serving_features: FeatureSpec, zero_features: FeatureSpec = ()) -> Callable:
    """The receiver: one placeholder [batch_size, *shape] per serving feature, zeros for each of `zero_features`;
    a tf.estimator ServingInputReceiver where TensorFlow has the Estimator, else ServingInputs."""
    if not serving_features:
        raise ValueError("serving_input_receiver_fn needs at least one serving feature")

    def receiver_fn():
        inputs = {f.name: tf.placeholder(_tensor_dtype(f), [None] + list(f.shape), name=f.name)
                  for f in serving_features}
        batch_size = tf.shape(inputs[serving_features[0].name])[0]
        features = dict(inputs)
        for f in zero_features:
            features[f.name] = tf.zeros(tf.stack([batch_size] + list(f.shape)), _tensor_dtype(f))
        if estimator_available():
            return tf.estimator.export.ServingInputReceiver(features, inputs)
        return ServingInputs(features, inputs)

    return receiver_fn


def export_saved_model(estimator, export_dir: str, serving_features: FeatureSpec,
                       zero_features: FeatureSpec = (), checkpoint_path: Optional[str] = None) -> str:
    """Writes a SavedModel of `estimator`'s PREDICT graph into a new numbered subdirectory of `export_dir`.

    Args:
      estimator: the task's engine (bert.runtime.engine.make_estimator).
      export_dir: parent directory; each export gets a subdirectory named by its timestamp (TF Serving's versions).
      serving_features: the features clients send, in signature order.
      zero_features: features the model_fn needs that are fed as zeros.
      checkpoint_path: weights to export; None for the newest checkpoint in the estimator's model_dir.

    Returns:
      The path of the SavedModel directory written.
    """
    if checkpoint_path is None and not tf.train.latest_checkpoint(estimator.model_dir):
        raise FileNotFoundError(f"nothing to export: no checkpoint in {estimator.model_dir} and no checkpoint_path")
    tf.io.gfile.makedirs(export_dir)
    try:
        path = estimator.export_saved_model(export_dir, serving_input_receiver_fn(serving_features, zero_features),
                                            checkpoint_path=checkpoint_path)
    except (tf.errors.NotFoundError, ValueError) as error:
        # Typically a pre-trained checkpoint without the task's output layer: nothing fine-tuned to serve yet.
        missing = re.search(r"Key (\S+) not found in checkpoint", str(error))
        if not missing:
            raise
        raise ValueError(f"cannot export {checkpoint_path or estimator.model_dir}: it lacks the variable "
                         f"{missing.group(1)} of the task's model; export a fine-tuned checkpoint (run with "
                         "--do_train first)") from None
    path = path.decode("utf-8") if isinstance(path, bytes) else path
    tf.logging.info("Exported the SavedModel for serving to %s", path)
    return path


class TextInputs(Protocol):
    """How a task's text signature turns raw strings into the model's id features and its outputs into answers."""

    input_names: Tuple[str, ...]  # the signature's string inputs, each [batch]

    def features(self, tokenizer: GraphTokenizer, vocab: Mapping[str, int],
                 texts: Mapping[str, tf.Tensor]) -> Tuple[Dict[str, tf.Tensor], Any]:
        """The model's id features for `texts`, and whatever `outputs` needs to know of how they were made."""

    def outputs(self, model_outputs: Mapping[str, tf.Tensor], made: Any) -> Dict[str, tf.Tensor]:
        """The signature's outputs from the model's outputs on those features."""


@dataclasses.dataclass
class PairTexts:
    """A classifier's text inputs: `text_a` and `text_b` ("" for a single text) packed as encode_text does; the
    outputs are the model's, with "label" (the label of the largest "probabilities") when `labels` is given."""

    max_seq_length: int
    labels: Optional[Sequence[str]] = None
    input_names: Tuple[str, ...] = TEXT_INPUT_NAMES

    def features(self, tokenizer: GraphTokenizer, vocab: Mapping[str, int],
                 texts: Mapping[str, tf.Tensor]) -> Tuple[Dict[str, tf.Tensor], None]:
        return pack_pairs(tokenizer.ids(texts["text_a"]), tokenizer.ids(texts["text_b"]), self.max_seq_length,
                          vocab["[CLS]"], vocab["[SEP]"]), None

    def outputs(self, model_outputs: Mapping[str, tf.Tensor], made: None) -> Dict[str, tf.Tensor]:
        outputs = dict(model_outputs)
        if self.labels is not None:
            outputs["label"] = tf.gather(tf.constant(list(self.labels)), tf.argmax(outputs["probabilities"], axis=-1))
        return outputs


@dataclasses.dataclass
class TextSignature:
    """A signature taking raw text (TEXT_SIGNATURE_KEY): the vocabulary and casing of FullTokenizer, run as graph
    ops, the task's way from strings to features and from the model's outputs to answers, and the model."""

    model_outputs: Callable[[Dict[str, tf.Tensor]], Dict[str, tf.Tensor]]  # ids features -> the model's outputs
    vocab_file: str
    do_lower_case: bool
    inputs: TextInputs


def export_task_model(estimator, export_dir: str, feature_spec: FeatureSpec,
                      fallback_checkpoint: Optional[str] = None,
                      text_signature: Optional[TextSignature] = None) -> str:
    """Exports a task's model for serving: the newest checkpoint in the estimator's model_dir (the fine-tuned
    weights), else `fallback_checkpoint`; clients send SERVING_FEATURE_NAMES, the rest of `feature_spec` is zeros.
    With `text_signature` the SavedModel also takes raw text (see `add_text_signature`)."""
    serving = [f for f in feature_spec if f.name in SERVING_FEATURE_NAMES]
    zeros = [f for f in feature_spec if f.name not in SERVING_FEATURE_NAMES]
    checkpoint = tf.train.latest_checkpoint(estimator.model_dir) or fallback_checkpoint
    path = export_saved_model(estimator, export_dir, serving, zeros, checkpoint_path=checkpoint)
    if text_signature is not None:
        add_text_signature(path, checkpoint, serving, text_signature)
    return path


def add_text_signature(saved_model_dir: str, checkpoint: str, serving_features: FeatureSpec,
                       text_signature: TextSignature) -> None:
    """Rewrites the SavedModel with two signatures on the same weights: `serving_default` (ids, as before) and
    TEXT_SIGNATURE_KEY, which takes the task's strings (`text_signature.inputs`) and tokenizes in the graph with
    core ops only, so TensorFlow Serving or any TensorFlow 2.15-2.21 process serves raw text."""
    graph = tf.Graph()
    with graph.as_default():
        vocab = tokenization.load_vocab(text_signature.vocab_file)
        tokenizer = GraphTokenizer(vocab, text_signature.do_lower_case)
        texts = {name: tf.placeholder(tf.string, [None], name=name) for name in text_signature.inputs.input_names}
        features, made = text_signature.inputs.features(tokenizer, vocab, texts)
        # One model for both signatures: its id inputs default to the tokenized text, and a client that feeds ids
        # instead never runs the tokenization (TensorFlow prunes what a fed tensor would have computed).
        ids_inputs = {f.name: tf.placeholder_with_default(features[f.name], [None] * (1 + len(f.shape)), name=f.name)
                      for f in serving_features}
        ids_outputs = text_signature.model_outputs(ids_inputs)
        text_outputs = text_signature.inputs.outputs(ids_outputs, made)
        saver = tf.train.Saver(tf.global_variables())
        with tf.Session(graph=graph) as session:
            saver.restore(session, checkpoint)
            rewritten = saved_model_dir.rstrip("/") + ".with-text"
            builder = tf.saved_model.builder.SavedModelBuilder(rewritten)
            builder.add_meta_graph_and_variables(
                session, [SERVING_TAG], main_op=tf.tables_initializer(),
                signature_def_map={
                    SIGNATURE_KEY: tf.saved_model.predict_signature_def(ids_inputs, ids_outputs),
                    TEXT_SIGNATURE_KEY: tf.saved_model.predict_signature_def(texts, text_outputs)})
            builder.save()
    replaced = saved_model_dir.rstrip("/") + ".ids-only"
    tf.io.gfile.rename(saved_model_dir, replaced)
    tf.io.gfile.rename(rewritten, saved_model_dir)
    tf.io.gfile.rmtree(replaced)


def predict_with_saved_model(saved_model_dir: str, features: Mapping[str, np.ndarray],
                             signature_key: str = SIGNATURE_KEY) -> Dict[str, np.ndarray]:
    """Runs a signature of a SavedModel (the ids one, or TEXT_SIGNATURE_KEY on strings) on numpy `features`, what a
    serving client does, in a new graph."""
    if not tf.io.gfile.exists(os.path.join(saved_model_dir, "saved_model.pb")):
        raise FileNotFoundError(f"no saved_model.pb in {saved_model_dir}")
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as session:
        meta_graph = tf.saved_model.loader.load(session, [SERVING_TAG], saved_model_dir)
        signature = meta_graph.signature_def[signature_key]
        missing = set(signature.inputs) - set(features)
        if missing:
            raise ValueError(f"the serving signature needs features {sorted(missing)}")
        feed = {graph.get_tensor_by_name(signature.inputs[name].name): features[name] for name in signature.inputs}
        fetches = {name: graph.get_tensor_by_name(output.name) for name, output in signature.outputs.items()}
        return session.run(fetches, feed)
