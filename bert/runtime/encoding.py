"""A sentence or sentence pair as BERT's input, `[CLS] a [SEP]` (then `b [SEP]`), shared by the tasks that read
sentences (classification, feature extraction)."""

from typing import List, NamedTuple, Optional


class EncodedText(NamedTuple):
    tokens: List[str]  # [CLS] a [SEP] (b [SEP]), unpadded
    input_ids: List[int]  # padded with 0 to max_seq_length, as are the next two
    input_mask: List[int]  # 1 for real tokens
    segment_ids: List[int]  # 0 for [CLS] a [SEP], 1 for b [SEP]


def truncate_seq_pair(tokens_a: List[str], tokens_b: List[str], max_length: int) -> None:
    """Pops tokens from the end of the longer list (b on ties) until both fit in `max_length`, in place.

    Trimming the longer side one token at a time keeps most of a short sentence, where each token carries more.
    """
    while len(tokens_a) + len(tokens_b) > max_length:
        if len(tokens_a) > len(tokens_b):
            tokens_a.pop()
        else:
            tokens_b.pop()


def encode_text(tokenizer, text_a: str, text_b: Optional[str], max_seq_length: int) -> EncodedText:
    """Tokenizes, truncates to `max_seq_length` (the pair by `truncate_seq_pair`) and zero-pads, as the original.

    A text_b that is empty or tokenizes to nothing makes a single-sentence input.
    """
    tokens_a = tokenizer.tokenize(text_a)
    tokens_b = tokenizer.tokenize(text_b) if text_b else []
    if tokens_b:
        truncate_seq_pair(tokens_a, tokens_b, max_seq_length - 3)
    else:
        tokens_a = tokens_a[:max_seq_length - 2]
    tokens = ["[CLS]"] + tokens_a + ["[SEP]"]
    segment_ids = [0] * len(tokens)
    if tokens_b:
        tokens += tokens_b + ["[SEP]"]
        segment_ids += [1] * (len(tokens_b) + 1)
    padding = [0] * (max_seq_length - len(tokens))
    return EncodedText(tokens, tokenizer.convert_tokens_to_ids(tokens) + padding, [1] * len(tokens) + padding,
                       segment_ids + padding)
