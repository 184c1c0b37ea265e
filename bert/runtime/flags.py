"""absl flag definitions shared by the task scripts, with the original's names and defaults.

Each script calls the groups it needs; defaults that differ between the original scripts (e.g. max_seq_length
128 for classification, 384 for SQuAD) are arguments.
"""

import dataclasses
import functools
import os
import sys
from typing import Callable, Dict, Sequence, Tuple

import tensorflow.compat.v1 as tf
from absl import app, flags

from bert.common.errors import UserError, report_error, user_errors_reported  # noqa: F401 (user_errors_reported: API)
from bert.runtime import engine
from bert.runtime.guard import faults_reported
from bert.runtime import logs as program_logging
from bert.runtime import performance
from bert.runtime.options import RunSettings, dataclass_from_flags
from bert.runtime.outputs import check_output_dir, output_dir_lock

FLAGS = flags.FLAGS

# --helpshort heading of each flag (by its Flag object) the groups below define; a program's own flags are listed
# under its name.
_FLAG_GROUPS: Dict[flags.Flag, str] = {}
_NESTED_GROUP_FLAGS: list = []  # while group functions run: the flags each inner one has claimed
_GROUP_ORDER = ("Pre-trained model", "Output", "Training, evaluation and prediction", "Run and checkpoints",
                "TPU", "Speed and scale [new, opt-in]", "Export [new]")


def _flag_group(heading: str) -> Callable[[Callable], Callable]:
    """Decorates a define_* function: the flags it defines are listed under `heading` in --helpshort; those a
    nested group defines keep that group's heading."""

    def decorate(define: Callable) -> Callable:
        @functools.wraps(define)
        def define_in_group(*args, **kwargs):
            before = set(FLAGS)
            _NESTED_GROUP_FLAGS.append(set())
            try:
                define(*args, **kwargs)
            finally:
                nested = _NESTED_GROUP_FLAGS.pop()
            own = set(FLAGS) - before - nested
            for name in own:
                _FLAG_GROUPS[FLAGS[name]] = heading
            if _NESTED_GROUP_FLAGS:
                _NESTED_GROUP_FLAGS[-1].update(own | nested)

        return define_in_group

    return decorate


@_flag_group("Pre-trained model")
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


@_flag_group("Pre-trained model")
def define_preserve_unused_tokens_flag() -> None:
    """--preserve_unused_tokens of bert-tensorflow 1.0.4, for the programs that tokenize text with --vocab_file."""
    flags.DEFINE_bool("preserve_unused_tokens", False,
                      "[New] Keep the vocabulary's [unusedN] entries written in the text as single tokens instead "
                      "of splitting them (markers or special tokens given to spare entries); the flag of the PyPI "
                      "package bert-tensorflow 1.0.4.")


@_flag_group("Output")
def define_output_dir_flag() -> None:
    flags.DEFINE_string("output_dir", None, "Where checkpoints, TFRecords and results are written.")


@_flag_group("TPU")
def define_tpu_flags(with_cluster: bool = True) -> None:
    """use_tpu, tpu_name, tpu_zone, gcp_project, tpu_job_name, master, num_tpu_cores."""
    flags.DEFINE_bool("use_tpu", False, "Run on a Cloud TPU instead of CPU/GPU.")
    if with_cluster:
        flags.DEFINE_string("tpu_name", None, "The Cloud TPU to use: its name or grpc://ip.address.of.tpu:8470.")
        flags.DEFINE_string("tpu_zone", None, "[Optional] GCE zone of the Cloud TPU; detected when not given.")
        flags.DEFINE_string("gcp_project", None, "[Optional] GCP project of the Cloud TPU; detected when not given.")
        flags.DEFINE_string("tpu_job_name", None,
                            "[Optional] Name of the TPU worker job when it is not 'tpu_worker' (the flag of the "
                            "PyPI package bert-tensorflow 1.0.4).")
    flags.DEFINE_string("master", None, "[Optional] TensorFlow master URL.")
    flags.DEFINE_integer("num_tpu_cores", 8, "With use_tpu: the number of TPU cores to use.")


@_flag_group("Run and checkpoints")
def define_run_flags() -> None:
    """save_checkpoints_steps, iterations_per_loop (steps per TPU loop / Estimator call) and the new seed."""
    flags.DEFINE_integer("save_checkpoints_steps", 1000, "Save a checkpoint every this many steps.")
    flags.DEFINE_integer("iterations_per_loop", 1000, "Steps run in each Estimator/TPU loop.")
    flags.DEFINE_integer("seed", None, "[New] Random seed for TF ops and data shuffling; makes a run repeatable.")
    flags.DEFINE_integer("log_every_steps", 0,
                         "[New] Print a progress line (step/total, mean loss, learning rate, examples/s, ETA) every "
                         "this many training steps; 0 = at most about 20 lines per run (total steps / 20, rounded up).")
    define_engine_flag()


@_flag_group("Run and checkpoints")
def define_engine_flag() -> None:
    """[New] --engine: what runs the model (bert.runtime.engine)."""
    flags.DEFINE_enum("engine", "auto", list(engine.ENGINES),
                      "[New] What runs the model: estimator (TPUEstimator, the original's; TensorFlow 2.15 only), "
                      "session (TensorFlow's session machinery, for TensorFlow 2.16 and later, which have no "
                      "Estimator) or auto (the Estimator where it exists). Both write the same checkpoints and files.")


@_flag_group("Training, evaluation and prediction")
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


@_flag_group("Speed and scale [new, opt-in]")
def define_dynamic_padding_flag() -> None:
    """[New] --dynamic_padding, shared by every program that batches sequences."""
    flags.DEFINE_bool("dynamic_padding", False,
                      "[New] Cut each batch to the length of its longest example (rounded up to a multiple of 8) "
                      "instead of padding every example to max_seq_length: the same results with less work.")


@_flag_group("Speed and scale [new, opt-in]")
def define_group_by_length_flag() -> None:
    """[New] --group_by_length, for programs that train on sequences."""
    flags.DEFINE_bool("group_by_length", False,
                      "[New] With --dynamic_padding: train on batches of examples of similar length (shuffled "
                      "between batches) so that batches are shorter; not the original's batches.")


@_flag_group("Speed and scale [new, opt-in]")
def define_performance_flags(training: bool = True) -> None:
    """[New] Opt-in speed and scale features (bert.runtime.performance); the defaults are the original's behaviour.

    Scripts that only predict (`training=False`) get the precision, XLA and fast-kernels flags.
    """
    flags.DEFINE_enum("precision", "fp32", list(performance.PRECISIONS),
                      "[New] Compute precision: fp32 (the original), bf16 (mixed bfloat16 on CPUs with bfloat16 "
                      "units, through oneDNN) or fp16 (mixed float16 with dynamic loss scaling, for GPUs). "
                      "Variables and checkpoints stay float32.")
    flags.DEFINE_bool("use_xla", False, "[New] Compile the graph with XLA (just-in-time).")
    flags.DEFINE_bool("fast_kernels", False,
                      "[New] Build the same model from fused kernels (GELU fused into its matrix product): faster "
                      "predictions, results within 1e-5 of the original graph, checkpoints unchanged.")
    if not training:
        return
    flags.DEFINE_integer("num_accumulation_steps", 1,
                         "[New] Split each training batch of train_batch_size into this many micro-batches and "
                         "accumulate their gradients: the same update with 1/N of the activation memory.")
    flags.DEFINE_enum("distribution_strategy", "none", list(performance.DISTRIBUTION_STRATEGIES),
                      "[New] Data-parallel training: mirrored (all local GPUs) or multi_worker_mirrored (workers "
                      "listed in the TF_CONFIG environment variable). train_batch_size stays the global batch.")
    flags.DEFINE_integer("num_gpus", None, "[New] With distribution_strategy=mirrored: GPUs to use (default all).")
    flags.DEFINE_bool("gradient_checkpointing", False,
                      "[New] Keep only each encoder layer's input in the forward pass and recompute the layer in "
                      "the backward pass: much less activation memory for about one more forward pass of time.")
    flags.DEFINE_enum("optimizer", "adamw", list(performance.OPTIMIZERS),
                      "[New] adamw: the original's Adam with decoupled weight decay. lamb: LAMB (layer-wise trust "
                      "ratio, bias correction), for pre-training with batches in the thousands.")


@_flag_group("Export [new]")
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


def define_fine_tuning_program_flags(max_seq_length: int, with_eval: bool = True) -> None:
    """Every flag a program that fine-tunes a pre-trained BERT shares (run_classifier, run_squad, run_ner): the
    model, output folder, phases, run, TPU, performance and export flags."""
    define_model_flags()
    define_preserve_unused_tokens_flag()
    define_output_dir_flag()
    define_fine_tuning_flags(max_seq_length=max_seq_length, with_eval=with_eval)
    define_training_run_flags(with_export=True)


# Checked before any program starts its work, for the flags the program defines: (test, what it must be).
_POSITIVE = (lambda value: value > 0, "must be greater than 0")
_NON_NEGATIVE = (lambda value: value >= 0, "must be 0 or more")
_PROBABILITY = (lambda value: 0.0 <= value <= 1.0, "must be a probability between 0 and 1")
NUMERIC_FLAG_CONSTRAINTS: Dict[str, Tuple[Callable, str]] = {
    "train_batch_size": _POSITIVE,
    "eval_batch_size": _POSITIVE,
    "predict_batch_size": _POSITIVE,
    "batch_size": _POSITIVE,
    "num_train_epochs": _POSITIVE,
    "num_warmup_steps": _NON_NEGATIVE,
    "learning_rate": _POSITIVE,
    "warmup_proportion": _PROBABILITY,
    "masked_lm_prob": _PROBABILITY,
    "short_seq_prob": _PROBABILITY,
    "max_seq_length": _POSITIVE,
    "max_predictions_per_seq": _NON_NEGATIVE,
    "dupe_factor": _POSITIVE,
    "doc_stride": _POSITIVE,
    "max_query_length": _POSITIVE,
    "n_best_size": _POSITIVE,
    "max_answer_length": _POSITIVE,
    "save_checkpoints_steps": _POSITIVE,
    "iterations_per_loop": _POSITIVE,
    "num_tpu_cores": _POSITIVE,
    "log_every_steps": _NON_NEGATIVE,
    "num_accumulation_steps": _POSITIVE,
    "num_gpus": _NON_NEGATIVE,
}


def check_numeric_flags(flag_values=FLAGS) -> None:
    """Raises UserError for the first flag (defined by this program and set) outside its range in the table."""
    for name, (is_valid, requirement) in NUMERIC_FLAG_CONSTRAINTS.items():
        if name not in flag_values:
            continue
        value = flag_values[name].value
        if value is not None and not is_valid(value):
            raise UserError(f"--{name}={value} {requirement}")


def check_required_flags(required_flags: Sequence[str], flag_values=FLAGS) -> None:
    """Raises UserError naming the first required flag left unset, with its help text."""
    for name in required_flags:
        if flag_values[name].value is None:
            raise UserError(f"--{name} is required: {flag_values[name].help}")


def run_task_script(options_class: type, run: Callable, required_flags: Sequence[str]) -> None:
    """The whole main of a task script: check `required_flags`, turn all flags into `options_class` (with its
    RunSettings), log what the run will do and call `run(options)` holding output_dir (one run at a time)."""

    def task_main() -> None:
        check_output_dir(FLAGS.output_dir)
        settings = RunSettings.from_flags(FLAGS)
        options = dataclass_from_flags(options_class, FLAGS, run=settings)
        for line in describe_run(options):
            tf.logging.info(line)
        with output_dir_lock(options.output_dir):
            run(options)

    run_program(task_main, required_flags)


_PHASE_FIELDS = ("do_train", "do_eval", "do_predict")
_INPUT_FIELDS = ("task_name", "data_dir", "train_file", "predict_file", "input_file")
_SIZE_FIELDS = ("max_seq_length", "train_batch_size", "num_train_epochs", "num_train_steps", "learning_rate")


def describe_run(options) -> Sequence[str]:
    """A few lines saying what a task run will do: phases, inputs, sizes, model, precision and output_dir."""
    values = dataclasses.asdict(options)
    phases = [name[3:] for name in _PHASE_FIELDS if values.get(name)]
    if values.get("export_dir"):
        phases.append("export")
    lines = [f"Run: {', '.join(phases) or 'nothing'}; " +
             ", ".join(f"{name}={values[name]}" for name in _INPUT_FIELDS if values.get(name) is not None)]
    lines.append("  " + ", ".join(f"{name}={values[name]}" for name in _SIZE_FIELDS if name in values))
    lines.append(f"  model: {values.get('bert_config_file')}, init_checkpoint={values.get('init_checkpoint')}")
    run = options.run
    lines.append(f"  precision={run.performance.precision}, use_tpu={run.use_tpu}, output_dir={run.output_dir}")
    return lines


def _parse_flags(argv: Sequence[str]) -> Sequence[str]:
    """absl's parsing, with a bad or unknown flag reported as one `error:` line like every other user error."""
    try:
        return FLAGS(argv)
    except flags.Error as error:
        report_error(f"{error} (--helpfull lists the flags)")


def run_program(program_main: Callable[[], None], required_flags: Sequence[str] = ()) -> None:
    """Parses the command line (absl), checks `required_flags` and the numeric flags (NUMERIC_FLAG_CONSTRAINTS),
    sets up logging (bert.runtime.logs) and runs `program_main()`; user errors end in one `error: ...` line
    (see `user_errors_reported`). Every script's main goes through here."""

    def main(argv):
        string_flags = {name: FLAGS[name].value for name in FLAGS if isinstance(FLAGS[name].value, str)}
        with user_errors_reported(), faults_reported(string_flags):
            if len(argv) > 1:
                raise UserError(f"unexpected argument {argv[1]!r}: flags are written --name=value "
                                f"(booleans also --name / --noname)")
            check_required_flags(required_flags)
            check_numeric_flags()
            program_logging.configure(verbose=FLAGS.verbosity >= 1)
            program_main()

    declare_program_flags_key()
    app.run(main, flags_parser=_parse_flags)


def declare_program_flags_key() -> None:
    """Makes every flag defined by the `bert` package a key flag of the main module (absl's `sys.argv[0]`), and
    has --helpshort list them in groups (`short_help`).

    absl's --helpshort lists only the main module's key flags, so without this it would leave out the shared
    groups defined here (and, for `scripts/X.py` or an installed command, every flag). A program's process defines
    only that program's flags, so --helpshort then lists all the flags it takes, as the original's did;
    --helpfull (grouped by defining module) is unchanged.
    """
    main_module = sys.argv[0]
    for module, module_flags in FLAGS.flags_by_module_dict().items():
        if module != main_module and module.split(".")[0] == "bert":
            for flag in module_flags:
                FLAGS.register_key_flag_for_module(main_module, flag)
    # absl's --helpshort prints FLAGS.main_module_help(); this instance's version groups the flags.
    FLAGS.__dict__["main_module_help"] = short_help


def short_help() -> str:
    """The key flags of the main module under headings: the program's own first, then the shared groups."""
    program = os.path.basename(sys.argv[0])
    by_heading: Dict[str, list] = {}
    for flag in FLAGS.get_key_flags_for_module(sys.argv[0]):
        by_heading.setdefault(_FLAG_GROUPS.get(flag, program), []).append(flag)
    lines = []
    for heading in (program,) + _GROUP_ORDER:
        if heading in by_heading:
            lines.append(f"{heading}:")
            FLAGS._render_flag_list(by_heading[heading], lines)  # absl's own rendering of a flag list
    return "\n".join(lines)
