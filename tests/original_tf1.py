"""Runs a program of the original release (a google-research/bert checkout) under TensorFlow 2.15, unchanged.

    python tests/original_tf1.py ORIGINAL_BERT_DIR extract_features.py --input_file=... [flags]

The original says `import tensorflow as tf` and uses TF 1.x names. This gives that import `tensorflow.compat.v1`
plus the `tf.contrib` members its programs use, mapped to their TF 2.15 homes (TPUEstimator and friends from
tf.estimator.tpu, `layers.layer_norm` from this package, the same variables and math), then runs the file as
`__main__`. Tests use it to compare our output with the original's; nothing of the original is copied here.
"""

import os
import runpy
import sys
import types


def tensorflow_stand_in() -> types.ModuleType:
    import tensorflow.compat.v1 as tf

    from bert import modeling

    def contrib_layer_norm(inputs, begin_norm_axis=-1, begin_params_axis=-1, scope=None):
        if begin_norm_axis != -1 or begin_params_axis != -1:
            raise NotImplementedError("only layer normalisation over the last axis is provided")
        return modeling.layer_norm(inputs, name=scope)

    stand_in = types.ModuleType("tensorflow")
    stand_in.__dict__.update(vars(tf))
    tpu = types.SimpleNamespace(TPUEstimator=tf.estimator.tpu.TPUEstimator, RunConfig=tf.estimator.tpu.RunConfig,
                                TPUConfig=tf.estimator.tpu.TPUConfig,
                                InputPipelineConfig=tf.estimator.tpu.InputPipelineConfig,
                                TPUEstimatorSpec=tf.estimator.tpu.TPUEstimatorSpec,
                                CrossShardOptimizer=tf.tpu.CrossShardOptimizer)
    stand_in.contrib = types.SimpleNamespace(
        layers=types.SimpleNamespace(layer_norm=contrib_layer_norm), tpu=tpu,
        data=types.SimpleNamespace(map_and_batch=tf.data.experimental.map_and_batch),
        cluster_resolver=types.SimpleNamespace(TPUClusterResolver=tf.distribute.cluster_resolver.TPUClusterResolver))
    return stand_in


def main(original_dir: str, program: str, *flags: str) -> None:
    sys.modules["tensorflow"] = tensorflow_stand_in()
    sys.path.insert(0, original_dir)
    sys.argv = [program, *flags]
    runpy.run_path(os.path.join(original_dir, program), run_name="__main__")


if __name__ == "__main__":
    main(*sys.argv[1:])
