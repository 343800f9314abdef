"""The static HTML leaderboard: every results JSON rendered into a self-contained site."""
from bench.leaderboard.site import BuildReport, LeaderboardError, build_site

__all__ = ["BuildReport", "LeaderboardError", "build_site"]
