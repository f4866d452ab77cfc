"""The published leaderboard: its schema, the publish/merge step and the static page."""

from leakbench.leaderboard.publish import collect, load_leaderboard, publish
from leakbench.leaderboard.schema import SCHEMA_VERSION, Entry, Leaderboard, json_schema

__all__ = ["SCHEMA_VERSION", "Entry", "Leaderboard", "collect", "json_schema", "load_leaderboard", "publish"]
