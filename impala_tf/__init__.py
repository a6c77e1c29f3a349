"""impala_tf: IMPALA (Espeholt et al., 2018) in TensorFlow 2.

The package root holds the command-line tools (`python -m impala_tf.<tool>`:
launch, ablate, evaluate, export, plot, chaos; `python -m impala_tf.pbt`)
and what they share (`cli`, `launch_flags`); the library is in the
subpackages (docs/architecture.md lists every module).
"""
