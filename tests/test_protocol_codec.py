"""The msgpack numpy codecs (vlaeval's and openpi's) and the message envelope."""

from __future__ import annotations

import subprocess
import sys

import msgpack
import numpy as np
import pytest

from vlaeval.harness.protocol import codec, messages, openpi
from vlaeval.harness.protocol.codec import CodecError
from vlaeval.harness.protocol.messages import Message, ProtocolError

RNG = np.random.default_rng(0)
IMAGE = RNG.integers(0, 256, size=(224, 224, 3), dtype=np.uint8)
STATE = RNG.standard_normal(8).astype(np.float32)
ACTIONS = RNG.standard_normal((10, 7))
CODECS = [pytest.param(codec, id="vlaeval"), pytest.param(openpi, id="openpi")]


def assert_same_array(got: np.ndarray, want: np.ndarray) -> None:
    assert isinstance(got, np.ndarray)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == np.ascontiguousarray(want).tobytes()


def raw_array(dtype: str, shape: list[int], data: bytes, marker: object = "__ndarray__") -> bytes:
    """A hand-built array map, bypassing the encoder's checks."""
    keys = ("dtype", "shape", "data") if marker == "__ndarray__" else (b"dtype", b"shape", b"data")
    return msgpack.packb({marker: True, keys[0]: dtype, keys[1]: shape, keys[2]: data}, use_bin_type=True)


@pytest.mark.parametrize("mod", CODECS)
@pytest.mark.parametrize(
    "array",
    [
        pytest.param(IMAGE, id="image"),
        pytest.param(STATE, id="state-f32"),
        pytest.param(ACTIONS, id="actions-f64"),
        pytest.param(np.zeros((0, 7)), id="empty-2d"),
        pytest.param(np.array([], dtype=np.uint8), id="empty-1d"),
        pytest.param(np.array(3.5, dtype=np.float16), id="zero-dim"),
        pytest.param(IMAGE[::2, 1::3, ::-1], id="strided"),
        pytest.param(np.asfortranarray(ACTIONS), id="fortran"),
        pytest.param(ACTIONS.T, id="transposed"),
        pytest.param(ACTIONS.astype(">f8"), id="big-endian"),
        pytest.param(np.array([True, False, True]), id="bool"),
    ],
)
def test_array_round_trip_is_bit_exact(mod, array: np.ndarray) -> None:
    decoded = mod.unpackb(mod.packb(array))
    assert_same_array(decoded, array)


@pytest.mark.parametrize("mod", CODECS)
@pytest.mark.parametrize("dtype", sorted(codec.ALLOWED_DTYPES))
def test_every_allowed_dtype_round_trips(mod, dtype: str) -> None:
    array = (np.arange(12) % 2 == 0) if dtype == "bool" else np.arange(12).astype(dtype)
    assert_same_array(mod.unpackb(mod.packb(array.reshape(3, 4))), array.reshape(3, 4))


@pytest.mark.parametrize("mod", CODECS)
def test_nested_structures_round_trip(mod) -> None:
    obj = {
        "obs": {"agentview": IMAGE, "state": STATE, "instruction": "pick up the bowl"},
        "history": [ACTIONS, [np.ones(2, dtype=np.int16), None, 1.5, "x", b"raw"]],
        "flags": {"ok": True, "count": 3},
    }
    decoded = mod.unpackb(mod.packb(obj))
    assert decoded["obs"]["instruction"] == "pick up the bowl"
    assert_same_array(decoded["obs"]["agentview"], IMAGE)
    assert_same_array(decoded["obs"]["state"], STATE)
    assert_same_array(decoded["history"][0], ACTIONS)
    assert_same_array(decoded["history"][1][0], np.ones(2, dtype=np.int16))
    assert decoded["history"][1][1:] == [None, 1.5, "x", b"raw"]
    assert decoded["flags"] == {"ok": True, "count": 3}


@pytest.mark.parametrize("mod", CODECS)
def test_decoded_arrays_are_writable_copies(mod) -> None:
    frame = mod.packb({"a": IMAGE})
    first, second = mod.unpackb(frame)["a"], mod.unpackb(frame)["a"]
    assert first.flags.writeable and first.flags.owndata
    first[0, 0, 0] ^= 0xFF
    assert second[0, 0, 0] == IMAGE[0, 0, 0]


def test_vlaeval_numpy_scalars_become_python_scalars() -> None:
    decoded = codec.unpackb(codec.packb([np.float32(1.5), np.int64(7), np.bool_(True), np.uint8(255)]))
    assert decoded == [1.5, 7, True, 255]
    assert [type(v) for v in decoded] == [float, int, bool, int]


def test_openpi_numpy_scalars_keep_their_dtype() -> None:
    decoded = openpi.unpackb(openpi.packb({"x": np.float32(1.5), "n": np.int16(-3)}))
    assert decoded["x"] == np.float32(1.5) and decoded["x"].dtype == np.float32
    assert decoded["n"] == -3 and decoded["n"].dtype == np.int16


def test_wire_layout_of_both_codecs() -> None:
    vlaeval_map = msgpack.unpackb(codec.packb(STATE), raw=False)
    assert vlaeval_map == {"__ndarray__": True, "dtype": "<f4", "shape": [8], "data": STATE.tobytes()}
    openpi_map = msgpack.unpackb(openpi.packb(STATE), raw=False)
    assert openpi_map == {b"__ndarray__": True, b"dtype": "<f4", b"shape": [8], b"data": STATE.tobytes()}


@pytest.mark.parametrize("mod", CODECS)
@pytest.mark.parametrize(
    "value",
    [
        pytest.param(np.array([object()], dtype=object), id="object"),
        pytest.param(np.array([1 + 2j]), id="complex"),
        pytest.param(np.array(["a", "b"]), id="str"),
        pytest.param(np.zeros(2, dtype=[("a", "<f4")]), id="structured"),
        pytest.param(np.complex64(1j), id="complex-scalar"),
        pytest.param({"x": {1, 2}}, id="set"),
    ],
)
def test_encoding_rejects_disallowed_values(mod, value) -> None:
    with pytest.raises(CodecError):
        mod.packb(value)


@pytest.mark.parametrize("mod,marker", [(codec, "__ndarray__"), (openpi, b"__ndarray__")], ids=["vlaeval", "openpi"])
@pytest.mark.parametrize(
    "dtype,shape,data,match",
    [
        ("|O", [1], b"\0" * 8, "not allowed"),
        ("<c16", [1], b"\0" * 16, "not allowed"),
        ("<U3", [1], b"\0" * 12, "not allowed"),
        ("|V8", [1], b"\0" * 8, "not allowed"),
        ("<M8[s]", [1], b"\0" * 8, "not allowed"),
        ("not-a-dtype", [1], b"\0", "unknown array dtype"),
        ("<f4", [3], b"\0" * 8, "needs 12 bytes, got 8"),
        ("<f4", [-1], b"", "non-negative"),
        ("<f4", "3", b"\0" * 12, "shape must be a list"),
        ("<f4", [3], "not bytes", "data must be bytes"),
    ],
)
def test_decoding_rejects_bad_arrays(mod, marker, dtype, shape, data, match) -> None:
    with pytest.raises(CodecError, match=match) as info:
        mod.unpackb(raw_array(dtype, shape, data, marker))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("mod", CODECS)
def test_size_limits(mod) -> None:
    frame = mod.packb({"image": IMAGE})
    with pytest.raises(CodecError, match="exceeds limit"):
        mod.unpackb(frame, max_bytes=len(frame) - 1)
    assert_same_array(mod.unpackb(frame, max_bytes=len(frame))["image"], IMAGE)
    huge = raw_array("<f8", [1 << 40], b"", "__ndarray__" if mod is codec else b"__ndarray__")
    with pytest.raises(CodecError, match="exceeds limit"):
        mod.unpackb(huge)


@pytest.mark.parametrize(
    "frame", [b"\xc1\x00garbage", b"\x92\x01", "text frame", b""], ids=["reserved", "truncated", "text", "empty"]
)
def test_decoding_rejects_garbage(frame) -> None:
    with pytest.raises(CodecError):
        codec.unpackb(frame)


def test_message_round_trip_and_reply_echoes_seq() -> None:
    request = Message(messages.OBSERVATION, 41, {"obs": {"state": STATE}}, timestamp=12.5)
    decoded = messages.decode(messages.encode(request))
    assert (decoded.type, decoded.seq, decoded.timestamp) == (messages.OBSERVATION, 41, 12.5)
    assert_same_array(decoded.payload["obs"]["state"], STATE)
    reply = decoded.reply(messages.ACTION, action=ACTIONS)
    assert messages.decode(messages.encode(reply)).seq == 41


@pytest.mark.parametrize(
    "wire,match",
    [
        (5, "must be a map"),
        ({"type": "BOGUS", "seq": 1, "payload": {}}, "unknown message type 'BOGUS'"),
        ({"type": "OBSERVATION", "seq": "1", "payload": {"obs": {}}}, "integer 'seq'"),
        ({"type": "OBSERVATION", "seq": True, "payload": {"obs": {}}}, "integer 'seq'"),
        ({"type": "OBSERVATION", "seq": None, "payload": {"obs": {}}}, "integer 'seq'"),
        ({"type": "OBSERVATION", "seq": 1, "payload": []}, "map 'payload'"),
        ({"type": "OBSERVATION", "seq": 1, "payload": {}}, "missing 'obs'"),
        ({"type": "EPISODE_START", "seq": 1, "payload": {"instruction": 3, "episode": {}}}, "'instruction' has type"),
        ({"type": "ACTION", "seq": 1, "payload": {"action": [1.0]}}, "'action' has type list"),
    ],
)
def test_malformed_messages_raise_protocol_error(wire, match) -> None:
    with pytest.raises(ProtocolError, match=match):
        messages.decode(codec.packb(wire))


def test_error_messages_are_one_line_and_may_lack_seq() -> None:
    err = messages.decode(messages.encode(messages.error(None, "first line\nsecond line", "bad_frame")))
    assert err.seq is None and err.payload["message"] == "first line"
    assert messages.peek_seq(raw_array("<c16", [1], b"\0" * 16)) is None
    bad_array = {"x": {"__ndarray__": True}}
    assert messages.peek_seq(msgpack.packb({"type": "OBSERVATION", "seq": 9, "payload": {"obs": bad_array}})) == 9
    assert messages.peek_seq(b"\xc1") is None


def test_client_side_modules_import_only_numpy_msgpack_websockets() -> None:
    """Sim environments have only the stdlib, numpy, msgpack and websockets."""
    script = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import vlaeval.harness.protocol.client, vlaeval.harness.protocol.openpi\n"
        "new = {name: getattr(sys.modules[name], '__file__', None) or '' for name in set(sys.modules) - before}\n"
        "print(' '.join({name.split('.')[0] for name, path in new.items() if 'site-packages' in path}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert set(out) <= {"numpy", "msgpack", "websockets", "vlaeval"}, out
