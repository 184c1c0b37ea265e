"""Overlapping windows over a token sequence too long for the model: the doc-stride scheme and the max-context
rule of the original run_squad, shared by SQuAD and NER."""

import collections
from typing import List, Sequence

DocSpan = collections.namedtuple("DocSpan", ["start", "length"])


def make_doc_spans(num_doc_tokens: int, max_tokens_for_doc: int, doc_stride: int) -> List[DocSpan]:
    """Windows of at most `max_tokens_for_doc` tokens, each starting `doc_stride` after the previous, until one
    reaches the end of the document."""
    doc_spans = []
    start_offset = 0
    while start_offset < num_doc_tokens:
        length = min(num_doc_tokens - start_offset, max_tokens_for_doc)
        doc_spans.append(DocSpan(start=start_offset, length=length))
        if start_offset + length == num_doc_tokens:
            break
        start_offset += min(length, doc_stride)
    return doc_spans


def is_max_context(doc_spans: Sequence[DocSpan], cur_span_index: int, position: int) -> bool:
    """Whether window `cur_span_index` is the best one to score the token at document `position`.

    A token seen in several windows is scored where it has the most context: the largest minimum of its left and
    right context, ties going to the longer window (0.01 * length) and then to the earlier one.
    """
    best_score = None
    best_span_index = None
    for span_index, doc_span in enumerate(doc_spans):
        end = doc_span.start + doc_span.length - 1
        if position < doc_span.start or position > end:
            continue
        num_left_context = position - doc_span.start
        num_right_context = end - position
        score = min(num_left_context, num_right_context) + 0.01 * doc_span.length
        if best_score is None or score > best_score:
            best_score = score
            best_span_index = span_index
    return cur_span_index == best_span_index
