"""TF1 Hub modules (the `hub.Module` format) of a BERT checkpoint, interchangeable with Google's BERT modules.

A module written by `export_module` has the signatures of Google's modules:

- `tokens` (also the default signature): int32 `input_ids`, `input_mask`, `segment_ids` [batch, seq] in,
  `pooled_output` [batch, hidden] and `sequence_output` [batch, seq, hidden] out;
- `tokenization_info`: `vocab_file` (string: the path of the module's vocab asset wherever the module was loaded
  from) and `do_lower_case` (bool).

It has two graph variants: tags `set()` (inference, dropout off) and `{"train"}` (dropout on). Its variables keep
BertModel's names (`bert/embeddings/...`, `bert/encoder/layer_N/...`, `bert/pooler/...`), so a checkpoint
fine-tuned through a module loads into BertModel and the other way round.

tensorflow_hub is optional (`pip install .[hub]`); it is imported only when a module is built or read.
"""

import dataclasses
import os
from typing import Dict, Optional

import tensorflow.compat.v1 as tf

from bert import modeling, tokenization
from bert.common.errors import UserError
from bert.runtime import checkpoints
from bert.runtime.specs import estimator_available

TOKENS_SIGNATURE = "tokens"
TOKENIZATION_INFO_SIGNATURE = "tokenization_info"
TRAIN_TAGS = frozenset({"train"})
INPUT_NAMES = ("input_ids", "input_mask", "segment_ids")
WORD_EMBEDDINGS = "bert/embeddings/word_embeddings"
POSITION_EMBEDDINGS = "bert/embeddings/position_embeddings"
MODULE_DEF_FILE = "tfhub_module.pb"  # what makes a folder a TF1 Hub module


def import_hub():
    """tensorflow_hub, or a UserError saying how to get the one release that still has `hub.Module`."""
    if not estimator_available():
        raise UserError(f"TF Hub modules (hub.Module) need TensorFlow 2.15 with tensorflow-hub 0.15.0, and this is "
                        f"TensorFlow {tf.__version__}: use the TensorFlow 2.15 stack (Python 3.9-3.11; "
                        "bash scripts/setup_env.sh --stack tf2.15)")
    try:
        import tensorflow_hub as hub
    except ImportError as error:
        raise UserError("TF Hub modules need tensorflow-hub 0.15.0 (0.16 removed hub.Module): run "
                        "`pip install .[hub]` (or `pip install tensorflow-hub==0.15.0`)") from error
    if not hasattr(hub, "Module"):
        raise UserError(f"tensorflow-hub {getattr(hub, '__version__', '?')} has no hub.Module (removed in 0.16): "
                        "run `pip install tensorflow-hub==0.15.0`")
    return hub


# ----------------------------------------------------------------------------------------------------------------
# Writing a module
# ----------------------------------------------------------------------------------------------------------------


def _module_fn(bert_config: modeling.BertConfig, vocab_file: str, do_lower_case: bool, is_training: bool) -> None:
    """Builds one graph variant of the module and declares its signatures (hub calls this in a fresh graph)."""
    hub = import_hub()
    inputs = {name: tf.placeholder(tf.int32, [None, None], name=name) for name in INPUT_NAMES}  # [B, S] each
    model = modeling.BertModel(config=bert_config, is_training=is_training, input_ids=inputs["input_ids"],
                               input_mask=inputs["input_mask"], token_type_ids=inputs["segment_ids"])
    outputs = {"pooled_output": model.get_pooled_output(),  # [B, H]
               "sequence_output": model.get_sequence_output()}  # [B, S, H]
    hub.add_signature(TOKENS_SIGNATURE, inputs=inputs, outputs=outputs)
    hub.add_signature(inputs=inputs, outputs=dict(outputs, default=outputs["pooled_output"]))

    # A constant in ASSET_FILEPATHS becomes an asset: hub copies the file into the module's assets/ folder and
    # points the constant at that copy whenever the module is loaded.
    vocab = tf.constant(vocab_file, name="vocab_file")
    tf.add_to_collection(tf.GraphKeys.ASSET_FILEPATHS, vocab)
    hub.add_signature(TOKENIZATION_INFO_SIGNATURE, inputs={},
                      outputs={"vocab_file": vocab, "do_lower_case": tf.constant(do_lower_case)})


def create_module_spec(bert_config: modeling.BertConfig, vocab_file: str, do_lower_case: bool):
    """The hub.ModuleSpec of a BERT: inference variant under tags set(), training (dropout on) under {"train"}."""
    hub = import_hub()

    def module_fn(is_training):
        _module_fn(bert_config, vocab_file, do_lower_case, is_training)

    return hub.create_module_spec(module_fn, tags_and_args=[(set(), {"is_training": False}),
                                                            (set(TRAIN_TAGS), {"is_training": True})])


def _check_checkpoint_has(variables: Dict[str, tf.Variable], checkpoint: str) -> None:
    """Every module variable must be in the checkpoint with its shape, or the export would hold random weights."""
    stored = dict(tf.train.list_variables(checkpoint))
    missing = sorted(name for name in variables if name not in stored)
    if missing:
        raise UserError(f"--init_checkpoint={checkpoint} lacks {len(missing)} variables of the model of "
                        f"--bert_config_file (first: {', '.join(missing[:3])}): use the config and checkpoint of "
                        "the same BERT")
    for name, variable in sorted(variables.items()):
        shape = variable.shape.as_list()
        if list(stored[name]) != shape:
            raise UserError(f"--init_checkpoint={checkpoint}: variable {name} has shape {list(stored[name])} but "
                            f"--bert_config_file makes it {shape}: use the config and checkpoint of the same BERT")


def export_module(bert_config_file: str, init_checkpoint: str, vocab_file: str, do_lower_case: bool,
                  output_dir: str) -> str:
    """Writes a TF1 Hub module of the BERT in `init_checkpoint` (its weights, trainable) into `output_dir`.

    Args:
      bert_config_file: the checkpoint's bert_config.json.
      init_checkpoint: checkpoint prefix (bert_model.ckpt) or a directory holding one.
      vocab_file: its WordPiece vocabulary, copied into the module as an asset.
      do_lower_case: its casing, returned by the tokenization_info signature.
      output_dir: the module's folder; must not hold a module already.

    Returns:
      `output_dir`.
    """
    hub = import_hub()
    for flag, path in (("bert_config_file", bert_config_file), ("vocab_file", vocab_file)):
        if not path or not tf.io.gfile.exists(path):
            raise UserError(f"--{flag}={path}: file not found")
    if not init_checkpoint:
        raise UserError("--init_checkpoint is required: the module is exported with the checkpoint's weights")
    try:
        checkpoint = checkpoints.resolve_checkpoint_path(init_checkpoint)
    except FileNotFoundError as error:
        raise UserError(f"--init_checkpoint: {error}") from error
    if tf.io.gfile.exists(os.path.join(output_dir, MODULE_DEF_FILE)):
        raise UserError(f"--output_dir={output_dir} already holds a TF Hub module: choose a new folder")
    bert_config = modeling.BertConfig.from_json_file(bert_config_file)
    vocab_size = len(tokenization.load_vocab(vocab_file))
    modeling.check_vocab_fits(bert_config, vocab_size, vocab_file)

    spec = create_module_spec(bert_config, os.path.abspath(vocab_file), do_lower_case)
    with tf.Graph().as_default():
        module = hub.Module(spec, trainable=True)
        variables = dict(module.variable_map)
        _check_checkpoint_has(variables, checkpoint)
        tf.train.init_from_checkpoint(checkpoint, {name: variable for name, variable in variables.items()})
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            module.export(output_dir, session)
    tf.logging.info("Wrote a TF Hub module of %s (%d variables) to %s", checkpoint, len(variables), output_dir)
    return output_dir


# ----------------------------------------------------------------------------------------------------------------
# Reading a module
# ----------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class ModuleInfo:
    """What a task needs to know about a BERT module before building its graph."""

    vocab_file: str  # the module's vocab asset
    do_lower_case: bool
    vocab_size: int  # rows of the word embedding table
    max_position_embeddings: int  # rows of the position embedding table


def check_module_handle(handle: Optional[str], flag: str = "bert_hub_module_handle") -> None:
    """Local handles must be TF1 Hub module folders; URLs and other file systems are left to hub to resolve."""
    if not handle:
        raise UserError(f"--{flag} is required: a TF Hub module folder or URL")
    if "://" in handle:
        return
    if not tf.io.gfile.isdir(handle):
        raise UserError(f"--{flag}={handle}: no such folder (give a TF Hub module folder or URL)")
    if not tf.io.gfile.exists(os.path.join(handle, MODULE_DEF_FILE)):
        raise UserError(f"--{flag}={handle} is not a TF1 Hub module (no {MODULE_DEF_FILE}); hub.Module reads only "
                        "that format, e.g. Google's BERT modules or one written by scripts/export_hub_module.py")


def read_module_info(handle: str) -> ModuleInfo:
    """Runs the `tokenization_info` signature of module `handle` and reads its embedding table sizes."""
    hub = import_hub()
    check_module_handle(handle)
    with tf.Graph().as_default():
        module = hub.Module(handle)
        if TOKENIZATION_INFO_SIGNATURE not in module.get_signature_names():
            raise UserError(f"TF Hub module {handle} has no {TOKENIZATION_INFO_SIGNATURE} signature (it has "
                            f"{', '.join(module.get_signature_names())}): it is not a BERT module")
        variables = module.variable_map
        for name in (WORD_EMBEDDINGS, POSITION_EMBEDDINGS):
            if name not in variables:
                raise UserError(f"TF Hub module {handle} has no variable {name}: it is not a BERT module")
        info = module(signature=TOKENIZATION_INFO_SIGNATURE, as_dict=True)
        with tf.Session() as session:
            values = session.run(info)
    return ModuleInfo(vocab_file=values["vocab_file"].decode("utf-8"), do_lower_case=bool(values["do_lower_case"]),
                      vocab_size=int(variables[WORD_EMBEDDINGS].shape[0]),
                      max_position_embeddings=int(variables[POSITION_EMBEDDINGS].shape[0]))


def create_tokenizer(info: ModuleInfo) -> tokenization.FullTokenizer:
    """The tokenizer of a module's own vocab and casing."""
    return tokenization.FullTokenizer(vocab_file=info.vocab_file, do_lower_case=info.do_lower_case)


class HubEncoder:
    """BERT from a TF Hub module, for the classifier job (`classifier_run.run(options, encoder=...)`).

    The module is instantiated in each model_fn graph with `trainable=True` (fine-tuning updates its weights) and
    the `train` tags while training, as the original run_classifier_with_tfhub did.
    """

    def __init__(self, handle: str):
        self.handle = handle
        self.info = read_module_info(handle)

    def make_tokenizer(self, max_seq_length: int) -> tokenization.FullTokenizer:
        if max_seq_length > self.info.max_position_embeddings:
            raise UserError(f"--max_seq_length={max_seq_length} is longer than the {self.info.max_position_embeddings}"
                            f" position embeddings of TF Hub module {self.handle}: lower --max_seq_length")
        tokenizer = create_tokenizer(self.info)
        if len(tokenizer.vocab) > self.info.vocab_size:
            raise UserError(f"the vocab of TF Hub module {self.handle} has {len(tokenizer.vocab)} entries but its "
                            f"word embedding table only {self.info.vocab_size} rows: the module is broken")
        return tokenizer

    def pooled_output(self, is_training: bool, input_ids: tf.Tensor, input_mask: tf.Tensor,
                      segment_ids: tf.Tensor) -> tf.Tensor:
        """float Tensor [batch_size, hidden_size]: the module's pooled [CLS] vector."""
        hub = import_hub()
        module = hub.Module(self.handle, tags=set(TRAIN_TAGS) if is_training else set(), trainable=True)
        outputs = module(inputs={"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids},
                         signature=TOKENS_SIGNATURE, as_dict=True)
        return outputs["pooled_output"]
