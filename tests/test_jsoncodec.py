"""hookclient.jsoncodec against json itself: the same values, bytes and errors."""

from __future__ import annotations

import glob
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookclient import jsoncodec

FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "200")), deadline=None)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@FUZZ
@given(values, st.booleans())
def test_dumps_writes_what_json_writes(value: Any, ensure_ascii: bool) -> None:
    assert jsoncodec.dumps(value, ensure_ascii=ensure_ascii) == json.dumps(
        value, ensure_ascii=ensure_ascii, separators=(",", ":")
    )
    assert jsoncodec.dumps(value, ensure_ascii=ensure_ascii, compact=False) == json.dumps(
        value, ensure_ascii=ensure_ascii
    )


@FUZZ
@given(values, st.sampled_from(["", " ", "\n\t ", "\r\n"]))
def test_loads_reads_what_json_reads(value: Any, space: str) -> None:
    text = space + json.dumps(value, ensure_ascii=False) + space
    assert jsoncodec.loads(text) == json.loads(text)
    assert jsoncodec.loads(text.encode("utf-8", "surrogatepass")) == json.loads(
        text.encode("utf-8", "surrogatepass")
    )


@FUZZ
@given(st.binary(max_size=64) | st.text(max_size=64))
def test_any_input_gives_json_value_or_json_error(data: bytes | str) -> None:
    try:
        expected: Any = json.loads(data)
    except (ValueError, RecursionError) as exc:
        with pytest.raises(type(exc)) as raised:
            jsoncodec.loads(data)
        assert str(raised.value) == str(exc)
    else:
        got = jsoncodec.loads(data)
        assert json.dumps(got) == json.dumps(expected)  # NaN != NaN, its text is equal


@pytest.mark.parametrize(
    "text",
    [
        "NaN",
        "[Infinity, -Infinity]",
        '{"a": 1e400}',
        "12345678901234567890123456789",
        '"\\ud83d\\ude00 and a lone \\ud800"',
        "\ufeff{}",  # a BOM: json refuses it in text, accepts it in bytes
        '{"a": 1} x',
        '{"a": 1',
        "",
        "   ",
    ],
)
def test_edge_cases_match_json(text: str) -> None:
    for data in (text, text.encode("utf-8", "surrogatepass")):
        try:
            expected = json.dumps(json.loads(data))
        except ValueError as exc:
            with pytest.raises(ValueError, match=None) as raised:
                jsoncodec.loads(data)
            assert str(raised.value) == str(exc)
        else:
            assert json.dumps(jsoncodec.loads(data)) == expected


def test_utf16_bytes_are_read_as_json_reads_them() -> None:
    data = '{"hook_event_name": "Stop"}'.encode("utf-16")
    assert jsoncodec.loads(data) == json.loads(data) == {"hook_event_name": "Stop"}


def test_deep_nesting_is_a_recursion_error_as_in_json() -> None:
    text = "[" * 100_000 + "]" * 100_000
    with pytest.raises(RecursionError):
        json.loads(text)
    with pytest.raises(RecursionError):
        jsoncodec.loads(text)


def test_dumps_errors_match_json() -> None:
    circular: list[Any] = []
    circular.append(circular)
    for value in (circular, {"a": object()}, {(1, 2): 3}):
        with pytest.raises((TypeError, ValueError)) as expected:
            json.dumps(value)
        with pytest.raises(expected.type) as raised:
            jsoncodec.dumps(value)
        assert str(raised.value) == str(expected.value)
    with pytest.raises(ValueError):
        jsoncodec.dumps(math.nan, allow_nan=False)
    assert jsoncodec.dumps({"t": object}, default=str) == json.dumps(
        {"t": object}, default=str, separators=(",", ":")
    )
    assert jsoncodec.dumps("é\n", ensure_ascii=False) == json.dumps("é\n", ensure_ascii=False)


def test_importing_it_imports_neither_json_nor_re() -> None:
    probe = (
        "import sys\n"
        "from hookclient import jsoncodec\n"
        "jsoncodec.loads(jsoncodec.dumps({'a': [1, 2.5, None, 'x']}))\n"
        "print(sorted({'json', 're', 'enum', 'typing'} & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("text", ['{"a": 1', '{"a": [1, 2}', "[", '{"a" 1}', "x", "1 2"])
def test_a_syntax_error_before_json_is_imported_is_json_s_error(text: str) -> None:
    """The scanner reports syntax errors with json.decoder's exception, which it finds
    only if json is loaded: in a fresh process (the hook) it must still be that error."""
    probe = (
        "import sys\n"
        "from hookclient import jsoncodec\n"
        "try:\n"
        "    jsoncodec.loads(sys.argv[1])\n"
        "except ValueError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, text], capture_output=True, text=True, timeout=60
    )
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    assert (out.returncode, out.stderr) == (0, "")
    assert out.stdout.strip() == f"JSONDecodeError {expected.value}"


class _OtherJson:
    """A future ``_json`` whose constructors take other arguments."""

    encode_basestring = staticmethod(json.encoder.encode_basestring)
    encode_basestring_ascii = staticmethod(json.encoder.encode_basestring_ascii)

    @staticmethod
    def make_encoder(*args: Any) -> Any:
        raise TypeError("make_encoder() takes 10 arguments")

    @staticmethod
    def make_scanner(context: Any) -> Any:
        raise AttributeError("'_Context' has no attribute 'array_hook'")


def test_an_accelerator_it_cannot_use_leaves_the_work_to_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Never an exception of its own: every hook imports this module, and a hook that
    cannot import it, or call it, loses its event."""
    monkeypatch.setattr(jsoncodec, "_json", _OtherJson)
    assert jsoncodec._scanner() is None
    monkeypatch.setattr(jsoncodec, "_scan", jsoncodec._scanner())
    value = {"a": [1, 2.5, None, "é"], "b": {"c": True}}
    assert jsoncodec.dumps(value, ensure_ascii=False) == json.dumps(
        value, ensure_ascii=False, separators=(",", ":")
    )
    assert jsoncodec.loads(b' {"a": [1, 2.5]} ') == {"a": [1, 2.5]}
    with pytest.raises(json.JSONDecodeError):
        jsoncodec.loads('{"a": 1')


def _other_pythons() -> list[str]:
    """Interpreters of other versions on this machine (pyenv's, then PATH's)."""
    found: dict[str, str] = {}
    for minor in range(11, 15):
        pyenv = glob.glob(f"{Path.home()}/.pyenv/versions/3.{minor}.*/bin/python3")
        for path in [*sorted(pyenv), shutil.which(f"python3.{minor}")]:
            if path and minor != sys.version_info.minor:
                found.setdefault(f"3.{minor}", path)
    return [found[version] for version in sorted(found)]


@pytest.mark.parametrize("python", _other_pythons() or [None])
def test_other_python_versions_agree_with_their_json(python: str | None) -> None:
    """_json is CPython's, not a public API: compare with json in every other version
    this machine has (pyproject allows >= 3.11)."""
    if python is None:
        pytest.skip("no other Python 3.11+ on this machine to compare jsoncodec in")
    script = Path(__file__).with_name("jsoncodec_compare.py")
    run = subprocess.run(
        [python, str(script), str(script.parent.parent)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert " 0 differences" in run.stdout


@pytest.mark.parametrize("data", [bytearray(b'{"a": 1}'), memoryview(b"{}"), None, 123])
def test_other_input_types_behave_as_in_json(data: Any) -> None:
    try:
        expected: Any = ("ok", json.loads(data))
    except TypeError as exc:
        expected = ("TypeError", str(exc))
    try:
        got: Any = ("ok", jsoncodec.loads(data))
    except TypeError as exc:
        got = ("TypeError", str(exc))
    assert got == expected
