"""openpi interop both ways, using an independent minimal implementation of openpi's wire.

openpi's wire: the server sends a metadata map on connect; each client frame is a map
of observations whose arrays are ``{b"__ndarray__": True, b"data", b"dtype", b"shape"}``
maps; the reply is ``{"actions": (H, D) array, ...}``.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import msgpack
import numpy as np
import pytest
from websockets.sync.client import connect
from websockets.sync.server import ServerConnection
from websockets.sync.server import serve as sync_serve

from vlaeval.adapters.remote import OpenpiRemotePolicy
from vlaeval.harness.policy import Policy, PolicyFailure, PolicySpec
from vlaeval.harness.protocol import OpenpiPolicyHandle, PolicyServer, connect_policy

pytestmark = pytest.mark.timeout(30)

HORIZON = 10
OPENPI_ARRAY_KEYS = ("observation/state", "observation/image", "observation/wrist_image")


# --- a minimal openpi-style wire, written from openpi's documented format -------------


def wire_pack(obj: Any) -> bytes:
    def default(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return {b"__ndarray__": True, b"data": value.tobytes(), b"dtype": value.dtype.str, b"shape": value.shape}
        raise TypeError(type(value))

    return msgpack.packb(obj, default=default)


def wire_unpack(data: bytes) -> Any:
    def hook(obj: dict[Any, Any]) -> Any:
        if b"__ndarray__" in obj:
            return np.ndarray(buffer=obj[b"data"], dtype=np.dtype(obj[b"dtype"]), shape=obj[b"shape"])
        return obj

    return msgpack.unpackb(data, object_hook=hook)


def openpi_obs(seed: int, prompt: str = "put the bowl on the plate") -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "observation/image": rng.integers(0, 256, size=(224, 224, 3), dtype=np.uint8),
        "observation/wrist_image": rng.integers(0, 256, size=(224, 224, 3), dtype=np.uint8),
        "observation/state": rng.standard_normal(8).astype(np.float32),
        "prompt": prompt,
    }


def expected_chunk(state: np.ndarray, image: np.ndarray, wrist: np.ndarray, steps: int) -> np.ndarray:
    base = state[:7].astype(np.float64) + image.mean() / 255.0 - wrist.mean() / 255.0
    return base[None, :] + np.arange(HORIZON)[:, None] * 0.01 + steps


# --- direction (a): vlaeval serves openpi clients --------------------------------------


class ChunkPolicy(Policy):
    """A vlaeval policy that needs the vlaeval keys and counts steps per episode."""

    name = "chunky"

    def __init__(self) -> None:
        self.instructions: list[str] = []

    def spec(self) -> PolicySpec:
        return PolicySpec(action_dim=7, chunk_size=HORIZON, name=self.name)

    def start_episode(self, instruction: str, info: dict[str, Any]) -> dict[str, int]:
        self.instructions.append(instruction)
        return {"steps": 0}

    def act(self, state: dict[str, int], obs: dict[str, Any]) -> np.ndarray:
        if obs["instruction"] == "explode":
            raise ValueError("cannot handle this prompt")
        chunk = expected_chunk(obs["state"], obs["agentview"], obs["wrist"], state["steps"])
        state["steps"] += 1
        return chunk


@pytest.fixture
def openpi_server() -> Iterator[PolicyServer]:
    srv = PolicyServer(ChunkPolicy(), mode="openpi")
    srv.start_in_thread()
    yield srv
    srv.stop()


def test_openpi_client_gets_metadata_then_actions(openpi_server: PolicyServer) -> None:
    with connect(openpi_server.url, max_size=None) as ws:
        metadata = wire_unpack(ws.recv(timeout=5))
        assert metadata["policy"]["name"] == "chunky" and "vlaeval" in metadata
        for step in range(3):
            obs = openpi_obs(step)
            ws.send(wire_pack(obs))
            reply = wire_unpack(ws.recv(timeout=5))
            want = expected_chunk(*(obs[k] for k in OPENPI_ARRAY_KEYS), step)
            assert reply["actions"].shape == (HORIZON, 7)
            np.testing.assert_array_equal(reply["actions"], want)
            assert "infer_ms" in reply["server_timing"]
    assert openpi_server.policy.instructions == ["put the bowl on the plate"]


def test_openpi_errors_keep_the_connection(openpi_server: PolicyServer) -> None:
    with connect(openpi_server.url, max_size=None) as ws:
        ws.recv(timeout=5)
        bad = dict(openpi_obs(0), **{"observation/state": np.array([1 + 1j, 2j])})
        frames = [
            (wire_pack(bad), "not allowed"),
            (msgpack.packb([1, 2]), "must be a map"),
            (wire_pack(openpi_obs(1, "explode")), "cannot handle this prompt"),
        ]
        for frame, match in frames:
            ws.send(frame)
            assert match in wire_unpack(ws.recv(timeout=5))["error"]
        ws.send(wire_pack(openpi_obs(2, "new task")))  # a new prompt starts a new episode
        assert wire_unpack(ws.recv(timeout=5))["actions"].shape == (HORIZON, 7)
    assert openpi_server.policy.instructions[-1] == "new task"
    assert openpi_server.stats["errors"] == 3


def test_real_openpi_client_against_vlaeval_server(openpi_server: PolicyServer) -> None:
    client_mod = pytest.importorskip("openpi_client.websocket_client_policy")
    client = client_mod.WebsocketClientPolicy(host="127.0.0.1", port=openpi_server.port)
    assert client.get_server_metadata()["policy"]["name"] == "chunky"
    obs = openpi_obs(5)
    actions = client.infer(obs)["actions"]
    want = expected_chunk(*(obs[k] for k in OPENPI_ARRAY_KEYS), 0)
    np.testing.assert_array_equal(actions, want)


def test_openpi_handle_against_vlaeval_openpi_mode(openpi_server: PolicyServer) -> None:
    handle = connect_policy(f"openpi://127.0.0.1:{openpi_server.port}")
    assert handle.metadata["policy"]["name"] == "chunky"
    handle.start_episode("put the bowl on the plate", {})
    for step in range(2):
        obs = vlaeval_obs(step)
        np.testing.assert_array_equal(handle.act(obs), expected_chunk(obs["state"], obs["agentview"], obs["wrist"], step))
    handle.close()


# --- direction (b): vlaeval drives an openpi server ------------------------------------


@contextmanager
def fake_openpi_server(infer: Callable[[dict[str, Any]], Any]) -> Iterator[int]:
    """An openpi-style server: metadata first, then one reply per observation frame."""

    def handler(ws: ServerConnection) -> None:
        ws.send(wire_pack({"name": "pi0-fake", "action_horizon": HORIZON}))
        for frame in ws:
            reply = infer(wire_unpack(frame))
            ws.send(reply if isinstance(reply, str) else wire_pack(reply))

    with sync_serve(handler, "127.0.0.1", 0, max_size=None) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield server.socket.getsockname()[1]
        server.shutdown()


def fake_infer(obs: dict[str, Any]) -> dict[str, Any]:
    assert set(obs) == {"observation/image", "observation/wrist_image", "observation/state", "prompt"}
    if obs["prompt"] == "crash":
        return "Traceback (most recent call last):\n  File ...\nRuntimeError: jax ran out of memory\n"
    chunk = expected_chunk(*(obs[k] for k in OPENPI_ARRAY_KEYS), 0)
    return {"actions": chunk, "policy_timing": {"infer_ms": 1.0}}


def vlaeval_obs(seed: int) -> dict[str, Any]:
    obs = openpi_obs(seed)
    return {
        "agentview": obs["observation/image"],
        "wrist": obs["observation/wrist_image"],
        "state": obs["observation/state"],
        "extra_camera": np.zeros((8, 8, 3), dtype=np.uint8),  # unmapped: not sent
        "instruction": "put the bowl on the plate",
    }


def test_openpi_handle_drives_openpi_server() -> None:
    with fake_openpi_server(fake_infer) as port:
        handle = connect_policy(f"openpi://127.0.0.1:{port}")
        assert isinstance(handle, OpenpiPolicyHandle)
        assert handle.metadata["name"] == "pi0-fake" and handle.spec().name == "pi0-fake"
        handle.start_episode("put the bowl on the plate", {})
        for seed in range(3):
            obs = vlaeval_obs(seed)
            want = expected_chunk(obs["state"], obs["agentview"], obs["wrist"], 0)
            np.testing.assert_array_equal(handle.act(obs), want)
        assert handle.spec().chunk_size == HORIZON
        handle.start_episode("crash", {})
        with pytest.raises(PolicyFailure, match="RuntimeError: jax ran out of memory$"):
            handle.act({k: v for k, v in vlaeval_obs(0).items() if k != "instruction"})
        handle.close()


def test_openpi_remote_policy_adapter() -> None:
    with fake_openpi_server(fake_infer) as port:
        policy = OpenpiRemotePolicy(f"openpi://127.0.0.1:{port}", action_dim=7, chunk_size=HORIZON)
        assert policy.spec().chunk_size == HORIZON and policy.fingerprint().startswith("openpi:ws://127.0.0.1")
        state = policy.start_episode("put the bowl on the plate", {})
        obs = vlaeval_obs(7)
        want = expected_chunk(obs["state"], obs["agentview"], obs["wrist"], 0)
        np.testing.assert_array_equal(policy.act(state, obs), want)
        policy.end_episode(state, {"status": "success"})


def test_real_openpi_msgpack_numpy_matches_ours() -> None:
    msgpack_numpy = pytest.importorskip("openpi_client.msgpack_numpy")
    from vlaeval.harness.protocol import openpi

    obs = openpi_obs(3)
    for decoded in (openpi.unpackb(msgpack_numpy.packb(obs)), msgpack_numpy.unpackb(openpi.packb(obs))):
        assert decoded["prompt"] == obs["prompt"]
        for key in ("observation/image", "observation/state"):
            assert decoded[key].dtype == obs[key].dtype
            np.testing.assert_array_equal(decoded[key], obs[key])
