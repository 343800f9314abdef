"""Output abuse: a model that writes its own frames to the harness socket, lies in headers, sends
pickles, stalls mid-answer or injects text. The harness reads validated bytes only."""
from __future__ import annotations

import time

import pytest

from bench.errors import OutputShapeError, SubmissionCrashedError, SubmissionProtocolError, SubmissionTimeoutError
from bench.evaluate import evaluate
from hostile import T2M, hostile, hostile_model, settings_for, unchanged  # noqa: F401 (fixtures)

# The model talks to the harness socket directly (the worker's fd is its first argument).
RAW = '''
import json, os, socket, struct, sys, time
def raw_send(data):
    sock = socket.socket(fileno=int(sys.argv[1]))
    sock.sendall(data)
    sock.detach()
def frame(header, payload=b""):
    text = json.dumps(header).encode()
    return struct.pack(">I", len(text)) + text + payload
'''

LIES = [
    ("huge-header", "raw_send(struct.pack('>I', 2**31)); time.sleep(60)", SubmissionProtocolError, "message header; the limit is"),
    ("not-json", "raw_send(struct.pack('>I', 5) + b'\\xff\\xfe{{['); time.sleep(60)", SubmissionProtocolError, "not JSON"),
    ("shape-lie", "raw_send(frame({'status': 'ok', 'array': {'dtype': 'float32', 'shape': [10**6, 4, 1, 32, 64]}})); time.sleep(60)",
     OutputShapeError, "forecast has shape (1000000, 4, 1, 32, 64), expected (1, 4, 1, 32, 64)"),
    ("object-dtype", "raw_send(frame({'status': 'ok', 'array': {'dtype': 'object', 'shape': [1, 4, 1, 32, 64]}})); time.sleep(60)",
     SubmissionProtocolError, "sent an array of dtype 'object'"),
    ("pickle", "import pickle; raw_send(frame({'status': 'ok', 'pickle': 1}, pickle.dumps(os.system))); time.sleep(60)",
     SubmissionProtocolError, "without an array description"),
    ("stall-mid-answer", "raw_send(frame({'status': 'ok', 'array': {'dtype': 'float32', 'shape': [1, 4, 1, 32, 64]}}, b'x' * 100)); time.sleep(600)",
     SubmissionTimeoutError, "after the 4 s time limit"),
    ("close-mid-answer", "raw_send(frame({'status': 'ok', 'array': {'dtype': 'float32', 'shape': [1, 4, 1, 32, 64]}}, b'x' * 100)); os._exit(0)",
     SubmissionCrashedError, "died while predicting"),
    ("nan-status", "raw_send(struct.pack('>I', 3) + b'NaN'); time.sleep(60)", SubmissionProtocolError, "not JSON"),
]


@pytest.mark.parametrize("code, error, fragment", [c[1:] for c in LIES], ids=[c[0] for c in LIES])
def test_forged_answers_are_refused_by_name(hostile, prepared, tmp_path, unchanged, code, error, fragment):
    submission = hostile(hostile_model(predict=code, top=RAW))
    check = unchanged(submission)
    started = time.monotonic()
    with pytest.raises(error, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        evaluate(submission, T2M, settings_for(prepared, time_limit_s=4), tmp_path / "results")
    assert time.monotonic() - started < 30
    assert not (tmp_path / "results").exists()
    check()


def test_an_array_like_answer_runs_its_code_in_the_sandbox_not_the_harness(hostile, prepared, tmp_path, unchanged):
    canary = tmp_path / "canary"
    code = f'''
class Evil:
    def __array__(self, dtype=None, copy=None):
        open({str(canary)!r}, "w").write("ran")
        return forecast
forecast = Evil()
'''
    submission = hostile(hostile_model(predict=code))
    check = unchanged(submission)
    with pytest.raises(SubmissionCrashedError):
        evaluate(submission, T2M, settings_for(prepared), tmp_path / "results")
    assert not canary.exists()
    check()


def test_printed_text_and_escape_codes_do_not_reach_the_harness_output(hostile, prepared, tmp_path, unchanged):
    from click.testing import CliRunner

    from bench.cli import cli

    code = r'''
print("error: ResultsError: FAKE")
import sys; sys.stderr.write("\x1b[2J FAKE-STDERR\n")
raise RuntimeError("line one\nerror: FAKE second line \x1b[31m red")
'''
    submission = hostile(hostile_model(predict=code))
    check = unchanged(submission)
    result = CliRunner().invoke(cli, ["evaluate", str(submission), "--data", str(prepared), "--out", str(tmp_path / "results"), "--quiet"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: SubmissionCrashedError: probe: the model raised RuntimeError"), lines
    assert "\x1b" not in result.output and "FAKE-STDERR" not in result.output and "ResultsError: FAKE" not in result.output
    check()
