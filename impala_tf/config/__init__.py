"""What a run is, without TensorFlow: the paper's presets, the experiment
(suite, levels, config, specs), the run plan resolved from the launcher's
flags, and the errors that end a run with one line."""
