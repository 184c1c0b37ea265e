"""Opt-in speed and scale features shared by every task: mixed precision, XLA, gradient accumulation, multi-device.

All of them default to off, and then nothing here touches the graph or the session: the original's behaviour.

- Mixed precision uses Grappler's automatic mixed-precision rewrite, applied when a session runs the graph:
  variables, checkpoints and the graph itself stay float32, so checkpoints load in float32 runs unchanged. `bf16`
  turns on the oneDNN bfloat16 rewrite (CPUs with bfloat16 units), `fp16` the CUDA float16 rewrite (GPUs) plus
  dynamic loss scaling in the optimizer. Softmax, log-softmax and layer normalisation's `Mean` and `Rsqrt` are
  kept in float32 (TensorFlow 2.15's rewrite already keeps the latter two; 2.16+ would not).
- XLA compiles the graph just in time (`global_jit_level`); on CPU, TensorFlow also needs
  `--tf_xla_cpu_global_jit` in `TF_XLA_FLAGS`, which `session_config` adds.
- Gradient accumulation and data-parallel training change the training step; `bert.runtime.engine` hands the
  settings to each task's model_fn in its `params`, and `train_spec` passes them (and the optimizer: AdamW or LAMB)
  to `optimization.create_optimizer` as arguments.
- Gradient checkpointing recomputes each encoder layer in the backward pass instead of keeping its activations:
  the task's model_fn passes it to `modeling.BertModel`.
- Fast kernels build the same model from fewer, fused kernels (`modeling.with_fast_kernels`): the task's model_fn
  builds its BertModel from `model_config(bert_config)`.
"""

import dataclasses
import os
from typing import List, Optional

import tensorflow.compat.v1 as tf
from tensorflow.core.protobuf import rewriter_config_pb2
from tensorflow.python.client import pywrap_tf_session

from bert import modeling
from bert.common.errors import UserError
from bert.optimization import OPTIMIZERS

PRECISIONS = ("fp32", "fp16", "bf16")
DISTRIBUTION_STRATEGIES = ("none", "mirrored", "multi_worker_mirrored")

# Ops the mixed-precision rewrite must leave in float32, and the rewrite's environment variables that say so (read
# by TensorFlow each time the rewrite runs; an op may sit in only one list, so it leaves the others first).
# Layer normalisation's Mean and Rsqrt are on TensorFlow 2.15's float32 list already; 2.16+ moved them off it.
FLOAT32_OPS = ("Softmax", "LogSoftmax", "Mean", "Rsqrt")
_OP_LIST_VARIABLE = "TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_{}"
_LISTS_TO_LEAVE = ("ALLOWLIST_REMOVE", "INFERLIST_REMOVE", "CLEARLIST_REMOVE")
_FLOAT32_LIST = "DENYLIST_ADD"
_XLA_CPU_FLAG = "--tf_xla_cpu_global_jit"


@dataclasses.dataclass
class PerformanceSettings:
    """The opt-in features of a run; the defaults reproduce the original exactly."""

    precision: str = "fp32"  # one of PRECISIONS
    use_xla: bool = False
    num_accumulation_steps: int = 1  # micro-batches summed into each update; train_batch_size stays the update's
    distribution_strategy: str = "none"  # one of DISTRIBUTION_STRATEGIES
    num_gpus: Optional[int] = None  # GPUs per worker for mirrored training; None = all visible
    gradient_checkpointing: bool = False  # recompute encoder layers in the backward pass (less memory, more time)
    optimizer: str = "adamw"  # one of OPTIMIZERS; adamw is the original's AdamWeightDecay
    fast_kernels: bool = False  # the same model from fused kernels; results move in the last bits only

    def validate(self, use_tpu: bool = False) -> None:
        """Raises UserError naming the setting when a value, or a combination with `use_tpu`, is unsupported."""
        if self.precision not in PRECISIONS:
            raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.distribution_strategy not in DISTRIBUTION_STRATEGIES:
            raise UserError(f"distribution_strategy must be one of {', '.join(DISTRIBUTION_STRATEGIES)}, "
                             f"got {self.distribution_strategy!r}")
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if not isinstance(self.num_accumulation_steps, int) or self.num_accumulation_steps < 1:
            raise UserError(f"num_accumulation_steps must be an integer >= 1, got {self.num_accumulation_steps!r}")
        if self.num_gpus is not None and self.num_gpus < 0:
            raise UserError(f"num_gpus must be >= 0, got {self.num_gpus}")
        if use_tpu:
            self._validate_for_tpu()
        elif self.precision == "bf16" and bfloat16_units() is False:
            tf.logging.warning(
                "precision=bf16 on a CPU without bfloat16 units (/proc/cpuinfo lists neither avx512_bf16 nor "
                "amx_bf16): bfloat16 is converted, not computed, here, which made training about 0.4x as fast as "
                "fp32 where measured (docs/speed_and_scale.md); use precision=fp32 on this CPU")

    def _validate_for_tpu(self) -> None:
        if self.precision != "fp32":
            raise UserError(
                f"precision={self.precision} is not available with use_tpu: the rewrite it relies on runs on CPUs "
                "and GPUs only (TPUs already multiply float32 matrices in bfloat16 passes)")
        if self.num_accumulation_steps > 1:
            raise UserError("num_accumulation_steps > 1 is for GPUs and CPUs; with use_tpu raise the batch size "
                             "or the number of TPU cores instead")
        if self.distribution_strategy != "none":
            raise UserError(f"distribution_strategy={self.distribution_strategy} is for GPUs and CPUs; TPUEstimator "
                             "already spreads training over num_tpu_cores")

    @property
    def uses_loss_scaling(self) -> bool:
        """float16 gradients underflow without loss scaling; bfloat16 has float32's exponent range and needs none."""
        return self.precision == "fp16"

    @property
    def is_distributed(self) -> bool:
        return self.distribution_strategy != "none"

    def model_config(self, bert_config: Optional[modeling.BertConfig]) -> Optional[modeling.BertConfig]:
        """The config a model_fn builds its BertModel from: the original's, or its fast-kernels copy (None stays
        None: a TF Hub encoder brings its graph ready-made)."""
        if self.fast_kernels and bert_config is not None:
            return modeling.with_fast_kernels(bert_config)
        return bert_config

    @classmethod
    def from_flags(cls, flags_values) -> "PerformanceSettings":
        """The settings from absl flags of the same names; flags a script does not define keep their defaults."""
        return cls(**{f.name: getattr(flags_values, f.name) for f in dataclasses.fields(cls) if f.name in flags_values})


def micro_batch_size(train_batch_size: Optional[int], num_accumulation_steps: int) -> Optional[int]:
    """The batch each training step reads: train_batch_size (one update) split into num_accumulation_steps."""
    if train_batch_size is None or num_accumulation_steps == 1:
        return train_batch_size
    check_batch_divides(train_batch_size, num_accumulation_steps, "micro-batches (num_accumulation_steps)")
    return train_batch_size // num_accumulation_steps


def check_batch_divides(batch_size: Optional[int], parts: int, what: str) -> None:
    """A training batch must split evenly into micro-batches or replicas (`what` names which)."""
    if batch_size is not None and batch_size % parts:
        raise UserError(f"a training batch of {batch_size} examples cannot be split evenly into {parts} {what}: "
                        f"choose a train_batch_size that is a multiple of {parts}")


def bfloat16_units() -> Optional[bool]:
    """Whether the CPU computes in bfloat16 (AVX512_BF16 or AMX), which precision=bf16 needs to pay (needed, not
    sufficient: an Intel Xeon with AVX512_BF16 and no AMX trained slower in bf16); None where /proc/cpuinfo cannot
    tell (not Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as reader:
            flags = reader.read()
    except OSError:
        return None
    return "avx512_bf16" in flags or "amx_bf16" in flags


# --- Session options: mixed precision and XLA -------------------------------------------------------------------

def session_config(settings: PerformanceSettings) -> Optional[tf.ConfigProto]:
    """The session ConfigProto for `settings`; None (Estimator's default) when every feature it serves is off.

    It enables the precision rewrite and XLA, and for data-parallel training makes the session create every
    logical CPU device (an explicit ConfigProto otherwise gets one, whatever tf.config set up).
    """
    if settings.precision == "fp32" and not settings.use_xla and not settings.is_distributed:
        return None
    # What Estimator uses when given no ConfigProto, plus the features.
    config = tf.ConfigProto(allow_soft_placement=True)
    config.graph_options.rewrite_options.meta_optimizer_iterations = rewriter_config_pb2.RewriterConfig.ONE
    if settings.precision != "fp32":
        _enable_mixed_precision(config.graph_options.rewrite_options, settings.precision)
    if settings.use_xla:
        _enable_xla(config)
    if settings.is_distributed:
        config.device_count["CPU"] = len(tf.config.list_logical_devices("CPU"))
    return config


def _enable_mixed_precision(rewrite_options: rewriter_config_pb2.RewriterConfig, precision: str) -> None:
    keep_ops_in_float32(FLOAT32_OPS)
    on = rewriter_config_pb2.RewriterConfig.ON
    if precision == "bf16":
        rewrite_options.auto_mixed_precision_onednn_bfloat16 = on
        return
    rewrite_options.auto_mixed_precision = on
    if not tf.config.list_physical_devices("GPU"):
        # Without a GPU, TensorFlow emulates float16 on CPU: rounding as on a GPU, float32 speed or slower.
        tf.logging.warning("precision=fp16 without a GPU: float16 is only emulated on CPU (for testing); "
                           "use precision=bf16 on CPUs with bfloat16 units")
        rewrite_options.auto_mixed_precision_cpu = on


def keep_ops_in_float32(op_types: List[str]) -> None:
    """Tells the mixed-precision rewrite (through its environment variables) to leave `op_types` in float32."""
    for suffix in _LISTS_TO_LEAVE + (_FLOAT32_LIST,):
        _add_to_env_list(_OP_LIST_VARIABLE.format(suffix), op_types)


def _add_to_env_list(name: str, items: List[str]) -> None:
    present = [item for item in os.environ.get(name, "").split(",") if item]
    os.environ[name] = ",".join(present + [item for item in items if item not in present])


def _enable_xla(config: tf.ConfigProto) -> None:
    config.graph_options.optimizer_options.global_jit_level = tf.OptimizerOptions.ON_1
    # TF_XLA_FLAGS is parsed once per process, usually before this runs: also set the parsed flag itself.
    flags = os.environ.get("TF_XLA_FLAGS", "")
    if _XLA_CPU_FLAG not in flags.split():
        os.environ["TF_XLA_FLAGS"] = f"{flags} {_XLA_CPU_FLAG}".strip()
    pywrap_tf_session.TF_SetTfXlaCpuGlobalJit(True)


# --- Data-parallel training -------------------------------------------------------------------------------------

def make_distribution_strategy(settings: PerformanceSettings) -> Optional[tf.distribute.Strategy]:
    """The tf.distribute strategy for Estimator's `train_distribute`, or None without distribution.

    `mirrored` replicates over the local GPUs (`num_gpus` of them, or all), or over the logical CPU devices when
    there is no GPU. `multi_worker_mirrored` also spans the workers listed in the TF_CONFIG environment variable.
    """
    if settings.distribution_strategy == "mirrored":
        return tf.distribute.MirroredStrategy(devices=_local_devices(settings.num_gpus))
    if settings.distribution_strategy == "multi_worker_mirrored":
        return tf.distribute.experimental.MultiWorkerMirroredStrategy()
    return None


def _local_devices(num_gpus: Optional[int]) -> List[str]:
    gpus = [device.name for device in tf.config.list_logical_devices("GPU")]
    if num_gpus is not None and num_gpus > len(gpus):
        raise UserError(f"num_gpus={num_gpus} but only {len(gpus)} GPU(s) are visible")
    if gpus and num_gpus != 0:
        return gpus[:num_gpus] if num_gpus else gpus
    return [device.name for device in tf.config.list_logical_devices("CPU")]
