"""What a run leaves behind and what reads it: the run directory and its
lock, the learning curves in its summaries, the exported policy and its
evaluation."""
