"""A WeatherBench-style benchmark harness for 12 -> 4 step global forecasting."""
__version__ = "0.2.0"
