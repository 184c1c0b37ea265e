"""absl flag definitions shared by the task scripts, with the original's names and defaults.

Each script calls the groups it needs; defaults that differ between the original scripts (e.g. max_seq_length
128 for classification, 384 for SQuAD) are arguments.
"""

import sys
from typing import Callable, Sequence

from absl import app, flags
import tensorflow.compat.v1 as tf

from bert import estimator_utils, performance
from bert.errors import UserError

FLAGS = flags.FLAGS


def define_model_flags(with_vocab: bool = True, with_init_checkpoint: bool = True) -> None:
    """bert_config_file, vocab_file, do_lower_case, init_checkpoint and output_dir."""
    flags.DEFINE_string("bert_config_file", None,
                        "The bert_config.json of the pre-trained model: its architecture.")
    if with_vocab:
        flags.DEFINE_string("vocab_file", None, "The WordPiece vocabulary the model was trained with.")
        flags.DEFINE_bool("do_lower_case", True,
                          "Lower-case and strip accents; True for uncased models, False for cased ones.")
    if with_init_checkpoint:
        flags.DEFINE_string("init_checkpoint", None,
                            "Checkpoint to start from, usually a pre-trained BERT (bert_model.ckpt).")


def define_output_dir_flag() -> None:
    flags.DEFINE_string("output_dir", None, "Where checkpoints, TFRecords and results are written.")


def define_tpu_flags(with_cluster: bool = True) -> None:
    """use_tpu, tpu_name, tpu_zone, gcp_project, master, num_tpu_cores."""
    flags.DEFINE_bool("use_tpu", False, "Run on a Cloud TPU instead of CPU/GPU.")
    if with_cluster:
        flags.DEFINE_string("tpu_name", None, "The Cloud TPU to use: its name or grpc://ip.address.of.tpu:8470.")
        flags.DEFINE_string("tpu_zone", None, "[Optional] GCE zone of the Cloud TPU; detected when not given.")
        flags.DEFINE_string("gcp_project", None, "[Optional] GCP project of the Cloud TPU; detected when not given.")
    flags.DEFINE_string("master", None, "[Optional] TensorFlow master URL.")
    flags.DEFINE_integer("num_tpu_cores", 8, "With use_tpu: the number of TPU cores to use.")


def define_run_flags() -> None:
    """save_checkpoints_steps, iterations_per_loop (steps per TPU loop / Estimator call) and the new seed."""
    flags.DEFINE_integer("save_checkpoints_steps", 1000, "Save a checkpoint every this many steps.")
    flags.DEFINE_integer("iterations_per_loop", 1000, "Steps run in each Estimator/TPU loop.")
    flags.DEFINE_integer("seed", None, "[New] Random seed for TF ops and data shuffling; makes a run repeatable.")


def define_fine_tuning_flags(max_seq_length: int, with_eval: bool = True) -> None:
    """Flags of the fine-tuning scripts (run_classifier, run_squad) with the original's defaults."""
    flags.DEFINE_integer("max_seq_length", max_seq_length,
                         "Total WordPiece sequence length after tokenization; longer inputs are truncated, "
                         "shorter ones padded.")
    flags.DEFINE_bool("do_train", False, "Whether to run training.")
    if with_eval:
        flags.DEFINE_bool("do_eval", False, "Whether to run eval on the dev set.")
    flags.DEFINE_bool("do_predict", False, "Whether to predict on the test set.")
    flags.DEFINE_integer("train_batch_size", 32, "Total batch size for training.")
    if with_eval:
        flags.DEFINE_integer("eval_batch_size", 8, "Total batch size for eval.")
    flags.DEFINE_integer("predict_batch_size", 8, "Total batch size for predict.")
    flags.DEFINE_float("learning_rate", 5e-5, "The initial learning rate for Adam.")
    flags.DEFINE_float("num_train_epochs", 3.0, "Total number of training epochs.")
    flags.DEFINE_float("warmup_proportion", 0.1,
                       "Fraction of training with linear learning-rate warmup (0.1 = first 10% of steps).")
    define_dynamic_padding_flag()
    define_group_by_length_flag()


def define_dynamic_padding_flag() -> None:
    """[New] --dynamic_padding, shared by every program that batches sequences."""
    flags.DEFINE_bool("dynamic_padding", False,
                      "[New] Cut each batch to the length of its longest example (rounded up to a multiple of 8) "
                      "instead of padding every example to max_seq_length: the same results with less work.")


def define_group_by_length_flag() -> None:
    """[New] --group_by_length, for programs that train on sequences."""
    flags.DEFINE_bool("group_by_length", False,
                      "[New] With --dynamic_padding: train on batches of examples of similar length (shuffled "
                      "between batches) so that batches are shorter; not the original's batches.")


def define_performance_flags(training: bool = True) -> None:
    """[New] Opt-in speed and scale features (bert.performance); the defaults are the original's behaviour.

    Scripts that only predict (`training=False`) get the precision and XLA flags.
    """
    flags.DEFINE_enum("precision", "fp32", list(performance.PRECISIONS),
                      "[New] Compute precision: fp32 (the original), bf16 (mixed bfloat16 on CPUs with bfloat16 "
                      "units, through oneDNN) or fp16 (mixed float16 with dynamic loss scaling, for GPUs). "
                      "Variables and checkpoints stay float32.")
    flags.DEFINE_bool("use_xla", False, "[New] Compile the graph with XLA (just-in-time).")
    if not training:
        return
    flags.DEFINE_integer("num_accumulation_steps", 1,
                         "[New] Split each training batch of train_batch_size into this many micro-batches and "
                         "accumulate their gradients: the same update with 1/N of the activation memory.")
    flags.DEFINE_enum("distribution_strategy", "none", list(performance.DISTRIBUTION_STRATEGIES),
                      "[New] Data-parallel training: mirrored (all local GPUs) or multi_worker_mirrored (workers "
                      "listed in the TF_CONFIG environment variable). train_batch_size stays the global batch.")
    flags.DEFINE_integer("num_gpus", None, "[New] With distribution_strategy=mirrored: GPUs to use (default all).")


def define_export_flag() -> None:
    flags.DEFINE_string("export_dir", None,
                        "[New] Write a SavedModel for serving (signature serving_default: input_ids, input_mask, "
                        "segment_ids) into a new numbered subdirectory of this directory.")


def define_training_run_flags(with_export: bool = False) -> None:
    """The run, TPU and (new) performance flags every training script takes, and --export_dir if it exports."""
    define_run_flags()
    define_tpu_flags()
    define_performance_flags()
    if with_export:
        define_export_flag()


def run_task_script(options_class: type, run: Callable, required_flags: Sequence[str]) -> None:
    """The whole main of a task script: check `required_flags`, turn all flags into `options_class` (with its
    RunSettings) and call `run(options)`."""

    def task_main() -> None:
        tf.logging.set_verbosity(tf.logging.INFO)
        settings = estimator_utils.RunSettings.from_flags(FLAGS)
        run(estimator_utils.dataclass_from_flags(options_class, FLAGS, run=settings))

    run_program(task_main, required_flags)


def run_program(program_main: Callable[[], None], required_flags: Sequence[str] = ()) -> None:
    """Parses the command line (absl), checks `required_flags` and runs `program_main()`; user errors end in one
    `error: ...` line (see `user_errors_reported`). Every script's main goes through here."""

    def main(argv):
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])} (flags are written --name=value)")
        with user_errors_reported():
            program_main()

    for name in required_flags:
        flags.mark_flag_as_required(name)
    app.run(main)


class user_errors_reported:
    """Context manager: a `UserError` raised inside ends the program with one `error: ...` line on stderr and
    exit status 1, without a traceback; any other exception (a bug) propagates with its traceback."""

    def __enter__(self) -> "user_errors_reported":
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if exc_type is not None and issubclass(exc_type, UserError):
            sys.stderr.write(f"error: {exc}\n")
            sys.stderr.flush()
            raise SystemExit(1)
        return False
