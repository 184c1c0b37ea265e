"""Importing files of the original release (google-research/bert) next to this package, for comparisons.

The original says `import tensorflow as tf` and expects TensorFlow 1.x. `load_module` runs one of its files with a
caller-made stand-in under that name (e.g. tensorflow.compat.v1 plus the tf.contrib members it uses, or a tiny
module with only tf.gfile so that no TensorFlow is imported at all), then puts the real entry back.
"""

import importlib.util
import os
import sys
import types


def load_module(path: str, module_name: str, tensorflow_stand_in: types.ModuleType) -> types.ModuleType:
    """Executes the Python file `path` as a new module named `module_name`, with `import tensorflow` inside it
    giving `tensorflow_stand_in`.

    Raises:
      FileNotFoundError: there is no file at `path`.
    """
    spec = importlib.util.spec_from_file_location(module_name, path) if os.path.isfile(path) else None
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"{path} is not a loadable Python file")
    module = importlib.util.module_from_spec(spec)
    saved = sys.modules.get("tensorflow")
    sys.modules["tensorflow"] = tensorflow_stand_in
    try:
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            del sys.modules["tensorflow"]
        else:
            sys.modules["tensorflow"] = saved
    return module


def _has_estimator(tf) -> bool:
    try:
        return tf.estimator.tpu is not None
    except (AttributeError, ImportError):
        return False


def tensorflow1_stand_in() -> types.ModuleType:
    """`tensorflow.compat.v1` plus the `tf.contrib` members the original's modeling, optimization and
    run_classifier use, mapped to their TF 2.15 homes. Enough to run the original's programs unchanged.

    TF 2.15 has no tf.contrib.layers.layer_norm; the stand-in computes it as contrib did (variables
    `<scope or LayerNorm>/beta` zeros and `/gamma` ones, moments over the last axis, epsilon 1e-12) without
    using this package, so that a comparison with the original does not run our code on both sides.
    """
    import tensorflow.compat.v1 as tf

    def contrib_layer_norm(inputs, begin_norm_axis=-1, begin_params_axis=-1, scope=None):
        if begin_norm_axis != -1 or begin_params_axis != -1:
            raise NotImplementedError("only layer normalisation over the last axis is provided")
        with tf.variable_scope(scope, default_name="LayerNorm"):
            depth = inputs.shape[-1:]
            beta = tf.get_variable("beta", shape=depth, dtype=inputs.dtype, initializer=tf.zeros_initializer())
            gamma = tf.get_variable("gamma", shape=depth, dtype=inputs.dtype, initializer=tf.ones_initializer())
            mean, variance = tf.nn.moments(inputs, [inputs.shape.rank - 1], keep_dims=True)
            return tf.nn.batch_normalization(inputs, mean, variance, offset=beta, scale=gamma,
                                             variance_epsilon=1e-12)

    stand_in = types.ModuleType("tensorflow")
    stand_in.__dict__.update(vars(tf))
    contrib_tpu = types.SimpleNamespace(CrossShardOptimizer=tf.tpu.CrossShardOptimizer)
    if _has_estimator(tf):  # TensorFlow 2.16+ has none: there only the original's tokenizer and data code run
        tpu = tf.estimator.tpu
        contrib_tpu.__dict__.update(RunConfig=tpu.RunConfig, TPUConfig=tpu.TPUConfig, TPUEstimator=tpu.TPUEstimator,
                                    InputPipelineConfig=tpu.InputPipelineConfig,
                                    TPUEstimatorSpec=tpu.TPUEstimatorSpec)
    stand_in.contrib = types.SimpleNamespace(
        layers=types.SimpleNamespace(layer_norm=contrib_layer_norm),
        tpu=contrib_tpu,
        cluster_resolver=types.SimpleNamespace(TPUClusterResolver=tf.distribute.cluster_resolver.TPUClusterResolver),
        data=types.SimpleNamespace(map_and_batch=tf.data.experimental.map_and_batch))
    return stand_in


def run_original_script(bert_dir: str, script: str, argv: list) -> None:
    """Runs the `main` of `script` (e.g. run_classifier.py) of an original checkout in `bert_dir` with the command
    line `argv`, its sibling modules importable by their own names and `tensorflow` the TF 1 stand-in."""
    import tensorflow.compat.v1 as tf
    from absl import app

    tf.disable_v2_tensorshape()  # the original reads dimensions as TF 1 `Dimension`s (`.value`); process-wide
    stand_in = tensorflow1_stand_in()
    for name in ("tokenization", "modeling", "optimization"):
        sys.modules[name] = load_module(os.path.join(bert_dir, name + ".py"), name, stand_in)
    program = load_module(os.path.join(bert_dir, script), "original_" + script[:-len(".py")], stand_in)
    app.run(program.main, argv=[script] + list(argv))
