"""The agent and its update, in TensorFlow: the networks, V-trace and the
other off-policy corrections, the losses, TF1-style RMSProp, the learner's
replicated update step, the trajectory layout and the replay buffer."""
