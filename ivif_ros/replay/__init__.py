"""Replay evaluation: a rosbag2 bag through the fusion pipeline (offline) or the node graph
(live, over DDS) into an output bag, summary.json and report.md. Entry point: ``run.run_replay``."""
