r"""Population-based training as the paper ran it (App. F).

  python -m impala_tf.pbt --population=4 --concurrent=2 --workdir=DIR \
      [any python -m impala_tf.launch flag]

Members are ordinary runs (`DIR/member-<i>`, each `python -m
impala_tf.launch --pbt_dir=DIR --member=<i>`), so a member started by hand on
another host with those two flags joins the same population. All
coordination goes through files under DIR read and written with
`tf.io.gfile` (a local disk, NFS or a `gs://` bucket; no other service):

* `rules.py`: Table D.1's initial sampling, the ready / exploit / explore
  rules and the fitness, as pure functions;
* `store.py`: the files (each member's latest fitness, hyperparameters and
  a checkpoint to copy; one file per lineage event);
* `member.py`: the learner-loop part a member runs (`--pbt_dir`);
* `population.py`: the command above, which starts the members and lets
  them take turns when `--concurrent` < `--population`;
* `lineage.py`: the population's curves and the best member's curve traced
  back through the members it copied (`python -m impala_tf.plot --pbt DIR`).
"""
