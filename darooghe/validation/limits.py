"""Size limits of the validator: how big an input may be and how big its error record can get.

A record the validator cannot write stops it for good (the same batch is aborted and read again
forever), so every output must fit the producer's `message.max.bytes`. The rules:

- An input value over `max_record_bytes` (DAROOGHE_MAX_RECORD_BYTES, default 64 KiB; a
  transaction is under 1 KiB) is refused with ERR_SCHEMA without being parsed.
- Every text an error record echoes from its input (the error details, the transaction_id, a
  readable preview of a non-UTF-8 value, the record key) is cut to a fixed length, and a cut text
  ends with a marker naming its original size.
- The payload is kept once: as text when it is UTF-8, else as base64 (with a short readable
  preview). A value over the record limit is not embedded: the record says so
  (`raw_truncated`, `raw_bytes`) and its source topic/partition/offset point to the original.

So an error record is at most `error_record_bound(max_record_bytes)` bytes: JSON escaping can turn
one input byte into six (`\\u0001`), the rest is fixed. MAX_RECORD_LIMIT keeps that bound under the
producer's 1 MB default.
"""

from __future__ import annotations

#: librdkafka's default `message.max.bytes`, the largest record the validator's producer sends.
PRODUCER_MAX_MESSAGE_BYTES = 1_000_000
DEFAULT_MAX_RECORD_BYTES = 64 * 1024
#: The largest DAROOGHE_MAX_RECORD_BYTES allowed: its error-record bound stays under 1 MB.
MAX_RECORD_LIMIT = 128 * 1024
MIN_RECORD_LIMIT = 1024

#: Characters kept of one error detail, of an echoed transaction_id, of a raw preview.
DETAIL_CHARS = 1000
ID_CHARS = 200
PREVIEW_CHARS = 1000
#: Bytes kept of an echoed record key.
KEY_BYTES = 256
#: Room for the fixed fields (codes, source, validated_at, markers) of an error record.
_FIXED_BYTES = 2048
_MAX_DETAILS = 4  # one per error code
_JSON_ESCAPE = 6  # worst case bytes per character once JSON-escaped


def error_record_bound(max_record_bytes: int) -> int:
    """The largest error-record value decide() can write for inputs limited to max_record_bytes."""
    echoed = PREVIEW_CHARS + ID_CHARS + _MAX_DETAILS * DETAIL_CHARS + 200  # + markers
    return _JSON_ESCAPE * (max_record_bytes + echoed) + _FIXED_BYTES


def truncate_text(text: str, limit: int) -> str:
    """`text` itself when short enough, else its first `limit` characters and a size marker."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [truncated: {len(text):,} chars]"


def truncate_key(key: bytes | None) -> bytes | None:
    """An input key as an error record may echo it: at most KEY_BYTES bytes."""
    if key is None or len(key) <= KEY_BYTES:
        return key
    return key[:KEY_BYTES]
