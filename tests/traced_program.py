"""Runs one of our programs from its command line while recording the graphs its training session executed.

    python tests/traced_program.py REPORT.json bert.run_classifier --task_name=... [flags]

Every training call of either engine (Estimator.train, SessionEstimator.train) gets a hook asking each training step for full-trace run metadata with the partition
graphs, i.e. the graphs after Grappler's rewrites (mixed precision, oneDNN kernels, XLA clustering) as they
actually ran. REPORT.json gets, over all traced steps:
  op_types: sorted op types that ran;
  matmul_dtypes: {op type containing "MatMul": sorted dtypes of its `T` attribute};
  casts: sorted "SrcT->DstT" of the Cast ops (e.g. "DT_FLOAT->DT_HALF");
  local_variables: {name: final value} of scalar local variables (e.g. the float16 loss scale);
  traced_steps: how many steps were traced.
"""

import importlib
import json
import sys

import tensorflow.compat.v1 as tf
from tensorflow.core.framework import types_pb2


class GraphTraceHook(tf.train.SessionRunHook):
    def __init__(self, report_path: str):
        self._report_path = report_path
        self._op_types = set()
        self._matmul_dtypes = {}
        self._casts = set()
        self._traced_steps = 0

    def before_run(self, run_context):
        options = tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE, output_partition_graphs=True)
        return tf.train.SessionRunArgs(fetches=None, options=options)

    def after_run(self, run_context, run_values):
        self._traced_steps += 1
        for graph in run_values.run_metadata.partition_graphs:
            for node in graph.node:
                self._op_types.add(node.op)
                if "MatMul" in node.op and "T" in node.attr:
                    self._matmul_dtypes.setdefault(node.op, set()).add(types_pb2.DataType.Name(node.attr["T"].type))
                if node.op == "Cast":
                    self._casts.add("->".join(types_pb2.DataType.Name(node.attr[key].type) for key in ("SrcT", "DstT")))

    def end(self, session):
        scalars = [v for v in tf.local_variables() if v.shape.ndims == 0]
        values = session.run(scalars)
        report = dict(op_types=sorted(self._op_types),
                      matmul_dtypes={op: sorted(dtypes) for op, dtypes in self._matmul_dtypes.items()},
                      casts=sorted(self._casts),
                      local_variables={v.op.name: float(value) for v, value in zip(scalars, values)},
                      traced_steps=self._traced_steps)
        with open(self._report_path, "w") as writer:
            json.dump(report, writer, indent=1)


def main(report_path: str, program: str, *flags: str) -> None:
    from bert.runtime.session_engine import SessionEstimator
    from bert.runtime.specs import estimator_available

    engines = [SessionEstimator] + ([tf.estimator.Estimator] if estimator_available() else [])  # TPUEstimator too
    for engine in engines:
        engine.train = _traced(engine.train, report_path)
    sys.argv = [program, *flags]
    importlib.import_module(program).main()


def _traced(untraced_train, report_path: str):
    def traced_train(self, input_fn, hooks=None, **kwargs):
        return untraced_train(self, input_fn, hooks=[*(hooks or []), GraphTraceHook(report_path)], **kwargs)

    return traced_train


if __name__ == "__main__":
    main(*sys.argv[1:])
