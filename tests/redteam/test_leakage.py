"""No information flows between test samples: inits are fed one at a time in time order, so a
model that hoards every field it was shown can never look up a target; nor can state cross runs."""
from __future__ import annotations

import numpy as np

from bench.evaluate import evaluate
from hostile import PROJECT_ROOT, T2M, hostile, hostile_model, requires_kernel_sandbox, settings_for, unchanged  # noqa: F401 (fixtures)

HOARDER = '''
class Hoarder:
    """Keeps every field it has seen; answers with the true future when it has already seen it."""

    def __init__(self, context):
        self.seen = {}
        self.latest_seen = np.datetime64("1900-01-01")

    def predict(self, inputs, batch):
        for b in range(len(inputs)):
            for k, t in enumerate(batch.input_times[b]):
                self.seen[t] = inputs[b, k]
        if (batch.input_times.max() > batch.init_times.min()):
            raise RuntimeError("LEAK an input later than an init time")
        forecast = np.repeat(inputs[:, -1:], 4, axis=1)
        for b in range(len(inputs)):
            for k, t in enumerate(batch.valid_times[b]):
                if t in self.seen:       # a target already delivered as someone else's input
                    forecast[b, k] = self.seen[t]
        return forecast


def build_model(context):
    return Hoarder(context)
'''


def test_a_model_hoarding_inputs_scores_exactly_as_persistence(hostile, prepared, tmp_path, unchanged):
    submission = hostile("import numpy as np\n" + HOARDER)
    check = unchanged(submission, tmp_path / "untouched")
    settings = settings_for(prepared)
    hoarder, _ = evaluate(submission, T2M, settings, tmp_path / "results")
    persistence, _ = evaluate(PROJECT_ROOT / "baselines" / "persistence", T2M, settings, tmp_path / "results")
    assert hoarder.metrics == persistence.metrics
    check()


@requires_kernel_sandbox
def test_nothing_written_by_one_run_is_readable_by_the_next(hostile, prepared, tmp_path, unchanged):
    stash = '''
import os, tempfile
for path in ("/dev/shm/stash", "/tmp/stash", os.path.expanduser("~/../stash-outside")):
    try:
        with open(path, "w") as handle:
            handle.write("future")
    except OSError:
        pass
    '''
    peek = '''
import os
for path in ("/dev/shm/stash", "/tmp/stash"):
    if os.path.exists(path):
        raise RuntimeError(f"LEAK {path} survived the previous run")
'''
    writer = hostile(hostile_model(build=stash), name="writer")
    check = unchanged(writer, tmp_path / "untouched")
    evaluate(writer, T2M, settings_for(prepared), tmp_path / "results")
    reader = hostile(hostile_model(build=peek), name="reader")
    evaluate(reader, T2M, settings_for(prepared), tmp_path / "results")
    check()
    import os

    assert not os.path.exists("/tmp/stash")
