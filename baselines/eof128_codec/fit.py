"""Fit this codec's EOFs on the train split: python baselines/eof128_codec/fit.py --data PREPARED_DIR."""
import argparse
from pathlib import Path

from bench.reference_codecs import fit_eof_weights

TASKS = ["era5-64x32-12to4-t2m", "era5-64x32-12to4-multivar"]

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, type=Path, help="prepared data directory (bench data prepare)")
    args = parser.parse_args()
    meta = fit_eof_weights(args.data, Path(__file__).parent / "weights", k=128, tasks=TASKS)
    for channel, info in meta["channels"].items():
        print(f"{channel}: {info['explained_variance']:.5f} of the train-split variance in 128 EOFs")
