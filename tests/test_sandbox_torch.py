"""An honest PyTorch model works inside the sandbox: it imports torch, reads its weights from its
own directory (safetensors), runs a convolution on every core it is given, and scores."""
from __future__ import annotations

import numpy as np
import pytest

from bench.evaluate import EvaluationSettings, evaluate
from bench.sandbox import isolation_plan
from conftest import PROJECT_ROOT

T2M = "era5-64x32-12to4-t2m"
TORCH_MODEL = '''
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file


class ConvPersistence(torch.nn.Module):
    """Persistence plus a zero-initialised convolution of the last input (a residual that is 0)."""

    def __init__(self, context):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.load_state_dict(load_file(Path(context.submission_dir) / "weights" / "weights.safetensors"))
        self.eval()
        self.threads = torch.get_num_threads()

    @torch.no_grad()
    def predict(self, inputs, batch):
        last = torch.from_numpy(inputs[:, -1])                 # (batch, 1, lat, lon)
        residual = self.conv(last - last.mean())                # (batch, 4, lat, lon)
        return (last + residual).unsqueeze(2).numpy()           # (batch, 4, 1, lat, lon)


def build_model(context):
    return ConvPersistence(context)
'''


def test_a_torch_model_with_weights_in_its_directory_scores_in_the_sandbox(make_submission, prepared, tmp_path):
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    submission = make_submission(TORCH_MODEL)
    conv = torch.nn.Conv2d(1, 4, 3, padding=1)
    torch.nn.init.zeros_(conv.weight)
    torch.nn.init.zeros_(conv.bias)
    (submission / "weights").mkdir()
    safetensors_torch.save_file({f"conv.{k}": v for k, v in conv.state_dict().items()}, submission / "weights" / "weights.safetensors")
    settings = EvaluationSettings(data_dir=prepared, progress=False)
    results, _ = evaluate(submission, T2M, settings, tmp_path / "results")
    persistence, _ = evaluate(PROJECT_ROOT / "baselines" / "persistence", T2M, settings, tmp_path / "reference")
    np.testing.assert_allclose(results.metric("2m_temperature", "rmse"), persistence.metric("2m_temperature", "rmse"), rtol=1e-6)
    assert results.submission["parameters"] == 40
    if isolation_plan().full:
        assert results.provenance["isolation"].startswith("landlock")
