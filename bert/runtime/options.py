"""The options every task's run takes: where and how it runs (RunSettings) and what all tasks' option
dataclasses share (TaskOptions, and FineTuningOptions for the tasks that fine-tune a pre-trained BERT)."""

import dataclasses
from typing import Any, Optional

from bert.runtime import sequence_length
from bert.runtime.performance import PerformanceSettings


@dataclasses.dataclass
class RunSettings:
    """Where and how an Estimator runs: the original's common flags (TPU, checkpointing) plus opt-in extras."""

    output_dir: str
    use_tpu: bool = False
    tpu_name: Optional[str] = None
    tpu_zone: Optional[str] = None
    gcp_project: Optional[str] = None
    master: Optional[str] = None
    num_tpu_cores: int = 8
    tpu_job_name: Optional[str] = None  # [1.0.4] the TPU worker job's name when not "tpu_worker"
    iterations_per_loop: int = 1000
    save_checkpoints_steps: int = 1000
    keep_checkpoint_max: int = 5
    seed: Optional[int] = None
    log_every_steps: int = 0  # [new] training progress line every N steps; 0 = about 20 lines per run
    engine: str = "auto"  # [new] what runs the model_fn: one of bert.runtime.engine.ENGINES
    performance: PerformanceSettings = dataclasses.field(default_factory=PerformanceSettings)

    @classmethod
    def from_flags(cls, flags_values) -> "RunSettings":
        return dataclass_from_flags(cls, flags_values, performance=PerformanceSettings.from_flags(flags_values))


class _Required:
    def __repr__(self) -> str:
        return "<required>"


# The default of a field that must be given. Subclasses add fields after the base's defaulted ones, which a
# dataclass only allows for fields with defaults (keyword-only fields need Python 3.10); TaskOptions checks.
REQUIRED: Any = _Required()


class TaskOptions:
    """What the options dataclass of every task shares: its RunSettings (one for its output_dir when none is given)
    and the LengthSettings of its max_seq_length, dynamic_padding and group_by_length."""

    TOKEN_FEATURES = sequence_length.TOKEN_FEATURES  # the features cut with the tokens; a task may name others

    def __post_init__(self):
        missing = [field.name for field in dataclasses.fields(self) if getattr(self, field.name) is REQUIRED]
        if missing:
            raise TypeError(f"{type(self).__name__} needs {', '.join(missing)}")
        if self.run is None:
            self.run = RunSettings(output_dir=self.output_dir)

    def length_settings(self) -> sequence_length.LengthSettings:
        return sequence_length.LengthSettings.for_options(self, token_features=self.TOKEN_FEATURES)


def dataclass_from_flags(cls, flags_values, **overrides):
    """Builds dataclass `cls` from the absl flags named like its fields; fields without a flag keep defaults."""
    values = {f.name: getattr(flags_values, f.name) for f in dataclasses.fields(cls) if f.name in flags_values}
    values.update(overrides)
    return cls(**values)


@dataclasses.dataclass
class FineTuningOptions(TaskOptions):
    """The fields (and flags) of every task that fine-tunes a pre-trained BERT; names and defaults are the
    original's flags. A task's dataclass adds its own fields and may change a default (SQuAD's max_seq_length)."""

    bert_config_file: str = REQUIRED
    vocab_file: str = REQUIRED
    output_dir: str = REQUIRED
    init_checkpoint: Optional[str] = None
    do_lower_case: bool = True
    preserve_unused_tokens: bool = False  # [1.0.4] keep the vocabulary's [unusedN] tokens whole
    max_seq_length: int = 128
    do_train: bool = False
    do_predict: bool = False
    train_batch_size: int = 32
    predict_batch_size: int = 8
    learning_rate: float = 5e-5
    num_train_epochs: float = 3.0
    warmup_proportion: float = 0.1
    export_dir: Optional[str] = None  # [new] write a SavedModel for serving here
    dynamic_padding: bool = False  # [new] cut batches to their longest example; eval/predict ordered by length
    group_by_length: bool = False  # [new] with dynamic_padding: train on batches of similar length
    run: Optional[RunSettings] = None
