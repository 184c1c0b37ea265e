"""The predict program's data: texts read from lines of TSV (`text_a` or `text_a<TAB>text_b`) or JSON lines, and each
prediction as one JSON object. A JSON line holds `"text_a"` (or `"text"`, or SQuAD's `"question"`), `"text_b"` (or
`"context"`) and an optional `"id"` passed through. Blank lines are skipped; a malformed line is a UserError naming
its source and line number.

What a line means depends on the model's task: a text or pair to classify, a question and its context (SQuAD), a
text to tag (NER).
"""

import dataclasses
import json
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence

from bert.common.errors import UserError
from bert.serving.predictor import Predictor

INPUT_FORMATS = ("auto", "tsv", "jsonl")


@dataclasses.dataclass
class TextInput:
    line: int  # 1-based line number in the source
    text_a: str
    text_b: Optional[str] = None
    id: Any = None  # a JSON line's "id", passed through to its prediction


def read_text_inputs(lines: Iterable[str], input_format: str = "auto", source: str = "input") -> Iterator[TextInput]:
    """The inputs of `lines`; "auto" reads JSON lines when the first non-blank line starts with "{", else TSV."""
    if input_format not in INPUT_FORMATS:
        raise ValueError(f"input_format must be one of {INPUT_FORMATS}, got {input_format!r}")
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        if input_format == "auto":
            input_format = "jsonl" if line.lstrip().startswith("{") else "tsv"
        where = f"{source}, line {number}"
        yield _json_input(line, number, where) if input_format == "jsonl" else _tsv_input(line, number, where)


def _tsv_input(line: str, number: int, where: str) -> TextInput:
    columns = line.split("\t")
    if len(columns) > 2:
        raise UserError(f"{where}: {len(columns)} tab-separated columns; a TSV line is text_a, or "
                        "text_a<TAB>text_b (or use JSON lines: --input_format=jsonl)")
    return TextInput(number, columns[0], columns[1] if len(columns) == 2 else None)


def _json_input(line: str, number: int, where: str) -> TextInput:
    try:
        content = json.loads(line)
    except json.JSONDecodeError as error:
        raise UserError(f"{where}: not valid JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(content, dict):
        raise UserError(f"{where}: a JSON line must be an object such as {{\"text_a\": \"...\", \"text_b\": "
                        f"\"...\"}}, not a {type(content).__name__}")
    text_a = next((content[key] for key in ("text_a", "text", "question") if key in content), None)
    text_b = next((content[key] for key in ("text_b", "context") if key in content), None)
    if not isinstance(text_a, str):
        raise UserError(f"{where}: needs a string \"text_a\" (or \"text\", or \"question\")")
    if text_b is not None and not isinstance(text_b, str):
        raise UserError(f"{where}: \"text_b\" (or \"context\") must be a string")
    return TextInput(number, text_a, text_b, content.get("id"))


def prediction_records(predictor: Predictor, inputs: Sequence[TextInput], batch_size: int,
                       source: str = "input") -> List[Dict[str, Any]]:
    """One JSON-ready object per input, in order: its line (and id), then what the model's task predicts."""
    task = predictor.description.task
    if task == "classifier":
        results = [{"label": result.label, "probabilities": result.probabilities}
                   for result in predictor.classify([item.text_a for item in inputs],
                                                    [item.text_b for item in inputs], batch_size=batch_size)]
    elif task == "squad":
        for item in inputs:
            if item.text_b is None:
                raise UserError(f"{source}, line {item.line}: a question needs its context (question<TAB>context, or "
                                "\"context\" in a JSON line)")
        results = [dataclasses.asdict(answer) for answer in predictor.answer(
            [item.text_a for item in inputs], [item.text_b for item in inputs], batch_size=batch_size)]
    else:
        results = [{"entities": [dataclasses.asdict(entity) for entity in entities]}
                   for entities in predictor.tag([item.text_a for item in inputs], batch_size=batch_size)]
    return [{"line": item.line, **({"id": item.id} if item.id is not None else {}), **result}
            for item, result in zip(inputs, results)]
