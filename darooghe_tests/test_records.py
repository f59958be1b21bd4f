"""The record-file format: parsing, refusal of malformed lines with their line number, stable bytes."""

from __future__ import annotations

import pytest

from darooghe.records import Record, RecordFileError, parse_record, read_records, write_record_file


def test_round_trip_is_byte_stable(tmp_path):
    recs = [
        Record("cust_1", '{"a": 1}', 1_700_000_000_000, {"darooghe-label": "VELOCITY"}),
        Record(None, "not json at all", 5, {}, partition=2, offset=7),
    ]
    path = tmp_path / "r.jsonl"
    write_record_file(recs, path)
    first = path.read_bytes()
    again = tmp_path / "again.jsonl"
    write_record_file(read_records(path), again)
    assert again.read_bytes() == first
    assert list(read_records(path)) == recs
    assert first.splitlines()[0] == (
        b'{"key":"cust_1","value":"{\\"a\\": 1}","timestamp":1700000000000,'
        b'"headers":{"darooghe-label":"VELOCITY"}}'
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{nope", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"key": null, "timestamp": 1}', "missing field(s) value"),
        ('{"key": 5, "value": "x", "timestamp": 1}', "'key' must be a string or null"),
        ('{"value": 3, "timestamp": 1}', "'value' must be a string"),
        ('{"value": "x", "timestamp": "soon"}', "'timestamp' must be epoch milliseconds"),
        ('{"value": "x", "timestamp": -1}', "'timestamp' must be epoch milliseconds"),
        ('{"value": "x", "timestamp": 1, "headers": {"h": 1}}', "'headers' must map names to strings"),
        ('{"value": "x", "timestamp": 1, "partition": -2}', "'partition' must be an integer"),
    ],
)
def test_malformed_lines_are_refused_with_reason(line, message):
    with pytest.raises(RecordFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_record(line, "f.jsonl:3")


def test_malformed_line_named_by_number(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"value": "ok", "timestamp": 1}\n\n{"value": "x"}\n')
    with pytest.raises(RecordFileError, match=r"bad.jsonl:3: missing field\(s\) timestamp"):
        list(read_records(path))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(RecordFileError, match="no such record file"):
        list(read_records(tmp_path / "absent.jsonl"))
