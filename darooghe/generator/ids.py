"""Transaction ids and timestamps as text, in bulk.

Ids are RFC 4122 version-4 UUID strings whose 122 random bits come from the seeded generator (not
uuid4, which reads the OS entropy), so a seed reproduces them. Both conversions run on whole numpy
arrays: per-event uuid/strftime calls would cost more than the rest of the generator.
"""

from __future__ import annotations

import numpy as np

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
#: byte positions of the 32 hex digits inside the 36-character UUID text
_DIGIT_POSITIONS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])


def random_uuid_bytes(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 16) uint8: random UUID v4 bytes (version nibble 4, RFC 4122 variant)."""
    raw = rng.integers(0, 2**64, size=(n, 2), dtype=np.uint64, endpoint=False)
    data = raw.view(np.uint8).reshape(n, 16).copy()
    data[:, 6] = (data[:, 6] & 0x0F) | 0x40
    data[:, 8] = (data[:, 8] & 0x3F) | 0x80
    return data


def uuid_strings(data: np.ndarray) -> list[str]:
    """UUID text ("8-4-4-4-12" lowercase hex) of each row of (n, 16) bytes."""
    n = data.shape[0]
    digits = np.empty((n, 32), dtype=np.uint8)
    digits[:, 0::2] = _HEX[data >> 4]
    digits[:, 1::2] = _HEX[data & 0x0F]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    text[:, _DIGIT_POSITIONS] = digits
    joined = text.tobytes().decode("ascii")
    return [joined[i : i + 36] for i in range(0, 36 * n, 36)]


def uuid_sort_keys(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(high, low) uint64 halves, big-endian: comparing them compares the UUID strings."""
    be = np.ascontiguousarray(data).view(">u8").reshape(-1, 2)
    return be[:, 0].astype(np.uint64), be[:, 1].astype(np.uint64)


def iso_millis(t_ms: np.ndarray) -> list[str]:
    """darooghe.schema.format_epoch_ms over an array, for the generator's hot path: numpy formats a
    batch at once where a call per event would cost the generator its rate."""
    text = np.datetime_as_string(np.asarray(t_ms, dtype="datetime64[ms]"), unit="ms")
    return np.char.add(text, "Z").tolist()
