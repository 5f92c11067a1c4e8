"""A tiny local server that speaks enough of the Messages API for the real anthropic SDK:
POST /v1/messages answers with the next scripted reply (a dict, or a function of the request
body returning one) and keeps every request for the test to inspect. Replies can carry what
current models send: thinking and redacted-thinking blocks (with opaque signatures the client
must return unchanged), a ``max_tokens`` stop and a ``pause_turn``."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = dict | Callable[[dict], dict]


def usage(inp: int, out: int, cache_write: int = 0, cache_read: int = 0) -> dict:
    return {"input_tokens": inp, "output_tokens": out,
            "cache_creation_input_tokens": cache_write, "cache_read_input_tokens": cache_read}


_ids = itertools.count(1)


def tool_use(name: str, args: dict, text: str = "", use: dict | None = None) -> dict:
    content = ([{"type": "text", "text": text}] if text else []) + [
        {"type": "tool_use", "id": f"toolu_{next(_ids):04d}", "name": name, "input": args}]
    return message(content, "tool_use", use)


def thinking(text: str) -> dict:
    """A thinking block with a signature the real API would verify when it comes back."""
    return {"type": "thinking", "thinking": text, "signature": f"sig-{next(_ids):04d}-" + "A" * 40}


def redacted(data: str = "") -> dict:
    return {"type": "redacted_thinking", "data": data or f"enc-{next(_ids):04d}-" + "Z" * 40}


def thought_tool_use(name: str, args: dict, thoughts: list[dict],
                     use: dict | None = None) -> dict:
    """Thinking (and/or redacted thinking) first, then the tool call: a current model's turn."""
    return message([*thoughts, {"type": "tool_use", "id": f"toolu_{next(_ids):04d}",
                                "name": name, "input": args}], "tool_use", use)


def end_turn(text: str, use: dict | None = None) -> dict:
    return message([{"type": "text", "text": text}], "end_turn", use)


def message(content: list, stop_reason: str, use: dict | None = None) -> dict:
    return {"id": f"msg_{next(_ids):04d}", "type": "message", "role": "assistant",
            "model": "claude-sonnet-5-5", "content": content, "stop_reason": stop_reason,
            "stop_sequence": None, "usage": use or usage(100, 20)}


class FakeMessagesAPI:
    path = "/v1/messages"

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                api.requests.append(body)
                api.headers.append(dict(self.headers))
                if self.path.rstrip("/") != api.path or not api.script:
                    self._send(500, {"type": "error", "error": {
                        "type": "api_error", "message": f"unscripted call to {self.path}"}})
                    return
                reply = api.script.pop(0)
                self._send(200, reply(body) if callable(reply) else reply)

            def _send(self, status: int, data: dict) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class FakeChatCompletionsAPI(FakeMessagesAPI):
    """The same server speaking OpenAI's Chat Completions (what Ollama and llama.cpp's
    llama-server offer at /v1/chat/completions), for the real ``openai`` client."""

    path = "/v1/chat/completions"


def chat_tool_call(name: str, args: dict | str, text: str = "", prompt: int = 100,
                   completion: int = 20, cached: int = 0) -> dict:
    arguments = args if isinstance(args, str) else json.dumps(args)
    return chat_message({"role": "assistant", "content": text or None, "tool_calls": [
        {"id": f"call_{next(_ids):04d}", "type": "function",
         "function": {"name": name, "arguments": arguments}}]}, "tool_calls", prompt,
        completion, cached)


def chat_message(msg: dict, finish: str, prompt: int = 100, completion: int = 20,
                 cached: int = 0) -> dict:
    return {"id": f"chatcmpl-{next(_ids):04d}", "object": "chat.completion", "created": 0,
            "model": "qwen3:8b", "choices": [{"index": 0, "message": msg,
                                              "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion,
                      "prompt_tokens_details": {"cached_tokens": cached}}}
