"""SavedModel export for serving, shared by the task scripts.

The exported graph is the model_fn's PREDICT graph; its `serving_default` signature takes the raw int32 feature
tensors (e.g. input_ids, input_mask, segment_ids, each [batch_size, seq_length]) and returns the model_fn's
predictions. Features the model_fn reads but a client has no business sending (a classifier's `label_ids`) are fed
as zeros.
"""

import os
import re
from typing import Callable, Dict, Mapping, NamedTuple, Optional

import numpy as np
import tensorflow.compat.v1 as tf

from bert.runtime.input_pipeline import Feature, FeatureSpec
from bert.runtime.specs import estimator_available

SERVING_TAG = tf.saved_model.SERVING
SIGNATURE_KEY = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
# What a serving client sends for every task; any other feature of a task's spec is fed as zeros.
SERVING_FEATURE_NAMES = ("input_ids", "input_mask", "segment_ids")


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


def export_task_model(estimator, export_dir: str, feature_spec: FeatureSpec,
                      fallback_checkpoint: Optional[str] = None) -> str:
    """Exports a task's model for serving: the newest checkpoint in the estimator's model_dir (the fine-tuned
    weights), else `fallback_checkpoint`; clients send SERVING_FEATURE_NAMES, the rest of `feature_spec` is zeros."""
    serving = [f for f in feature_spec if f.name in SERVING_FEATURE_NAMES]
    zeros = [f for f in feature_spec if f.name not in SERVING_FEATURE_NAMES]
    checkpoint = tf.train.latest_checkpoint(estimator.model_dir) or fallback_checkpoint
    return export_saved_model(estimator, export_dir, serving, zeros, checkpoint_path=checkpoint)


def predict_with_saved_model(saved_model_dir: str, features: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Runs the serving signature of a SavedModel on numpy `features` (what a serving client does), in a new graph."""
    if not tf.io.gfile.exists(os.path.join(saved_model_dir, "saved_model.pb")):
        raise FileNotFoundError(f"no saved_model.pb in {saved_model_dir}")
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as session:
        meta_graph = tf.saved_model.loader.load(session, [SERVING_TAG], saved_model_dir)
        signature = meta_graph.signature_def[SIGNATURE_KEY]
        missing = set(signature.inputs) - set(features)
        if missing:
            raise ValueError(f"the serving signature needs features {sorted(missing)}")
        feed = {graph.get_tensor_by_name(signature.inputs[name].name): features[name] for name in signature.inputs}
        fetches = {name: graph.get_tensor_by_name(output.name) for name, output in signature.outputs.items()}
        return session.run(fetches, feed)
