"""`python -m impala_tf.pbt`: see population.py."""

from impala_tf.pbt import population

if __name__ == "__main__":
  population.run()
