"""impala_tf: a TensorFlow 2 reimplementation of IMPALA (Espeholt et al., 2018)."""

import setuptools

setuptools.setup(
    name="impala_tf",
    version="0.1.0",
    description=(
        "IMPALA (importance weighted actor-learner architecture) with V-trace "
        "in TensorFlow 2, with the Atari-57 and DMLab-30 suites."
    ),
    python_requires=">=3.10",
    # launch/ (cluster scripts and TF_CONFIG examples) stays in the
    # repository; nothing imports it.
    packages=setuptools.find_packages(
        include=["impala_tf", "impala_tf.*", "atari57", "atari57.*",
                 "dmlab30", "dmlab30.*"]),
    install_requires=[
        "tensorflow>=2.16,<2.22",
        # The [tf] extra pulls tf-keras, without which tfp does not import.
        "tensorflow-probability[tf]>=0.24,<0.26",
        "dm-sonnet>=2.0.2",
        "dm-env>=1.6",
        "ale-py>=0.12,<0.13",
        "gymnasium>=1.0",
        "tensorboard",  # tf.summary needs it; TF 2.21 no longer pulls it in.
        "absl-py",
        "numpy",
    ],
    extras_require={
        # The plot command's tests draw with matplotlib.
        # ... and the evaluation's videos with imageio.
        # pytest-xdist: the suite runs in two workers (pytest.ini).
        "test": ["pytest>=8", "pytest-xdist>=3.2", "matplotlib",
                 "kubernetes-validate", "pyyaml", "imageio", "imageio-ffmpeg"],
        "plot": ["matplotlib"],
        # `python -m impala_tf.evaluate --video=N`: MP4 files.
        "video": ["imageio", "imageio-ffmpeg"],
    },
)
