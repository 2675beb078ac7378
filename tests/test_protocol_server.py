"""PolicyServer + RemotePolicyHandle over loopback: round trips, per-request errors, health."""

from __future__ import annotations

import socket
import threading
import urllib.request
from typing import Any, Iterator

import msgpack
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.sync.server import serve as sync_serve

from vlaeval.adapters.remote import RemotePolicy
from vlaeval.harness.policy import LocalPolicyHandle, Policy, PolicyFailure, PolicySpec
from vlaeval.harness.protocol import PolicyServer, RemotePolicyHandle, connect_policy, wait_for_health
from vlaeval.harness.protocol import codec, messages

pytestmark = pytest.mark.timeout(30)


class EchoPolicy(Policy):
    """Action chunk = deterministic function of the observation and the episode's step count.

    The instruction picks a fault: ``nan`` (NaN action), ``shape`` (wrong shape), ``raise``.
    """

    name = "echo"

    def __init__(self) -> None:
        self.ended: list[dict[str, Any]] = []

    def spec(self) -> PolicySpec:
        return PolicySpec(action_dim=7, chunk_size=2, name=self.name)

    def fingerprint(self) -> str:
        return "echo-v1"

    def start_episode(self, instruction: str, info: dict[str, Any]) -> dict[str, Any]:
        return {"instruction": instruction, "steps": 0}

    def act(self, state: dict[str, Any], obs: dict[str, Any]) -> np.ndarray:
        state["steps"] += 1
        fault = state["instruction"]
        if fault == "raise":
            raise RuntimeError("model exploded\nwith a long traceback")
        if fault == "shape":
            return np.zeros(3)
        base = obs["state"][:7].astype(np.float64) + float(obs["agentview"].mean()) / 255.0
        chunk = np.stack([base, base + state["steps"]])
        if fault == "nan":
            chunk[1, 3] = np.nan
        return chunk

    def end_episode(self, state: dict[str, Any], result: dict[str, Any]) -> None:
        self.ended.append(result)


def make_obs(seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "agentview": rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8),
        "wrist": rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8),
        "state": rng.standard_normal(8).astype(np.float32),
        "instruction": "pick",
    }


@pytest.fixture
def policy() -> EchoPolicy:
    return EchoPolicy()


@pytest.fixture
def server(policy: EchoPolicy) -> Iterator[PolicyServer]:
    srv = PolicyServer(policy, max_message_bytes=1 << 20)
    srv.start_in_thread()
    yield srv
    srv.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bad_array_frame(seq: int, dtype: str, nbytes: int) -> bytes:
    """An OBSERVATION whose one array is built by hand, bypassing the encoder's checks."""
    array = {"__ndarray__": True, "dtype": dtype, "shape": [1], "data": b"\0" * nbytes}
    return msgpack.packb({"type": "OBSERVATION", "seq": seq, "payload": {"obs": {"x": array}}})


def raw_exchange(ws: Any, frame: bytes | str) -> messages.Message:
    ws.send(frame)
    return messages.decode(ws.recv(timeout=5))


def assert_keeps_serving(server: PolicyServer) -> None:
    """A fresh client still gets correct actions."""
    handle = RemotePolicyHandle(server.url)
    local = LocalPolicyHandle(EchoPolicy())
    for h in (handle, local):
        h.start_episode("pick", {})
    obs = make_obs(99)
    np.testing.assert_array_equal(handle.act(obs), local.act(obs))
    handle.end_episode({"status": "success"})
    handle.close()


def test_round_trip_matches_local_policy(server: PolicyServer, policy: EchoPolicy) -> None:
    handle = connect_policy(server.url)
    assert isinstance(handle, RemotePolicyHandle)
    assert handle.spec() == EchoPolicy().spec()
    assert handle.fingerprint == "echo-v1"
    local = LocalPolicyHandle(EchoPolicy())
    handle.start_episode("pick", {"episode_id": 3, "seed": [1, 2]})
    local.start_episode("pick", {})
    for seed in range(5):
        got = handle.act(make_obs(seed))
        assert got.dtype == np.float64 and got.shape == (2, 7)
        np.testing.assert_array_equal(got, local.act(make_obs(seed)))
    handle.end_episode({"status": "success", "steps": 5})
    handle.close()
    assert policy.ended == [{"status": "success", "steps": 5}]
    stats = server.stats
    assert stats["forward_calls"] == 5 and stats["errors"] == 0 and stats["requests"] == 8


@pytest.mark.parametrize(
    "frame,seq,match",
    [
        pytest.param(b"\xc1\x00not msgpack", None, "not valid msgpack", id="not-msgpack"),
        pytest.param(msgpack.packb(42), None, "must be a map", id="msgpack-int"),
        pytest.param(codec.packb({"type": "BOGUS", "seq": 3, "payload": {}}), 3, "unknown message type", id="unknown"),
        pytest.param(codec.packb({"type": "ACTION", "seq": 4, "payload": {"action": np.zeros(7)}}), 4, "not a request"),
        pytest.param("a text frame", None, "text frame", id="text"),
        pytest.param(bad_array_frame(7, "<c16", 16), 7, "not allowed", id="complex-dtype"),
        pytest.param(bad_array_frame(8, "|O", 8), 8, "not allowed", id="object-dtype"),
        pytest.param(bad_array_frame(9, "<f4", 3), 9, "needs 4 bytes, got 3", id="short-data"),
    ],
)
def test_malformed_frames_get_error_and_connection_survives(server: PolicyServer, frame, seq, match) -> None:
    with connect(server.url) as ws:
        reply = raw_exchange(ws, frame)
        assert reply.type == messages.ERROR and reply.seq == seq
        assert match in reply.payload["message"] and reply.payload["fatal"] is False
        hello = raw_exchange(ws, messages.encode(messages.hello_request(10, {})))
        assert hello.type == messages.HELLO and hello.seq == 10
    assert server.stats["errors"] == 1
    assert_keeps_serving(server)


def test_observation_before_episode_start(server: PolicyServer) -> None:
    handle = RemotePolicyHandle(server.url)
    with pytest.raises(PolicyFailure, match=r"\(no_episode\): OBSERVATION before EPISODE_START"):
        handle.act(make_obs(0))
    with pytest.raises(PolicyFailure, match="EPISODE_END without a running episode"):
        handle.end_episode({})
    handle.start_episode("pick", {})
    assert handle.act(make_obs(0)).shape == (2, 7)
    handle.close()


@pytest.mark.parametrize(
    "fault,match",
    [
        ("nan", r"\(bad_action\): policy returned an invalid action: action contains NaN"),
        ("shape", r"\(bad_action\): .*action has shape \(3,\), expected \(7,\) or \(H, 7\)"),
        ("raise", r"\(policy_error\): policy raised RuntimeError: model exploded$"),
    ],
)
def test_policy_faults_are_per_request(server: PolicyServer, policy: EchoPolicy, fault: str, match: str) -> None:
    handle = RemotePolicyHandle(server.url)
    handle.start_episode(fault, {})
    with pytest.raises(PolicyFailure, match=match):
        handle.act(make_obs(0))
    handle.end_episode({"status": "error"})
    handle.start_episode("pick", {})  # same connection, next episode works
    assert np.isfinite(handle.act(make_obs(1))).all()
    handle.close()
    assert {"status": "error"} in policy.ended
    assert_keeps_serving(server)


def test_oversized_frame_closes_only_that_connection(server: PolicyServer) -> None:
    bystander = RemotePolicyHandle(server.url)
    bystander.start_episode("pick", {})
    with connect(server.url, max_size=None) as ws:
        ws.send(b"\0" * (2 << 20))
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    assert bystander.act(make_obs(0)).shape == (2, 7)
    bystander.close()
    assert_keeps_serving(server)


def test_client_refuses_oversized_request_and_stays_usable(server: PolicyServer) -> None:
    handle = RemotePolicyHandle(server.url)
    assert handle.max_message_bytes == 1 << 20  # learned from the server's HELLO
    handle.start_episode("pick", {})
    big = dict(make_obs(0), agentview=np.zeros((1024, 1024, 3), dtype=np.uint8))
    with pytest.raises(PolicyFailure, match="exceeds the limit"):
        handle.act(big)
    assert handle.act(make_obs(0)).shape == (2, 7)
    handle.close()


def test_disconnect_ends_the_episode(server: PolicyServer, policy: EchoPolicy) -> None:
    handle = RemotePolicyHandle(server.url)
    handle.start_episode("pick", {})
    handle.act(make_obs(0))
    handle.close()
    assert_keeps_serving(server)  # its end_episode runs after the first one's
    assert policy.ended[0] == {"status": "disconnected"}


def test_health_endpoint(server: PolicyServer) -> None:
    with urllib.request.urlopen(server.url.replace("ws://", "http://") + "/health", timeout=5) as response:
        assert response.status == 200 and response.read() == b"OK"
    wait_for_health(server.url, timeout_s=5)


def test_unreachable_server_is_a_clear_policy_failure() -> None:
    url = f"ws://127.0.0.1:{free_port()}"
    with pytest.raises(PolicyFailure, match=f"^cannot reach policy server at {url}: "):
        RemotePolicyHandle(url, connect_retries=1, retry_delay_s=0.05)
    with pytest.raises(PolicyFailure, match="not healthy after"):
        wait_for_health(url, timeout_s=0.3, interval_s=0.1)
    with pytest.raises(PolicyFailure, match="unsupported policy URL"):
        connect_policy("http://127.0.0.1:1")


def test_protocol_version_mismatch_both_ways(server: PolicyServer) -> None:
    with connect(server.url) as ws:
        hello = messages.Message(messages.HELLO, 1, {"protocol_version": 99})
        reply = raw_exchange(ws, messages.encode(hello))
    assert reply.payload["code"] == "version_mismatch" and reply.payload["fatal"] is True
    assert "client speaks 99, server speaks 1" in reply.payload["message"]

    def future_server(ws: Any) -> None:
        request = messages.decode(ws.recv())
        ws.send(messages.encode(request.reply(messages.HELLO, protocol_version=2, policy={})))

    with sync_serve(future_server, "127.0.0.1", 0) as fake:
        threading.Thread(target=fake.serve_forever, daemon=True).start()
        with pytest.raises(PolicyFailure, match="speaks protocol version 2, this client speaks 1"):
            RemotePolicyHandle(f"ws://127.0.0.1:{fake.socket.getsockname()[1]}")
        fake.shutdown()


def test_remote_policy_adapter_can_be_served_again(server: PolicyServer) -> None:
    remote = RemotePolicy(server.url)
    assert remote.spec() == EchoPolicy().spec() and remote.fingerprint() == "remote:echo-v1"
    relay = PolicyServer(remote)
    relay.start_in_thread()
    try:
        handle = RemotePolicyHandle(relay.url)
        assert handle.fingerprint == "remote:echo-v1"
        local = LocalPolicyHandle(EchoPolicy())
        for h in (handle, local):
            h.start_episode("pick", {})
        for seed in range(3):
            np.testing.assert_array_equal(handle.act(make_obs(seed)), local.act(make_obs(seed)))
        handle.end_episode({"status": "success"})
        handle.close()
    finally:
        relay.stop()
    assert server.stats["forward_calls"] == 3
