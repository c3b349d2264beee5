"""JSON and gzip for ship-logs: compiled libraries when the function's asset carries them (msgspec
for JSON, isal for gzip), the standard library otherwise, with the same results.

The compiled path is only a faster way to the standard library's answer: whatever it refuses (NaN,
a lone surrogate, a number out of range, a value it cannot encode) goes through the standard
library, which decides as it always did. ``LOG_GROUP_GOVERNOR_STDLIB_CODECS=1`` forces the standard
library (the tests run the fidelity suite both ways; an operator can rule the compiled path out).
"""

from __future__ import annotations

import json
import os
import re
import zlib
from typing import Any

ENV_STDLIB_CODECS = "LOG_GROUP_GOVERNOR_STDLIB_CODECS"
#: Fast compression: logs shrink ~10x even at level 1, and CPU is what a shipper pays for.
GZIP_LEVEL = 1
#: zlib's wbits for a gzip header and trailer.
_GZIP_WBITS = 31

_msgspec: Any = None
_isal_zlib: Any = None
if os.environ.get(ENV_STDLIB_CODECS) != "1":
    try:
        import msgspec as _msgspec
    except ImportError:
        pass
    try:
        from isal import isal_zlib as _isal_zlib
    except ImportError:
        pass

#: What the function runs with, for its log and the benchmark.
JSON_LIBRARY = "msgspec" if _msgspec is not None else "json"
GZIP_LIBRARY = "isal" if _isal_zlib is not None else "zlib"


def _no_constant(name: str) -> None:
    """NaN and Infinity are not JSON: OpenSearch refuses a document holding them. Kept as null."""
    return None


def _finite(text: str) -> float | None:
    """A number too large for a float (``1e400``) is kept as null too, as msgspec's encoder writes it."""
    value = float(text)
    return value if value - value == 0 else None


#: The C scanner behind json.loads, called directly: two Python frames fewer per structured line.
_scan_json = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite).scan_once


def _stdlib_line(message: str) -> Any:
    try:
        document, end = _scan_json(message, 0)
    except (StopIteration, ValueError, RecursionError):  # RecursionError: nested deeper than Python parses
        return None
    if end != len(message) and message[end:].strip():  # not one JSON value: plain text that starts with {
        return None
    return document


#: ``decode_line_fast(line)``: the JSON value a whole line holds; raises one of LINE_ERRORS when the
#: compiled decoder refuses it, and ``decode_line(line)`` says: the value, or None when the line is
#: not one JSON value (NaN, lone surrogates, out of range: the standard library's answer).
if _msgspec is not None:
    decode_line_fast = _msgspec.json.Decoder().decode
    LINE_ERRORS: tuple[type[BaseException], ...] = (_msgspec.DecodeError, _msgspec.ValidationError, RecursionError)
else:
    decode_line_fast = _stdlib_line
    LINE_ERRORS = ()
decode_line = _stdlib_line


def compiled_json() -> Any:
    """msgspec, when the function runs with it (for readers that decode into their own types)."""
    return _msgspec


#: The most a payload may inflate to. CloudWatch Logs sends at most about 1 MB of events in a batch
#: (a subscription payload decodes to a few MB of JSON at most: the bench's largest, 5.7 MB); a record
#: that inflates past this is corrupt or hostile, and reading on would take the function's memory.
MAX_GUNZIPPED_BYTES = 64 * 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"


class GzipError(ValueError):
    """Not gzip as CloudWatch Logs writes it: a member that is not gzip, a truncated one, trailing data,
    or more than MAX_GUNZIPPED_BYTES once inflated."""


def gunzip(data: bytes, *, limit: int = MAX_GUNZIPPED_BYTES) -> bytes:
    """Every gzip member of ``data``, inflated, one after the other (as gzip.decompress reads them);
    anything else raises GzipError: a zlib or raw deflate stream, trailing bytes that are no member,
    a truncated member, or an inflated size over ``limit``. The compiled and the standard path share
    this loop; only the inflater differs."""
    module = _isal_zlib if _isal_zlib is not None else zlib
    if not data:
        raise GzipError("empty")
    pieces, total, rest = [], 0, memoryview(data)
    while rest:
        if bytes(rest[:2]) != _GZIP_MAGIC:
            raise GzipError("not a gzip member" if not pieces else f"{len(rest)} bytes after the last gzip member")
        inflater = module.decompressobj(_GZIP_WBITS)
        try:
            piece = inflater.decompress(rest, limit - total + 1)  # one byte past the limit tells it was passed
        except module.error as error:
            raise GzipError(f"not gzip: {error}") from None
        total += len(piece)
        if total > limit:
            raise GzipError(f"inflates past {limit:,} bytes")
        if not inflater.eof:
            raise GzipError("a truncated gzip member")
        pieces.append(piece)
        rest = memoryview(inflater.unused_data)
    return b"".join(pieces)


def gzip_stream() -> Any:
    """A gzip compressor fed piece by piece (``compress``, then ``flush``)."""
    if _isal_zlib is not None:
        return _isal_zlib.compressobj(GZIP_LEVEL, _isal_zlib.DEFLATED, _GZIP_WBITS)
    return zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)


#: A UTF-16 surrogate with no partner: valid in a JSON string escape, not encodable as UTF-8.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_stdlib_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str).encode


def _stdlib_encode(value: Any) -> bytes:
    """Standard JSON (no NaN), UTF-8. A lone surrogate (``"\\udcff"`` in a line: what json.dumps writes
    for an undecodable file name) becomes U+FFFD instead of failing the batch. Raises ValueError,
    RecursionError or TypeError for what cannot be written."""
    text = _stdlib_dumps(value)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return _LONE_SURROGATE.sub("\ufffd", text).encode()


if _msgspec is not None:
    _encode = _msgspec.json.Encoder().encode

    def encode_json(value: Any) -> bytes:
        """``value`` as compact standard JSON in UTF-8 (see _stdlib_encode for what is refused)."""
        try:
            return _encode(value)
        except (TypeError, ValueError, RecursionError, UnicodeEncodeError, OverflowError):
            # Surrogates, values JSON has no type for (str() of them, as the standard library does here), depth.
            return _stdlib_encode(value)
else:
    encode_json = _stdlib_encode
