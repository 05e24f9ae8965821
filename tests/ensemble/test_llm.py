"""The sentiment router's language-model path against a real HTTP server on 127.0.0.1 that speaks the
OpenAI chat-completions protocol, with scripted replies (good, sloppy, broken, failing, slow)."""

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from tests.helpers import market_signals, view
from wealtharena.config import LlmConfig, SentimentConfig, coerce_config
from wealtharena.ensemble.routers.sentiment import SentimentRouter

SECRET = "sk-test-not-a-real-key-4711"


class ChatServer:
    """A chat-completions endpoint: each POST takes the next scripted reply (text, HTTP status, or delay)."""

    def __init__(self, script):
        self.script = list(script)
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802  (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                kind, value = server.script.pop(0) if server.script else ("text", '{"label": "optimistic"}')
                if kind == "sleep":
                    time.sleep(value)
                    kind, value = "text", '{"label": "optimistic", "explanation": "late"}'
                if kind == "status":
                    self.send_response(value)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"error": {"message": "scripted failure"}}')
                    return
                reply = {
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [
                        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": value}}
                    ],
                }
                data = json.dumps(reply).encode() if kind == "text" else value
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(request):
    srv = ChatServer(request.param)
    yield srv
    srv.close()


SCRIPT = [
    ("text", '{"label": "pessimistic", "explanation": "the index fell and volatility is high"}'),
    ("text", "Optimistic. The trend is up."),
    ("text", "I cannot tell."),
    ("raw", b"{not json"),
    ("status", 500),
    ("sleep", 1.5),
    ("text", '{"label": "optimistic", "explanation": "calm"}'),
]


@pytest.mark.parametrize("server", [SCRIPT], indirect=True)
def test_model_labels_and_every_failure_falls_back_to_the_rule_for_that_day(server, monkeypatch, caplog):
    monkeypatch.setenv("WA_TEST_LLM_KEY", SECRET)
    cfg = SentimentConfig(
        llm=LlmConfig(base_url=server.url, model="tiny-labeller", api_key_env="WA_TEST_LLM_KEY", timeout_seconds=0.5)
    )
    capital = {"optimistic": np.array([1.0, 0.0]), "pessimistic": np.array([0.0, 1.0])}
    router = SentimentRouter(cfg, capital, ("aggressive", "cash"))
    signals = market_signals(index_return=0.001, vol=0.1, pct=0.3)  # the rule says optimistic
    caplog.set_level(logging.DEBUG)
    decisions = [router.decide(view(s, np.zeros((2, 3)), np.zeros((s, 2)), signals)) for s in range(10, 17)]
    sources = [d.explanation.split(":")[0] for d in decisions]
    assert [d.label for d in decisions] == [
        "pessimistic",
        "optimistic",
        "optimistic",
        "optimistic",
        "optimistic",
        "optimistic",
        "optimistic",
    ]
    assert decisions[0].capital.tolist() == [0.0, 1.0] and "the index fell" in decisions[0].explanation
    assert sources[:2] == ["model", "model"]
    assert decisions[2].explanation.startswith("rule (fallback: unusable reply: reply names no label")
    assert decisions[3].explanation.startswith("rule (fallback: malformed response")
    assert decisions[4].explanation.startswith("rule (fallback: HTTP 500")
    assert decisions[5].explanation.startswith("rule (fallback: timeout after 0.5 s")
    assert sources[6] == "model" and not router.model.gave_up  # one failure at a time: it goes on
    assert "model fallback to the rule (HTTP 500)" in caplog.text
    # what the model was sent: the same window the rule reads, a key from the environment, never logged
    first = server.requests[0]
    assert first["path"] == "/v1/chat/completions" and first["auth"] == f"Bearer {SECRET}"
    assert first["body"]["model"] == "tiny-labeller" and first["body"]["temperature"] == 0.0
    window = first["body"]["messages"][1]["content"].splitlines()
    assert len(window) == 1 + cfg.window_days and window[-1].startswith(str(signals.dates[10]))
    assert SECRET not in caplog.text and SECRET not in "".join(d.explanation for d in decisions)


@pytest.mark.parametrize("server", [[]], indirect=True)
def test_an_endpoint_that_stops_answering_is_given_up_and_the_rule_goes_on(server, caplog):
    cfg = SentimentConfig(llm=LlmConfig(base_url=server.url, model="m", timeout_seconds=0.5))
    router = SentimentRouter(cfg, {"optimistic": np.array([1.0]), "pessimistic": np.array([1.0])}, ("a",))
    server.close()  # nothing listens any more
    texts = [router.decide(view(s, np.zeros((1, 3)), np.zeros((s, 1)))).explanation for s in range(10, 15)]
    assert all(t.startswith("rule (fallback:") for t in texts)
    assert "connection failed" in texts[0] and router.model.gave_up
    assert "given up after repeated failures" in texts[-1]
    assert "failed 3 times in a row" in caplog.text


@pytest.mark.parametrize(
    "server", [[("text", '{"label": "optimistic", "explanation": "steady"}')] * 2000], indirect=True
)
def test_the_desk_routes_with_the_model_and_warns_when_it_has_read_the_future(
    server, sample_config, sample_data, tmp_path, caplog
):
    from tests.helpers import ProfileRules
    from wealtharena.ensemble.desk import run_desk
    from wealtharena.evaluation.backtest import backtest

    cfg = coerce_config(
        sample_config,
        {
            "ensemble.routers": ["sentiment"],
            "ensemble.sentiment.llm": {
                "base_url": server.url,
                "model": "m",
                "timeout_seconds": 2.0,
                "training_cutoff": "2023-10-01",
            },
        },
    )
    policy = ProfileRules(sample_data, cfg.env.desk_observation)
    bt = backtest(cfg, sample_data, policy, "validation")
    desk = run_desk(cfg, sample_data, policy, "validation", bt, tmp_path / "eval-validation")
    assert any("training cutoff 2023-10-01 is after the validation split's start" in n for n in desk.notes)
    assert "has read about the days it labels" in caplog.text
    lines = [json.loads(x) for x in (tmp_path / "eval-validation" / "routing.jsonl").read_text().splitlines()]
    sentiment = [x for x in lines if x["router"] == "sentiment"]
    assert len(sentiment) == len(desk.dates) - 1 and all(
        x["explanation"].startswith("model: steady") for x in sentiment
    )
    assert len(server.requests) == len(sentiment)
