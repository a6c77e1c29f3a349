"""Acting: the batched-environment contract, the actor that cuts experience
into trajectories, and the actor's main loop."""
