"""JSON for the hook's path, without importing the ``json`` package.

``import json`` was the largest part of the hook's own cost (BENCHMARKS.md "Hook fast
path"): ``json`` imports ``re``, and ``re`` imports ``enum``, ``functools`` and the
regex compiler, all to build the few patterns the pure-Python decoder uses for
whitespace. The work itself is done by CPython's C accelerator, ``_json``, which imports
nothing; this module calls it exactly as ``json.JSONDecoder.decode`` and
``json.JSONEncoder.encode`` do (CPython 3.11-3.13), so the results are the same, byte
for byte (``tests/test_jsoncodec.py`` checks that against ``json`` on random values).

Anything the fast path does not take (invalid JSON, a UTF-16 file, an interpreter
without ``_json``) goes to ``json`` itself, which then raises or decodes as it always
would: errors cost the import, the common case does not.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # the hook's path imports no typing, and it needs none of it
    from collections.abc import Callable
    from typing import Any

_WHITESPACE = " \t\n\r"

try:  # CPython's accelerator; PyPy and others have none: they use json throughout
    import _json
except ImportError:  # pragma: no cover - CPython always has it
    _json = None  # type: ignore[assignment]


class _Context:
    """What ``_json.make_scanner`` reads off a ``json.JSONDecoder``: its defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> float:
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


def _scanner() -> Callable[[str, int], tuple[Any, int]] | None:
    """The C scanner ``json.JSONDecoder`` builds, or None (then ``json`` does it all):
    no ``_json``, or a future one that wants more of its context.  Never an exception:
    every hook imports this module, and a hook that cannot import loses its event."""
    if _json is None:
        return None
    try:  # (typeshed types the context as a scanner; an object with its attributes does)
        return _json.make_scanner(_Context)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - any failure means: let json do it
        return None


_scan = _scanner()


def loads(data: str | bytes) -> Any:
    """``json.loads(data)``: the same value, or the same exception (``ValueError``)."""
    if _scan is not None and isinstance(data, (str, bytes)):  # bytearray & co: json's
        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
            start = len(text) - len(text.lstrip(_WHITESPACE))
            value, end = _scan(text, start)
            if not text[end:].strip(_WHITESPACE):
                return value
        except (ValueError, StopIteration, SystemError):
            # json says what is wrong, in its words (or decodes UTF-16 and BOMs).  The
            # scanner reports a syntax error by raising json.decoder.JSONDecodeError,
            # looked up in sys.modules, not imported: with json not loaded, 3.11 raises
            # SystemError ("returned NULL without setting an exception") instead.
            pass
    import json

    return json.loads(data)


def dumps(
    value: Any,
    *,
    ensure_ascii: bool = True,
    compact: bool = True,
    default: Any = None,
    allow_nan: bool = True,
) -> str:
    """``json.dumps(value, ensure_ascii=..., default=..., allow_nan=...)``, with
    ``separators=(",", ":")`` when ``compact`` (the spool's and the logs' format)."""
    if _json is not None and isinstance(value, str):
        return str(_escape(ensure_ascii)(value))
    encode = _encoder(ensure_ascii=ensure_ascii, compact=compact, default=default, nan=allow_nan)
    if encode is None:
        import json

        separators = (",", ":") if compact else None
        return json.dumps(
            value,
            ensure_ascii=ensure_ascii,
            default=default,
            allow_nan=allow_nan,
            separators=separators,
        )
    return "".join(encode(value, 0))


def _encoder(*, ensure_ascii: bool, compact: bool, default: Any, nan: bool) -> Any:
    """The C encoder ``json.JSONEncoder.iterencode`` builds for one call, or None (then
    ``json`` does it): no ``_json``, or one whose ``make_encoder`` takes other arguments."""
    if _json is None:
        return None
    try:
        return _json.make_encoder(
            {},  # markers: circular references raise ValueError, as in json
            default or _not_serializable,
            _escape(ensure_ascii),
            None,  # indent
            ":" if compact else ": ",
            "," if compact else ", ",
            False,  # sort_keys
            False,  # skipkeys
            nan,
        )
    except TypeError:
        return None


def _escape(ensure_ascii: bool) -> Callable[[str], str]:
    return _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring


def _not_serializable(value: Any) -> Any:
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")
