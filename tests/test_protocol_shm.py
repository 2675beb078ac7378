"""Shared-memory transport for large arrays (same-host client and server)."""

from __future__ import annotations

import os
from typing import Any, Iterator

import numpy as np
import pytest

from vlaeval.harness.policy import LocalPolicyHandle, Policy, PolicySpec
from vlaeval.harness.protocol import PolicyServer, RemotePolicyHandle, codec
from vlaeval.harness.protocol.shm import MIN_ARRAY_BYTES, SHM_DIR, ShmReader, ShmWriter

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.skipif(not os.path.isdir(SHM_DIR), reason="needs /dev/shm (Linux)"),
]


class FramePolicy(Policy):
    """Action = per-channel means of the frame and of the depth map, and the step count."""

    name = "frame-means"

    def spec(self) -> PolicySpec:
        return PolicySpec(action_dim=7, chunk_size=1, name=self.name)

    def start_episode(self, instruction: str, info: dict[str, Any]) -> dict[str, Any]:
        return {"steps": 0}

    def act(self, state: dict[str, Any], obs: dict[str, Any]) -> np.ndarray:
        state["steps"] += 1
        image, depth = obs["image"], obs["depth"]
        assert image.flags.writeable and depth.flags.writeable
        return np.array([*image.reshape(-1, 3).mean(0), depth.mean(), depth.std(), obs["state"].sum(), state["steps"]])


def frame_obs(seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "image": rng.integers(0, 256, size=(512, 640, 3), dtype=np.uint8),
        "depth": rng.standard_normal((256, 256)).astype(np.float32)[::2, ::2],  # not contiguous
        "state": rng.standard_normal(8).astype(np.float32),
        "instruction": "open the drawer",
    }


def our_segments() -> set[str]:
    return {name for name in os.listdir(SHM_DIR) if name.startswith("vlaeval-")}


@pytest.fixture
def writer() -> Iterator[ShmWriter]:
    w = ShmWriter(4 << 20)
    yield w
    w.close()


def test_large_arrays_travel_by_reference_and_come_back_equal(writer: ShmWriter) -> None:
    obs = frame_obs(0)
    reader = ShmReader.accept(writer.offer(), max_bytes=8 << 20)
    assert reader is not None
    writer.begin_message()
    frame = codec.packb({"obs": obs}, writer)
    assert len(frame) < 1000  # the megabyte frame stayed in shared memory
    decoded = codec.unpackb(frame, shm=reader)["obs"]
    for key in ("image", "depth", "state"):
        np.testing.assert_array_equal(decoded[key], obs[key])
        assert decoded[key].dtype == obs[key].dtype and decoded[key].flags.writeable
    assert decoded["instruction"] == "open the drawer"
    # small arrays stay inline; a decoded array is a copy, independent of the segment
    assert codec.ARRAY_MARKER.encode() in frame and codec.SHM_MARKER.encode() in frame
    writer.begin_message()
    codec.packb({"obs": frame_obs(1)}, writer)
    np.testing.assert_array_equal(decoded["image"], obs["image"])
    reader.close()


def test_arrays_that_do_not_fit_stay_inline() -> None:
    w = ShmWriter(3 * MIN_ARRAY_BYTES)
    try:
        big = np.ones(2 * MIN_ARRAY_BYTES, dtype=np.uint8)
        assert w.place(big) is not None
        assert w.place(big) is None  # no room left in this message
        w.begin_message()
        assert w.place(big) is not None  # the next message starts at the beginning again
        assert w.place(np.ones(MIN_ARRAY_BYTES - 1, dtype=np.uint8)) is None  # too small to bother
    finally:
        w.close()


def test_reader_refuses_offers_it_cannot_verify(writer: ShmWriter) -> None:
    offer = writer.offer()
    assert ShmReader.accept(offer, 1 << 20) is not None
    wrong = [
        {**offer, "nonce": "00" * 16},
        {**offer, "size": offer["size"] + 1},
        {**offer, "segment": "../../etc/passwd"},
        {**offer, "segment": "vlaeval-" + "0" * 32},  # no such segment
        {**offer, "nonce": "zz"},
        "not a map",
    ]
    for bad in wrong:
        assert ShmReader.accept(bad, 1 << 20) is None, bad


@pytest.mark.parametrize(
    "ref,match",
    [
        ({"dtype": "|u1", "shape": [8], "offset": 0}, "offset must be"),
        ({"dtype": "|u1", "shape": [8], "offset": 1.5}, "offset must be"),
        ({"dtype": "|u1", "shape": [1024], "offset": 4 << 20}, "outside"),
        ({"dtype": "<f8", "shape": [1 << 20], "offset": 64}, "exceeds limit"),
        ({"dtype": "|O", "shape": [8], "offset": 64}, "not allowed"),
        ({"dtype": "|u1", "shape": [-1], "offset": 64}, "non-negative"),
    ],
)
def test_reader_checks_every_reference(writer: ShmWriter, ref: dict[str, Any], match: str) -> None:
    reader = ShmReader.accept(writer.offer(), max_bytes=1 << 20)
    assert reader is not None
    with pytest.raises(codec.CodecError, match=match):
        reader.array({codec.SHM_MARKER: True, **ref})
    reader.close()


def test_reference_without_shared_memory_is_a_codec_error() -> None:
    frame = codec.packb({"x": {codec.SHM_MARKER: True, "dtype": "|u1", "shape": [1], "offset": 64}})
    with pytest.raises(codec.CodecError, match="did not set up shared memory"):
        codec.unpackb(frame)


@pytest.fixture
def server() -> Iterator[PolicyServer]:
    srv = PolicyServer(FramePolicy())
    srv.start_in_thread()
    yield srv
    srv.stop()


def run_episode(handle: RemotePolicyHandle, seeds: range) -> list[np.ndarray]:
    handle.start_episode("open the drawer", {})
    actions = [handle.act(frame_obs(seed)) for seed in seeds]
    handle.end_episode({"status": "success"})
    return actions


def test_same_host_client_uses_shared_memory_and_gets_the_same_actions(server: PolicyServer) -> None:
    before = our_segments()
    handle = RemotePolicyHandle(server.url)
    assert handle.transport == "shm" and handle.server_info["server"]["shm"] is True
    assert our_segments() == before  # unlinked once the HELLO was answered
    local = LocalPolicyHandle(FramePolicy())
    local.start_episode("open the drawer", {})
    expected = [np.atleast_2d(local.act(frame_obs(seed))) for seed in range(4)]
    got = run_episode(handle, range(4))  # each request overwrites the segment the previous one used
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    handle.close()
    assert our_segments() == before


@pytest.mark.parametrize("how", ["client option", "environment", "server option"])
def test_shared_memory_can_be_turned_off(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if how == "environment":
        monkeypatch.setenv("VLAEVAL_SHM", "0")
    srv = PolicyServer(FramePolicy(), shared_memory=how != "server option")
    srv.start_in_thread()
    try:
        handle = RemotePolicyHandle(srv.url, shared_memory=how != "client option")
        assert handle.transport == "wire"
        wire = run_episode(handle, range(2))
        handle.close()
        monkeypatch.delenv("VLAEVAL_SHM", raising=False)
        fast = RemotePolicyHandle(srv.url)
        assert fast.transport == ("wire" if how == "server option" else "shm")
        for a, b in zip(wire, run_episode(fast, range(2))):
            np.testing.assert_array_equal(a, b)
        fast.close()
    finally:
        srv.stop()
