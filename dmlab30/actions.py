"""The 9-action set of the paper (Table D.2) as DeepMind Lab action vectors.

DeepMind Lab's native action is 7 integers (its `action_spec()` order):
[LOOK_LEFT_RIGHT_PIXELS_PER_FRAME, LOOK_DOWN_UP_PIXELS_PER_FRAME,
STRAFE_LEFT_RIGHT, MOVE_BACK_FORWARD, FIRE, JUMP, CROUCH], and `Lab.step`
requires a 1-D array of dtype `np.intc`.
"""

import numpy as np

ACTION_NAMES: tuple[str, ...] = (
    "forward",
    "backward",
    "strafe_left",
    "strafe_right",
    "look_left",
    "look_right",
    "forward_look_left",
    "forward_look_right",
    "fire",
)

#: int (np.intc) [9, 7]; row `a` is the engine vector of agent action `a`.
ACTION_SET = np.array([
    (0, 0, 0, 1, 0, 0, 0),
    (0, 0, 0, -1, 0, 0, 0),
    (0, 0, -1, 0, 0, 0, 0),
    (0, 0, 1, 0, 0, 0, 0),
    (-20, 0, 0, 0, 0, 0, 0),
    (20, 0, 0, 0, 0, 0, 0),
    (-20, 0, 0, 1, 0, 0, 0),
    (20, 0, 0, 1, 0, 0, 0),
    (0, 0, 0, 0, 1, 0, 0),
], dtype=np.intc)
# Rows are handed to the engine as views; freezing them keeps one actor from
# corrupting the shared table.
ACTION_SET.setflags(write=False)

NUM_ACTIONS = len(ACTION_NAMES)

#: Agent steps per action: each action is held for 4 engine frames
#: (`Lab.step(action, num_steps=4)`), so frames = 4 x agent steps.
NUM_ACTION_REPEATS = 4
