"""Reference codec: 4x4 block-mean coarsening, bilinear decoding (bench.reference_codecs)."""
from bench.reference_codecs import CoarsenCodec
from bench.submission import SubmissionContext


def build_codec(context: SubmissionContext) -> CoarsenCodec:
    return CoarsenCodec(context, factor=4)
