"""The helpers of benchmarks/benchmark_memory.py and benchmarks/compare_optimizers.py (their full runs are measurements,
documented in docs/memory_and_lamb.md)."""

import numpy as np
import pytest

import benchmark_memory
import compare_optimizers
import throughput
from bert.common.errors import UserError


def test_largest_batch_within_budget_stops_at_the_first_that_exceeds_it():
    peaks = {2: 100, 4: 180, 8: 260, 16: 150}
    tried = []

    def measure(batch):
        tried.append(batch)
        return {"batch": batch, "peak_rss_bytes": peaks[batch]}

    assert benchmark_memory.largest_batch_within(200, [2, 4, 8, 16], measure)["batch"] == 4
    assert tried == [2, 4, 8]
    assert benchmark_memory.largest_batch_within(50, [2, 4], measure) is None


def test_peak_rss_is_this_process_in_bytes():
    block = np.ones(64 * 2 ** 20 // 8)  # 64 MiB resident
    assert throughput.peak_rss_bytes() > block.nbytes


@pytest.mark.parametrize("text,message", [("sgd:1e-3", "'sgd:1e-3'"), ("lamb:-1", "'lamb:-1'"), ("lamb", "'lamb'"),
                                          ("", "names no run")])
def test_bad_runs_are_user_errors(text, message):
    with pytest.raises(UserError, match=message):
        compare_optimizers.parse_runs(text)


def test_runs_are_parsed():
    assert compare_optimizers.parse_runs("adamw:1e-3, lamb:0.01") == [("adamw", 1e-3), ("lamb", 0.01)]


def test_mrpc_pairs_become_two_sentence_documents(tmp_path):
    tsv = tmp_path / "train.tsv"
    tsv.write_text("\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tFirst one.\tSecond one.\n"
                   "0\t3\t4\tThird.\tFourth.\n", encoding="utf-8")
    corpus = tmp_path / "corpus.txt"
    assert compare_optimizers.write_mrpc_corpus(str(tsv), str(corpus)) == 2
    assert corpus.read_text() == "First one.\nSecond one.\n\nThird.\nFourth.\n\n"
    (tmp_path / "bad.tsv").write_text("header\nonly\ttwo\n")
    with pytest.raises(UserError, match="line 2 has 2 columns"):
        compare_optimizers.write_mrpc_corpus(str(tmp_path / "bad.tsv"), str(corpus))


def test_smoothing_is_a_trailing_mean():
    np.testing.assert_allclose(compare_optimizers.smoothed([1, 3, 5, 7], window=2), [1, 2, 4, 6])
