"""Fit this codec's EOFs on the train split: python baselines/eof32_codec/fit.py --data PREPARED_DIR."""
from pathlib import Path

from bench.reference_codecs import fit_eof_main

if __name__ == "__main__":
    fit_eof_main(k=32, weights_dir=Path(__file__).parent / "weights",
                 tasks=["era5-64x32-12to4-t2m", "era5-64x32-12to4-multivar"])
