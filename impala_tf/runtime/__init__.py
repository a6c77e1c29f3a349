"""Processes and hosts: the learner's TF server, the queue and published
weights it hosts, the channels both ends use, process supervision, the
template children are forked from, network isolation, pools of whole runs,
and how TensorFlow starts on this CPU."""
