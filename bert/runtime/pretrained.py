"""The pre-trained BERT a task starts from: its config, tokenizer and checkpoint, loaded and checked together."""

from typing import NamedTuple, Optional, Union

import tensorflow.compat.v1 as tf

from bert import modeling, tokenization
from bert.runtime import checkpoints


class Pretrained(NamedTuple):
    bert_config: modeling.BertConfig
    tokenizer: tokenization.FullTokenizer
    init_checkpoint: Optional[str]  # a checkpoint prefix (a folder resolved to its newest), or None


def load_pretrained(bert_config: Union[str, modeling.BertConfig], vocab_file: str, init_checkpoint: Optional[str],
                    do_lower_case: bool, max_seq_length: int, preserve_unused_tokens: bool = False,
                    do_train: bool = False, output_dir: Optional[str] = None) -> Pretrained:
    """Reads the config (a bert_config.json path, or a BertConfig) and vocabulary and finds the checkpoint, each
    checked against the others, and against the model whose checkpoints `output_dir` may hold already.

    Raises:
      UserError: do_lower_case contradicts the checkpoint's name (a Google "uncased"/"cased" model),
        max_seq_length exceeds the config's positions, the vocabulary is larger than the config's, or a file or
        checkpoint is missing or unreadable.
    """
    if do_train and not init_checkpoint:
        tf.logging.warning("do_train without init_checkpoint: the model starts from random weights, not BERT")
    tokenization.validate_case_matches_checkpoint(do_lower_case, init_checkpoint)
    config_file = bert_config if isinstance(bert_config, str) else None
    if config_file is not None:
        bert_config = modeling.BertConfig.from_json_file(config_file)
    modeling.check_sequence_length(bert_config, max_seq_length, config_file)
    tokenizer = tokenization.FullTokenizer(vocab_file=vocab_file, do_lower_case=do_lower_case,
                                           preserve_unused_tokens=preserve_unused_tokens)
    modeling.check_vocab_fits(bert_config, len(tokenizer.vocab), vocab_file)
    if output_dir is not None:
        checkpoints.check_same_model(output_dir, bert_config, config_file or "the BERT config")
    return Pretrained(bert_config, tokenizer, checkpoints.resolve_checkpoint_path(init_checkpoint))
