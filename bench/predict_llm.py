"""Benchmark: `casebench predict text-llm:` on casebench-audio-mini (96 clips) against a chat server that takes
--latency seconds per answer, with requests in flight at once (`concurrency=N`) vs one at a time.

A language model behind an API spends its time waiting for the server, so the obvious alternative (a loop
of one request at a time) is as slow as the server's latency times the clips. Both runs are whole
`casebench.predict.predict` calls (clips read, prompts built, answers read, the file appended) on the same
local server, an OpenAI-compatible chat-completions stand-in on 127.0.0.1 answering after a fixed delay;
a third run adds a client-side rate limit (`rate=R` requests per second) and shows it holds.

Usage: python bench/predict_llm.py [--latency 0.2] [--concurrency 8] [--rate 10]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

from casebench.predict import predict
from casebench.testing import JsonApiHandler


def serve(latency: float) -> tuple[ThreadingHTTPServer, str]:
    class Handler(JsonApiHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            self.read_json()
            time.sleep(latency)
            self.send(200, {"object": "chat.completion", "model": "stand-in", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "Neutral."}, "finish_reason": "stop"}]})

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/v1"


def timed(url: str, options: str, tmp: Path, name: str) -> dict:
    out = tmp / f"{name}.jsonl"
    t = time.perf_counter()
    report = predict(f"text-llm:stand-in@{url}#{options}", "casebench-audio-mini", out, batch_size=16)
    s = time.perf_counter() - t
    return {"options": options, "seconds": round(s, 2), "clips": report["n_predicted"],
            "clips_per_s": round(report["n_predicted"] / s, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rate", type=float, default=10.0)
    args = ap.parse_args()
    httpd, url = serve(args.latency)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            one = timed(url, "concurrency=1", Path(tmp), "one")
            many = timed(url, f"concurrency={args.concurrency}", Path(tmp), "many")
            limited = timed(url, f"concurrency={args.concurrency}&rate={args.rate}", Path(tmp), "limited")
    finally:
        httpd.shutdown()
    print(json.dumps({"machine": platform.machine(), "python": platform.python_version(),
                      "latency_s": args.latency, "one_at_a_time": one, "concurrent": many,
                      "speedup": round(one["seconds"] / many["seconds"], 2),
                      "rate_limited": {**limited, "limit_per_s": args.rate,
                                       "held": limited["clips_per_s"] <= args.rate * 1.05}}, indent=2))


if __name__ == "__main__":
    main()
