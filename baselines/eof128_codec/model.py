"""Reference codec: 128 EOFs per channel (bench.reference_codecs), fitted by fit.py into weights/."""
from pathlib import Path

from bench.reference_codecs import EofCodec
from bench.submission import SubmissionContext


def build_codec(context: SubmissionContext) -> EofCodec:
    return EofCodec(context, k=128, weights_dir=Path(__file__).parent / "weights")
