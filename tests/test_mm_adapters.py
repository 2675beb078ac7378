"""Text-model adapters: a tiny random Hugging Face VLM built offline, and a local OpenAI-compatible server."""

from __future__ import annotations

import base64
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from vlaeval.harness import registry
from vlaeval.harness.config import load_config
from vlaeval.harness.run import run_evaluation
from vlaeval.harness.store import read_episodes
from vlaeval.harness.text import TextRequest
from vlaeval.suites.vlmeval.tsv import write_tsv

registry.adapters.register("hf-vlm", "vlaeval.adapters.hf_vlm:HFVisionLanguageModel")
registry.adapters.register("openai-chat", "vlaeval.adapters.openai_chat:OpenAIChatModel")
registry.suites.register("mmstar", "vlaeval.suites.vlmeval:make_mmstar")
registry.suites.register("docvqa", "vlaeval.suites.vlmeval:make_docvqa")

COLOURS = {"red": (220, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 220)}


def colour_image(name: str, shape=(24, 40)) -> np.ndarray:
    return np.full((*shape, 3), COLOURS[name], dtype=np.uint8)


def write_mmstar(path, n=6):
    rows = []
    for i in range(n):
        name = list(COLOURS)[i % 3]
        rows.append({"index": i, "image": colour_image(name, shape=(24 + 4 * i, 40)), "question": "Which colour?",
                     "A": "red", "B": "green", "C": "blue", "answer": "ABC"[i % 3], "category": "colour"})
    return write_tsv(rows, path)


def stored(run_dir):
    return read_episodes(run_dir)


# -- Hugging Face VLM ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory):
    """A 2-layer random LLaVA (CLIP vision tower + Llama) with a word-level tokenizer, saved like a hub checkpoint."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tiny_llava import build_tiny_llava

    return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


def test_hf_vlm_batched_generation_equals_one_by_one_and_direct_generate(tiny_llava):
    import torch
    from PIL import Image

    from vlaeval.adapters.hf_vlm import HFVisionLanguageModel

    adapter = HFVisionLanguageModel(model=str(tiny_llava), batch_size=4, max_new_tokens=6)
    requests = [
        TextRequest("Which colour ?", [colour_image("red")], {"max_new_tokens": 6}),
        TextRequest("what is the block colour ? answer", [colour_image("blue", (50, 30))], {"max_new_tokens": 6}),
        TextRequest("is the cup red ?", [colour_image("green")], {"max_new_tokens": 6, "system_prompt": "be brief"}),
        TextRequest("option A or B ?", [colour_image("red", (16, 16))], {"max_new_tokens": 3}),
    ]
    batched = adapter.generate(requests)
    singles = [adapter.generate([r])[0] for r in requests]
    assert batched == singles  # left padding + attention mask: batching does not change greedy answers
    assert all(isinstance(a, str) for a in batched) and any(batched)

    # the same answer as calling the model directly
    text = adapter.processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Which colour ?"}]}],
        add_generation_prompt=True, tokenize=False)
    assert text == "<|user|> <image> Which colour ? <|assistant|>"
    inputs = adapter.processor(text=[text], images=[[Image.fromarray(colour_image("red"))]], return_tensors="pt")
    inputs.pop("token_type_ids", None)
    with torch.inference_mode():
        out = adapter.model.generate(**inputs, max_new_tokens=6, do_sample=False)
    direct = adapter.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()
    assert batched[0] == direct
    assert adapter.render(requests[2]).startswith("<|system|> be brief <|user|> <image>")
    assert adapter.fingerprint().startswith(f"hf-vlm:{tiny_llava}@")
    same = HFVisionLanguageModel(model=str(tiny_llava), batch_size=1, max_new_tokens=6)
    assert same.fingerprint() == adapter.fingerprint()  # batch size does not change answers
    assert HFVisionLanguageModel(model=str(tiny_llava), max_new_tokens=9).fingerprint() != adapter.fingerprint()


def test_hf_vlm_runs_a_suite_through_the_harness(tmp_path, tiny_llava, monkeypatch):
    write_mmstar(tmp_path / "mm" / "MMStar.tsv")
    monkeypatch.setenv("VLAEVAL_MM_DATA", str(tmp_path / "mm"))
    config = load_config(None, {"suite": "mmstar", "model": "hf-vlm", "out": str(tmp_path / "run"),
                                "model_args": {"model": str(tiny_llava), "batch_size": 3},
                                "protocol": {"md5": "off", "max_new_tokens": 4}})
    summary = run_evaluation(config)
    assert summary.planned == 6 and summary.counts.get("error", 0) == 0
    rows = stored(tmp_path / "run")
    assert all(r["model_fingerprint"].startswith("hf-vlm:") for r in rows)
    corpus = registry.suites.create("mmstar").corpus_metrics(rows)
    assert corpus["n"] == 6 and corpus["n_unjudged"] == sum(1 - r["metrics"]["judged"] for r in rows)
    assert 0.0 <= corpus["Overall_exact_matching"] <= 100.0
    assert run_evaluation(config).skipped == 6


# -- OpenAI-compatible endpoint ----------------------------------------------------------------------------

class ColourServer:
    """Answers with the colour name of the first image it gets (decoded from the data URL)."""

    def __init__(self):
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
                content = body["messages"][-1]["content"]
                url = next(p["image_url"]["url"] for p in content if p["type"] == "image_url")
                header, data = url.split(",", 1)
                assert header == "data:image/png;base64"
                from PIL import Image

                pixel = np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))[0, 0]
                name = min(COLOURS, key=lambda c: np.abs(np.array(COLOURS[c]) - pixel).sum())
                answer = "blue" if name == "green" else name  # wrong on green, on purpose
                payload = json.dumps({
                    "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": f"The answer is {answer}"}}],
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_openai_chat_adapter_sends_images_as_data_urls(monkeypatch):
    pytest.importorskip("openai")
    from vlaeval.adapters.openai_chat import OpenAIChatModel

    monkeypatch.setenv("MY_KEY", "sk-test")
    with ColourServer() as server:
        model = OpenAIChatModel(model="vlm-1", base_url=server.url, api_key_env="MY_KEY", concurrency=3,
                                system_prompt="default system")
        requests = [TextRequest("Which colour?", [colour_image(c)], {"max_new_tokens": 7}) for c in COLOURS]
        requests.append(TextRequest("And this?", [colour_image("red")], {"system_prompt": "from the suite"}))
        answers = model.generate(requests)
    assert answers == ["The answer is red", "The answer is blue", "The answer is blue", "The answer is red"]
    assert len(server.requests) == 4
    first = next(r for r in server.requests if r["messages"][-1]["content"][-1]["text"] == "Which colour?")
    assert first["path"] == "/v1/chat/completions" and first["auth"] == "Bearer sk-test"
    assert first["model"] == "vlm-1" and first["temperature"] == 0.0 and first["max_tokens"] == 7
    assert first["messages"][0] == {"role": "system", "content": "default system"}
    assert [p["type"] for p in first["messages"][1]["content"]] == ["image_url", "text"]
    last = next(r for r in server.requests if r["messages"][-1]["content"][-1]["text"] == "And this?")
    assert last["messages"][0]["content"] == "from the suite" and last["max_tokens"] == 512
    url = first["messages"][1]["content"][0]["image_url"]["url"]
    from PIL import Image

    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
    assert decoded.shape == (24, 40, 3)  # lossless PNG: the exact pixels


def test_openai_chat_runs_a_suite_with_exact_scores(tmp_path, monkeypatch):
    pytest.importorskip("openai")
    write_mmstar(tmp_path / "mm" / "MMStar.tsv")
    monkeypatch.setenv("VLAEVAL_MM_DATA", str(tmp_path / "mm"))
    with ColourServer() as server:
        config = load_config(None, {"suite": "mmstar", "model": "openai-chat", "out": str(tmp_path / "run"),
                                    "model_args": {"model": "vlm-1", "base_url": server.url},
                                    "protocol": {"md5": "off"}})
        summary = run_evaluation(config)
    assert summary.counts == {"success": 4, "failure": 2}  # the two green items are answered "blue"
    rows = stored(tmp_path / "run")
    corpus = registry.suites.create("mmstar").corpus_metrics(rows)
    assert corpus["Overall"] == pytest.approx(400 / 6) and corpus["n_unjudged"] == 0
    assert all(r["outputs"]["method"] == "rule" for r in rows)  # "The answer is blue" -> option text "blue"
    assert rows[0]["model_fingerprint"].startswith(f"openai-chat:{server.url}|vlm-1|t=0.0")


def test_hf_vlm_missing_model_is_one_clear_line(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    from vlaeval.adapters.hf_vlm import HFVisionLanguageModel

    with pytest.raises(FileNotFoundError, match=r"^hf-vlm: no Hugging Face model at .*nowhere \(expected"):
        HFVisionLanguageModel(model=str(tmp_path / "nowhere"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(FileNotFoundError, match="not in the local Hugging Face cache and runs do not download"):
        HFVisionLanguageModel(model="someone/some-vlm")
