"""Bytes as the body of a C array initializer, the way ``xxd -i`` lays them out."""

from __future__ import annotations

__all__ = ["BYTES_PER_LINE", "c_array_body"]

BYTES_PER_LINE = 12


def c_array_body(data: bytes, indent: str = "    ") -> str:
    """Hex literals, ``BYTES_PER_LINE`` to a line, each line ending in a comma (legal in C and C++)."""
    lines = []
    for start in range(0, len(data), BYTES_PER_LINE):
        chunk = data[start : start + BYTES_PER_LINE]
        lines.append(indent + ", ".join(f"0x{byte:02x}" for byte in chunk) + ",")
    return "\n".join(lines)
