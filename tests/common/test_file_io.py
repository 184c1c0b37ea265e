"""Reading user files: errors name the file and what is wrong with it."""

import pytest

from bert.common import file_io
from bert.common.errors import UserError, UserFileNotFoundError


def test_read_json_object_returns_the_object(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"vocab_size": 30522}', encoding="utf-8")
    assert file_io.read_json_object(str(path), "HF config") == {"vocab_size": 30522}


@pytest.mark.parametrize("content,kind", [("[1, 2]", "list"), ("7", "int")])
def test_read_json_object_refuses_other_json_values(tmp_path, content, kind):
    path = tmp_path / "config.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=f"HF config .*config.json does not hold a JSON object but a {kind}"):
        file_io.read_json_object(str(path), "HF config")


def test_read_json_names_line_and_column_of_a_syntax_error(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "a": 1,\n  oops\n}', encoding="utf-8")
    with pytest.raises(UserError, match=r"broken.json is not valid JSON: .* line 3, column 3"):
        file_io.read_json(str(path))


def test_read_text_of_a_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(UserFileNotFoundError, match="vocab file .*nowhere.txt not found"):
        file_io.read_text(str(tmp_path / "nowhere.txt"), "vocab file")
    with pytest.raises(FileNotFoundError, match=r"\(it is a folder\)"):
        file_io.read_text(str(tmp_path), "vocab file")
