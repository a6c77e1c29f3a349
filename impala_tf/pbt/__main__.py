"""`python -m impala_tf.pbt`: see population.py (its docstring is the usage)."""

from impala_tf.pbt import population

# absl prints the main module's docstring as the usage.
__doc__ = population.__doc__  # pylint: disable=redefined-builtin

if __name__ == "__main__":
  population.run()
