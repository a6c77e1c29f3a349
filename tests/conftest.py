"""Test-session set-up shared by every test module."""

import os

# Quiet TF's C++ start-up chatter in test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # pylint: disable=g-import-not-at-top

# Multi-replica code is exercised on CPU: split the one physical CPU into two
# logical devices before TF initialises its devices (it can only be done once,
# before any op runs). Single-device code keeps using CPU:0 as before.
_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
