"""Bounded reading: every reader stops at the limits derived from the test set, with one
sentence naming the limit, and a valid file at the limits still scores as before."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scoring.evaluate import evaluate, load_truth
from scoring.spec import MAX_FILE_BYTES, LimitExceeded, ReadLimits, TaskSpec, size_text
from scoring.tables import _count_lines
from scoring.validation import (
    prediction_limits,
    read_table,
    validate_ground_truth,
    validate_predictions,
)

ROOT = Path(__file__).resolve().parents[2]
BINARY = TaskSpec(
    id_column="id", target_columns=("target",), task_type="binary", primary_metric="roc_auc"
)
IDS = np.array([f"id{i}" for i in range(3)])
LIMITS = prediction_limits(BINARY, IDS)


def check(path: Path, content: bytes, **options):
    path.write_bytes(content)
    return validate_predictions(path, spec=BINARY, truth_ids=IDS, **options)


def codes(result):
    return [p.code for p in result.problems]


def gzip_bomb(path: Path, *, expands_to: int, row: bytes = b"x,0.5\n") -> None:
    """Well-formed rows, one 16 MiB block compressed once and repeated as gzip members."""
    block = row * ((16 << 20) // len(row))
    member = gzip.compress(block, 9)
    with path.open("wb") as f:
        f.write(gzip.compress(b"id,target\n"))
        for _ in range(expands_to // len(block) + 1):
            f.write(member)


# --- the limits ------------------------------------------------------------------------


def test_the_limits_derive_from_the_test_set_and_the_spec():
    limits = ReadLimits.for_predictions(BINARY, test_rows=10_000, id_bytes=7)

    assert limits.max_rows == 11_000  # + max(1000, 1%)
    assert ReadLimits.for_predictions(BINARY, test_rows=1_000_000).max_rows == 1_010_000
    assert limits.max_columns == 2 + 5
    # 256 + 7 columns x (64 + twice the longest class label "0"/"1") + twice the longest id
    assert limits.max_line_bytes == 256 + 7 * (64 + 2) + 14
    # The header at the longest, then rows of 16 + twice the id + 2 x (32 + twice a label)
    assert limits.max_bytes == limits.max_line_bytes + 11_000 * (16 + 14 + 2 * (32 + 2))
    assert ReadLimits.for_predictions(BINARY, test_rows=10**8).max_bytes == MAX_FILE_BYTES


def test_the_truth_is_read_within_the_absolute_caps():
    limits = ReadLimits.for_truth(BINARY)

    assert limits.max_rows is None
    assert limits.max_bytes == MAX_FILE_BYTES
    assert limits.max_columns == 2 + 1 + 5  # the usage column, and a few more


# --- a gzip bomb -------------------------------------------------------------------------

CHILD = """
import json, sys, time
from pathlib import Path
import numpy as np
from scoring.spec import TaskSpec
from scoring.validation import validate_predictions

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

spec = TaskSpec(id_column="id", target_columns=("target",), task_type="binary",
                primary_metric="roc_auc")
ids = np.array([f"id{i}" for i in range(int(sys.argv[2]))])
Path("/proc/self/clear_refs").write_text("5")  # the peak from here on
before = status("VmRSS")
started, cpu = time.perf_counter(), time.process_time()
result = validate_predictions(Path(sys.argv[1]), spec=spec, truth_ids=ids)
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
print(json.dumps({"seconds": seconds, "cpu": cpu, "growth": status("VmHWM") - before,
                  "problems": [p.to_dict() for p in result.problems]}))
"""


def validate_in_child(path: Path, test_rows: int) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(test_rows)],
        env={"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(completed.stdout)


LIMITS_100K = prediction_limits(
    BINARY, np.array([f"id{i}" for i in range(100_000)])
)  # as the child
BOMBS = {
    "short rows": (
        b"x,0.5\n",
        "The file has more than 101,000 rows; the test set has 100,000.",
    ),
    # Spaces around a number are accepted: still well formed. The bytes run out first.
    "rows at the longest a line may be": (
        b"x,0.5" + b" " * (LIMITS_100K.max_line_bytes - 5) + b"\n",
        f"The file decompresses to more than {size_text(LIMITS_100K.max_bytes)}, the most a "
        "submission for 100,000 test rows may hold.",
    ),
}


@pytest.mark.parametrize("shape", BOMBS)
def test_a_gzip_expanding_to_2_gb_is_refused_within_2_s_and_bounded_memory(tmp_path, shape):
    row, message = BOMBS[shape]
    path = tmp_path / "bomb.csv.gz"
    gzip_bomb(path, expands_to=2 * 10**9, row=row)
    assert path.stat().st_size < 6 * 10**6  # deflate compresses 1:1032 at most

    measured = validate_in_child(path, test_rows=100_000)

    assert [p["message"] for p in measured["problems"]] == [message]
    # CPU time, as the machine running the tests may be busy; reading it all takes minutes.
    assert measured["cpu"] < 2
    assert measured["seconds"] < 10
    assert measured["growth"] < 200 * 2**20


def test_a_gzip_decompressing_past_the_byte_limit_is_refused_as_too_large(tmp_path):
    limits = ReadLimits(max_bytes=10_000, max_rows=10**6, test_rows=10_000)
    content = gzip.compress(b"id,target\n" + b"x,0.5\n" * 2000)

    result = check(tmp_path / "p.csv.gz", content, limits=limits)

    assert codes(result) == ["too_large"]
    assert result.problems[0].message == (
        "The file decompresses to more than 10 KB, the most a submission for 10,000 test rows "
        "may hold."
    )


def test_a_plain_file_over_the_byte_limit_is_refused_before_it_is_read(tmp_path):
    limits = ReadLimits(max_bytes=10_000, test_rows=10_000)

    result = check(tmp_path / "p.csv", b"id,target\n" + b"x,0.5\n" * 2000, limits=limits)

    assert codes(result) == ["too_large"]
    assert result.problems[0].message == (
        "The file is 12 KB, more than 10 KB, the most a submission for 10,000 test rows may hold."
    )


# --- rows, columns, lines --------------------------------------------------------------


def test_a_file_with_more_rows_than_the_test_set_and_its_margin_is_refused(tmp_path):
    rows = b"".join(b"id%d,0.5\n" % i for i in range(1004))

    result = check(tmp_path / "p.csv", b"id,target\n" + rows)

    assert codes(result) == ["too_many_rows"]
    assert result.problems[0].message == "The file has more than 1,003 rows; the test set has 3."


def test_a_plain_file_is_refused_by_its_line_count_before_it_is_read_even_with_cr_endings(
    tmp_path,
):
    # Counted before pyarrow reads the file whole, so tiny rows cannot fill the memory.
    path = tmp_path / "p.csv"
    path.write_bytes(b"id,target\r" + b"".join(b"id%d,0.5\r" % i for i in range(1004)))

    with pytest.raises(LimitExceeded, match="more than 1,003 rows"):
        _count_lines(path, LIMITS)


def test_a_file_within_the_row_margin_gets_the_usual_problems(tmp_path):
    rows = b"".join(b"id%d,0.5\n" % i for i in range(1003))

    result = check(tmp_path / "p.csv", b"id,target\n" + rows)

    assert "too_many_rows" not in codes(result)
    assert "wrong_row_count" in codes(result)


def test_rows_left_out_for_their_field_count_count_towards_the_row_limit(tmp_path):
    content = b"id,target\nid0,0.5\n" + b"x,0.5,extra\n" * 2000

    result = check(tmp_path / "p.csv", content)

    assert codes(result) == ["too_many_rows"]  # one sentence, not the bad rows before it


def test_a_header_with_too_many_columns_is_refused_before_the_rows_are_read(tmp_path):
    header = ",".join(["id", "target", *(f"f{i}" for i in range(6))]).encode()

    result = check(tmp_path / "p.csv", header + b"\nid0,0.5,1,2,3,4,5,6\n")

    assert codes(result) == ["too_many_columns"]
    assert result.problems[0].line == 1
    assert result.problems[0].message == (
        "Line 1: the header has 8 columns, more than the 7 a submission for 3 test rows may have."
    )


def test_a_header_within_the_column_limit_gets_the_usual_problems(tmp_path):
    header = ",".join(["id", "target", *(f"f{i}" for i in range(5))]).encode()

    result = check(tmp_path / "p.csv", header + b"\nid0,0.5,1,2,3,4,5\n")

    assert "too_many_columns" not in codes(result)
    assert "unexpected_column" in codes(result)


def test_a_line_longer_than_the_limit_is_refused_with_its_number(tmp_path):
    long_line = b"id1," + b"0" * LIMITS.max_line_bytes + b"\n"

    result = check(tmp_path / "p.csv", b"id,target\nid0,0.5\n" + long_line + b"id2,0.5\n")

    assert codes(result) == ["line_too_long"]
    assert result.problems[0].line == 3
    assert result.problems[0].message == (
        f"Line 3 is longer than {LIMITS.max_line_bytes:,} bytes, the longest a line in "
        "a submission for 3 test rows may be."
    )


def test_a_giant_line_in_a_gzip_is_refused_without_reading_it_whole(tmp_path):
    content = gzip.compress(b"id,target\nid0,0.5\nid1," + b"9" * (64 << 20) + b"\n", 9)
    limits = ReadLimits(max_rows=10**6, max_line_bytes=1000, test_rows=10**6)

    result = check(tmp_path / "p.csv.gz", content, limits=limits)

    assert codes(result) == ["line_too_long"]
    assert result.problems[0].message.startswith("A line after line 2 is longer than 1,000 bytes")


def test_a_giant_header_is_refused_as_line_1(tmp_path):
    result = check(tmp_path / "p.csv", b"id,target" + b"x" * LIMITS.max_line_bytes + b"\n")

    assert [(p.code, p.line) for p in result.problems] == [("line_too_long", 1)]


def test_a_bad_utf8_bomb_is_reported_line_by_line_within_the_row_limit(tmp_path):
    content = gzip.compress(b"id,target\n" + b"id\xff,0.5\n" * 2_000_000, 9)
    ids = np.array([f"id{i}" for i in range(100_000)])
    limits = prediction_limits(BINARY, ids)
    assert limits.max_rows == 101_000
    assert limits.max_bytes > 9 * (101_000 + 1)  # not what stops it here
    path = tmp_path / "p.csv.gz"
    path.write_bytes(content)

    result = validate_predictions(path, spec=BINARY, truth_ids=ids)

    assert set(codes(result)) == {"not_utf8"}
    assert result.total_problems == limits.max_rows


def test_the_ground_truth_with_too_many_columns_is_refused(tmp_path):
    path = tmp_path / "truth.csv"
    path.write_text(",".join(f"c{i}" for i in range(9)) + "\n" + ",".join("1" * 9) + "\n")

    result = validate_ground_truth(path, spec=BINARY)

    assert [p.code for p in result.problems] == ["too_many_columns"]
    assert "more than the 8 a file may have" in result.problems[0].message


def test_read_table_raises_the_limit_sentence(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"a,b\n" + b"1,2\n" * 20)

    with pytest.raises(ValueError, match="The file has more than 10 rows"):
        read_table(path, ReadLimits(max_rows=10))


# --- Parquet ---------------------------------------------------------------------------


def test_a_parquet_file_with_too_many_rows_is_refused_from_its_metadata(tmp_path):
    path = tmp_path / "p.parquet"
    ids = [f"id{i}" for i in range(1004)]
    pq.write_table(pa.table({"id": ids, "target": [0.5] * 1004}), path)

    result = validate_predictions(path, spec=BINARY, truth_ids=IDS)

    assert codes(result) == ["too_many_rows"]
    assert result.problems[0].message == (
        "The file has 1,004 rows, more than 1,003; the test set has 3."
    )


def test_a_parquet_file_with_too_many_columns_is_refused(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({f"c{i}": [1] for i in range(8)}), path)

    result = validate_predictions(path, spec=BINARY, truth_ids=IDS)

    assert codes(result) == ["too_many_columns"]


def test_a_parquet_value_repeated_on_every_row_is_measured_without_being_decoded(tmp_path):
    # A 20 KB value on 1,000 rows: a small file whose column is plain text, 20 MB decoded.
    path = tmp_path / "p.parquet"
    repeated = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(1000, dtype=np.int32)), pa.array(["7" * 20_000])
    )
    table = pa.table({"id": [f"id{i}" for i in range(1000)], "target": repeated})
    pq.write_table(table, path, compression="zstd", store_schema=False)
    assert path.stat().st_size < 10_000
    assert pq.read_schema(path).field("target").type == pa.string()
    ids = np.array([f"id{i}" for i in range(1000)])

    result = validate_predictions(path, spec=BINARY, truth_ids=ids)

    assert [(p.code, p.line) for p in result.problems] == [("line_too_long", 2)]


def test_a_parquet_file_whose_cells_pass_the_byte_limit_is_refused(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(
        pa.table({"id": [f"id{i}" for i in range(5000)], "target": ["0.5"] * 5000}), path
    )

    result = validate_predictions(
        path, spec=BINARY, truth_ids=IDS, limits=ReadLimits(max_bytes=20_000, test_rows=5000)
    )

    assert codes(result) == ["too_large"]
    assert result.problems[0].message.startswith("The file holds more than 20 KB")


# --- valid files at the limits ---------------------------------------------------------


def scored(tmp_path: Path, name: str, content: bytes, truth):
    path = tmp_path / name
    path.write_bytes(content)
    return evaluate(predictions_path=path, truth=truth, spec=BINARY)


def test_a_gzipped_file_at_the_byte_and_line_limits_scores_exactly_as_before(tmp_path):
    rng = np.random.default_rng(0)
    n = 5000
    ids = [f"id{i:05d}" for i in range(n)]
    labels = rng.integers(0, 2, n)
    truth_path = tmp_path / "truth.csv"
    truth_path.write_text(
        "id,target\n" + "".join(f"{i},{y}\n" for i, y in zip(ids, labels, strict=True))
    )
    truth = load_truth(truth_path, BINARY)
    limits = prediction_limits(BINARY, truth.ids)
    lines = [f"{i},{float(s)!r}" for i, s in zip(ids, rng.random(n), strict=True)]
    plain = "id,target\n" + "".join(line + "\n" for line in lines)
    # Spaces after the numbers: the first line at the longest a line may be, the others
    # sharing what is left of the byte limit.
    first = lines[0].ljust(limits.max_line_bytes)
    width = (limits.max_bytes - len("id,target\n") - len(first) - 1) // (n - 1) - 1
    padded = "id,target\n" + first + "\n" + "".join(line.ljust(width) + "\n" for line in lines[1:])
    assert limits.max_bytes - n < len(padded) <= limits.max_bytes

    before = scored(tmp_path, "plain.csv", plain.encode(), truth)
    at_limit = scored(tmp_path, "padded.csv.gz", gzip.compress(padded.encode()), truth)

    assert before.ok
    assert at_limit.ok, at_limit.problems
    assert at_limit.scores == before.scores
    assert np.array_equal(at_limit.row_values, before.row_values)


def test_a_gzip_decompressing_to_exactly_the_byte_limit_is_read_and_one_byte_more_is_not(
    tmp_path,
):
    limits = ReadLimits(max_bytes=1000, test_rows=3)
    content = b"a,b\n" + b"1,2\n" * 249
    assert len(content) == 1000
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(content))
    assert read_table(path, limits).num_rows == 249

    path.write_bytes(gzip.compress(content + b"\n"))
    with pytest.raises(ValueError, match="The file decompresses to more than 1 KB"):
        read_table(path, limits)


def test_a_gzipped_file_with_the_most_rows_allowed_is_read(tmp_path):
    limits = ReadLimits(max_rows=1003, test_rows=3)
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(b"a,b\n" + b"1,2\n" * 1003))

    assert read_table(path, limits).num_rows == 1003
