"""The actor's side of central inference: a policy evaluated by the
inference server (`server.InferenceServer`), with `acting.actor.LocalPolicy`'s
interface, so the actor and its trajectories are the same in both modes."""

from __future__ import annotations

from typing import Optional

import numpy as np
import sonnet as snt

from impala_tf.acting import actor as actor_lib
from impala_tf.agent import networks
from impala_tf.inference import server as server_lib


class RemotePolicy:
  """The policy of a group of environments, evaluated by the server.

  The server holds the environments' core states: `act` returns None as
  the new state, and the state before a step only when asked
  (`want_state_before`, the actor's last step of an unroll: the next
  unroll's initial state). A state passed in (not None) is acted from
  instead of the server's (an unroll's first step acted again).

  Args:
    connection: a `transport.LocalConnection` or `SocketConnection`.
    slots: int32 `[n]`, the server's slots of these environments
      (`server.slots_of`).
    use_lstm, use_instruction: the experiment's network.
  """

  network = None  # No copy of the network here.

  def __init__(self, connection, slots: np.ndarray, use_lstm: bool,
               use_instruction: bool):
    self.connection = connection
    self.slots = np.asarray(slots, np.int32)
    self.use_lstm = use_lstm
    self.use_instruction = use_instruction
    # The weights version of the last reply.
    self.version: Optional[int] = None

  def initial_state(self, batch_size: int):
    if not self.use_lstm:
      return ()
    zeros = np.zeros((batch_size, networks.CORE_SIZE), np.float32)
    return snt.LSTMState(hidden=zeros, cell=zeros.copy())

  def _call(self, kind, arrays, observation, state, channels_first=False,
            want_state=False):
    arrays = dict(arrays)
    arrays.update({f"obs/{k}": v for k, v in observation.items()})
    if state is not None and self.use_lstm:
      arrays.update(state_h=np.asarray(state.hidden, np.float32),
                    state_c=np.asarray(state.cell, np.float32))
    request = server_lib.Request(kind=kind, slots=self.slots, arrays=arrays,
                                 reply=None, channels_first=channels_first,
                                 want_state=want_state)
    meta, result = self.connection.call(request)
    self.version = meta.get("version")
    return result

  def act(self, prev_action, reward, done, observation, state, noise,
          want_state_before=False):
    """(action, logits, None, state before the step or None)."""
    observation, channels_first = actor_lib.frames_as_stored(observation)
    result = self._call(
        "act", dict(prev_action=np.asarray(prev_action, np.int32),
                    reward=np.asarray(reward, np.float32),
                    done=np.asarray(done, bool),
                    noise=np.asarray(noise, np.float32)),
        observation, state, channels_first, want_state_before)
    before = None
    if want_state_before:
      before = (snt.LSTMState(hidden=np.array(result["state_h"]),
                              cell=np.array(result["state_c"]))
                if self.use_lstm else ())
    return (np.array(result["action"]), np.array(result["logits"]), None,
            before)

  def value(self, prev_action, reward, observation, state) -> np.ndarray:
    result = self._call(
        "value", dict(prev_action=np.asarray(prev_action, np.int32),
                      reward=np.asarray(reward, np.float32)),
        {k: np.ascontiguousarray(v) for k, v in observation.items()}, state)
    return np.array(result["value"])
