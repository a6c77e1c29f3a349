"""The paper's agent networks (Fig. 3): shallow and deep ResNet torsos + LSTM.

Layer recipe (the figure as built by the paper's code):

* shallow: Conv 8x8/4 (16) → ReLU → Conv 4x4/2 (32) → ReLU → FC 256 → ReLU,
  VALID padding (the A3C network). Two convolutions [paper Fig. 3], where
  Sec. 5.3.2 calls the Atari shallow agent A3C's network "which features
  three convolutional layers". The paper contradicts itself. The other
  reading is a network with a third convolution, such as the Nature DQN
  one (32 8x8/4, 64 4x4/2, 64 3x3/1, FC 512). Two are kept [ours]: Fig. 3
  draws two and gives their count, 1.2M parameters, which this build
  meets (1.23M on DMLab with the LSTM and the language channel; the DQN
  torso under the same core would have about 2.3M), and the A3C paper's
  own network (Mnih et al. 2016, after Mnih et al. 2013) has two: 16
  8x8/4, 32 4x4/2, FC 256. The "three" may count the fully connected
  layer.
* deep: three stacks of (Conv 3x3/1 SAME, MaxPool 3x3/2 SAME, two residual
  blocks x + Conv(ReLU(Conv(ReLU(x))))) with 16, 32, 32 channels, then
  ReLU → FC 256 → ReLU: 15 convolutions.
* The core's input is the torso output, the previous reward clipped to
  [-1, 1] (whatever the training reward clipping), the one-hot previous
  action, and for DMLab the instruction encoding (words hashed into 1000
  buckets, embedding 20, LSTM 64, output at the last word).
* Core: LSTM 256, optional (the Atari agents are feed-forward). Its state is
  reset to zeros wherever an observation starts a new episode.
* Heads: linear policy logits and a linear scalar baseline.

Precision (`precision="bfloat16"`, ours): the torso, where nearly all the
arithmetic is, computes in bfloat16 (its input and its float32 variables
cast where they are used; its output cast back); the
instruction encoder, the core and the heads compute in float32, so the
logits used for importance weights, the baseline and the gradients
reaching the float32 variables are float32. "float32" runs the torso as
written.

Shapes: `B` is the batch, `T` the number of time steps (time-major).
"""

import collections
from typing import Any, Mapping, Optional, Sequence

import sonnet as snt
import tensorflow as tf

from impala_tf.config import presets

INSTRUCTION_BUCKETS = 1000
INSTRUCTION_EMBEDDING_SIZE = 20
INSTRUCTION_LSTM_SIZE = 64
TORSO_OUTPUT_SIZE = 256
CORE_SIZE = 256

TORSOS = presets.TORSOS
PRECISIONS = presets.PRECISIONS


# [ours] Pixels to [0, 1] in the torso's dtype as one XLA kernel: the
# cast, the scaling, the rounding to bfloat16 if the torso computes in it,
# and for channels-first frames the transpose to channels-last, in one pass
# over the bytes. As separate TF ops they took a third of an actor's
# batch-16 shallow policy step (docs/benchmarks.md). The result is the
# float32 of TF's own graph bit for bit (and that rounded to bfloat16).
@tf.function(jit_compile=True)
def _scaled_frames(frames, dtype=tf.float32):
  return tf.cast(tf.cast(frames, tf.float32) / 255.0, dtype)


@tf.function(jit_compile=True)
def _scaled_frames_from_channels_first(frames, dtype=tf.float32):
  return _scaled_frames(tf.transpose(frames, [0, 2, 3, 1]), dtype)


def _as_floats(values, dtype=tf.float32):
  return tf.cast(values, dtype)


def _apply(layer, x):
  """`layer` (a built `snt.Conv2D` or `snt.Linear`) on `x`, computed in
  `x`'s dtype: float32 is the layer's own call; otherwise its float32
  variables are cast to that dtype where they are used. Weights read as
  several agents' stacked (`reading`) go to `_apply_stacked`."""
  w = getattr(layer, "w", None)  # None until the first call builds it.
  if w is not None and w.shape.rank == (
      3 if isinstance(layer, snt.Linear) else 5):
    return _apply_stacked(layer, x)
  if x.dtype == tf.float32:
    return layer(x)
  w = tf.cast(layer.w, x.dtype)
  if isinstance(layer, snt.Linear):
    y = tf.matmul(x, w)
  elif layer.padding_func is None:
    y = tf.nn.convolution(x, w, strides=layer.stride,
                          padding=layer.conv_padding, dilations=layer.rate,
                          data_format=layer.data_format)
  else:
    raise ValueError(f"{layer.name}: padding functions are not supported "
                     "below float32.")
  return tf.nn.bias_add(y, tf.cast(layer.b, x.dtype)) if layer.with_bias else y


def _apply_stacked(layer, x):
  """`layer` with its weights stacked over agents (`[agents, ...]`, read
  through `reading`) on `x` `[N·agents, ...]` whose rows alternate over
  the agents (row r is agent `r % agents`'s): every agent's layer on its
  own rows in one kernel, a batched matrix product for a linear layer and
  a grouped convolution (one group per agent) for a convolution."""
  w = tf.cast(layer.w, x.dtype)
  agents, out = w.shape[0], w.shape[-1]
  if isinstance(layer, snt.Linear):
    y = tf.einsum("nai,aio->nao", tf.reshape(x, [-1, agents, w.shape[1]]), w)
  else:
    if layer.padding_func is not None or layer.data_format != "NHWC":
      raise ValueError(f"{layer.name}: stacked weights take NHWC "
                       "convolutions with a padding string.")
    channels = w.shape[3]
    size = tf.shape(x)[1:3]
    grouped = tf.reshape(
        tf.transpose(tf.reshape(x, tf.concat([[-1, agents], size,
                                              [channels]], 0)),
                     [0, 2, 3, 1, 4]),
        tf.concat([[-1], size, [agents * channels]], 0))
    filters = tf.reshape(tf.transpose(w, [1, 2, 3, 0, 4]),
                         [*w.shape[1:3], channels, agents * out])
    y = tf.nn.convolution(grouped, filters, strides=layer.stride,
                          padding=layer.conv_padding, dilations=layer.rate)
    size = tf.shape(y)[1:3]
    y = tf.transpose(tf.reshape(y, tf.concat([[-1], size, [agents, out]], 0)),
                     [0, 3, 1, 2, 4])
  if layer.with_bias:
    b = tf.cast(layer.b, x.dtype)
    y += tf.reshape(b, [agents] + [1] * (y.shape.rank - 3) + [out])
  return tf.reshape(y, tf.concat([[-1], tf.shape(y)[2:]], 0))


AgentInput = collections.namedtuple(
    "AgentInput", ["prev_action", "reward", "done", "observation"])
AgentInput.__doc__ = """Network input at one step (or `[T, B]` when unrolled).

prev_action: int32 `[B]`, the action taken before this observation.
reward: float32 `[B]`, raw reward received on arriving here.
done: bool `[B]`, this observation starts a new episode.
observation: dict with "frame" uint8 `[B, H, W, C]` and, for DMLab,
  "instruction" int32 `[B, L]` (0 = padding).
"""

AgentOutput = collections.namedtuple("AgentOutput",
                                     ["policy_logits", "baseline"])


class _ShallowTorso(snt.Module):
  """The A3C network: two convolutions and a fully connected layer
  [paper Fig. 3; Sec. 5.3.2's "three" is the other reading, module
  docstring]."""

  def __init__(self):
    super().__init__(name="shallow_torso")
    self._conv1 = snt.Conv2D(16, 8, stride=4, padding="VALID")
    self._conv2 = snt.Conv2D(32, 4, stride=2, padding="VALID")
    self._linear = snt.Linear(TORSO_OUTPUT_SIZE)

  def __call__(self, frames):
    x = tf.nn.relu(_apply(self._conv1, frames))
    x = tf.nn.relu(_apply(self._conv2, x))
    return tf.nn.relu(_apply(self._linear, snt.Flatten()(x)))


class _MlpTorso(snt.Module):
  """Fully connected layers with ReLUs, for flat vector observations
  (`--torso=mlp`, ours: the paper's agents see images)."""

  def __init__(self, sizes: Sequence[int]):
    super().__init__(name="mlp_torso")
    if not sizes or min(sizes) < 1:
      raise ValueError(f"The MLP torso needs at least one layer of at least "
                       f"one unit, got sizes {list(sizes)}.")
    self._layers = [snt.Linear(size) for size in sizes]

  def __call__(self, vectors):
    x = snt.Flatten()(vectors)
    for layer in self._layers:
      x = tf.nn.relu(_apply(layer, x))
    return x


class _ResidualBlock(snt.Module):

  def __init__(self, channels, name):
    super().__init__(name=name)
    self._conv1 = snt.Conv2D(channels, 3, padding="SAME")
    self._conv2 = snt.Conv2D(channels, 3, padding="SAME")

  def __call__(self, x):
    return x + _apply(self._conv2,
                      tf.nn.relu(_apply(self._conv1, tf.nn.relu(x))))


class _DeepTorso(snt.Module):
  """The 15-convolution residual network of the paper's Fig. 3."""

  def __init__(self, channels=(16, 32, 32)):
    super().__init__(name="deep_torso")
    self._stacks = []
    for i, c in enumerate(channels):
      self._stacks.append((
          snt.Conv2D(c, 3, padding="SAME", name=f"stack_{i}_conv"),
          _ResidualBlock(c, name=f"stack_{i}_res_0"),
          _ResidualBlock(c, name=f"stack_{i}_res_1"),
      ))
    self._linear = snt.Linear(TORSO_OUTPUT_SIZE)

  def __call__(self, frames):
    x = frames
    for conv, res0, res1 in self._stacks:
      x = _apply(conv, x)
      x = tf.nn.max_pool2d(x, ksize=3, strides=2, padding="SAME")
      x = res1(res0(x))
    x = tf.nn.relu(x)
    return tf.nn.relu(_apply(self._linear, snt.Flatten()(x)))


class InstructionEncoder(snt.Module):
  """Embeds hashed word ids and reads them with an LSTM (DMLab language).

  Input int32 `[N, L]` with 0 as padding; output float32 `[N, 64]`, the LSTM
  output at the last word (zeros for an empty instruction).
  """

  def __init__(self):
    super().__init__(name="instruction_encoder")
    # Row 0 is the padding id; words use rows 1..INSTRUCTION_BUCKETS.
    self._embed = snt.Embed(vocab_size=INSTRUCTION_BUCKETS + 1,
                            embed_dim=INSTRUCTION_EMBEDDING_SIZE)
    self._lstm = snt.LSTM(INSTRUCTION_LSTM_SIZE)

  def __call__(self, tokens):
    tokens = tf.convert_to_tensor(tokens, tf.int32)
    lengths = tf.reduce_sum(tf.cast(tokens > 0, tf.int32), axis=1)
    embedded = self._embed(tokens)  # [N, L, E]
    outputs, _ = snt.static_unroll(
        self._lstm, tf.transpose(embedded, [1, 0, 2]),
        self._lstm.initial_state(tf.shape(tokens)[0]))  # [L, N, H]
    outputs = tf.transpose(outputs, [1, 0, 2])  # [N, L, H]
    last = tf.gather(outputs, tf.maximum(lengths - 1, 0), batch_dims=1)
    return last * tf.cast(lengths > 0, last.dtype)[:, tf.newaxis]


class ImpalaNetwork(snt.Module):
  """Policy and baseline network with an optional LSTM core.

  Args:
    num_actions: size of the action set.
    torso: "shallow" or "deep" (images), or "mlp" (flat vectors).
    use_lstm: whether the core is an LSTM (False: feed-forward).
    use_instruction: whether the observation has an "instruction".
    precision: the torso's compute dtype, "float32" or "bfloat16" (module
      docstring).
    mlp_sizes: the MLP torso's hidden layers.
  """

  def __init__(self, num_actions: int, torso: str = "shallow",
               use_lstm: bool = True, use_instruction: bool = False,
               name: Optional[str] = None, precision: str = "float32",
               mlp_sizes: Sequence[int] = (64, 64)):
    super().__init__(name=name or f"impala_{torso}")
    if torso not in TORSOS:
      raise ValueError(f"Unknown torso {torso!r}; expected one of {TORSOS}.")
    if precision not in PRECISIONS:
      raise ValueError(f"Unknown precision {precision!r}; expected one of "
                       f"{PRECISIONS}.")
    self.precision = precision
    self._torso_built = False
    if num_actions < 1:
      raise ValueError(f"num_actions must be positive, got {num_actions}.")
    self.num_actions = num_actions
    self.use_lstm = use_lstm
    self.use_instruction = use_instruction
    self._torso = {"shallow": _ShallowTorso, "deep": _DeepTorso,
                   "mlp": lambda: _MlpTorso(mlp_sizes)}[torso]()
    self._instruction = InstructionEncoder() if use_instruction else None
    self._core = snt.LSTM(CORE_SIZE) if use_lstm else None
    self._policy = snt.Linear(num_actions, name="policy_logits")
    self._baseline = snt.Linear(1, name="baseline")

  def initial_state(self, batch_size) -> Any:
    """The core state at an episode start: an `snt.LSTMState` or ()."""
    if self._core is None:
      return ()
    return self._core.initial_state(batch_size)

  def __call__(self, inputs: AgentInput, state,
               frames_channels_first: bool = False):
    """One step: inputs `[B, ...]` → (`AgentOutput` `[B, ...]`, new state).

    `frames_channels_first`: the frames come as `[B, C, H, W]` (an
    environment's own memory layout, e.g. ale-py's), transposed here in the
    same pass that scales them.
    """
    expanded = tf.nest.map_structure(lambda x: tf.expand_dims(x, 0), inputs)
    outputs, state = self.unroll(expanded, state, frames_channels_first)
    return tf.nest.map_structure(lambda x: x[0], outputs), state

  def unroll(self, inputs: AgentInput, state,
             frames_channels_first: bool = False):
    """Time-major unroll: inputs `[T, B, ...]` → (`AgentOutput` `[T, B, ...]`,
    final state). The core state is reset where `inputs.done` is True.
    `frames_channels_first`: frames `[T, B, C, H, W]` (see `__call__`)."""
    observation: Mapping[str, tf.Tensor] = inputs.observation
    frames = tf.convert_to_tensor(observation["frame"])
    time_batch = tf.shape(frames)[:2]
    # The convolutions see all T*B frames at once (the paper folds time into
    # the batch); only the LSTM runs sequentially.
    folded = tf.reshape(frames, tf.concat([[-1], tf.shape(frames)[2:]], 0))
    scale = (_scaled_frames_from_channels_first if frames_channels_first
             else _scaled_frames if frames.dtype == tf.uint8
             else _as_floats)  # Vectors (the MLP torso) go in as they are.
    torso_out = self._run_torso(folded, scale)

    features = [
        torso_out,
        tf.reshape(tf.clip_by_value(
            tf.cast(inputs.reward, tf.float32), -1.0, 1.0), [-1, 1]),
        tf.one_hot(tf.reshape(inputs.prev_action, [-1]), self.num_actions),
    ]
    if self._instruction is not None:
      tokens = tf.convert_to_tensor(observation["instruction"], tf.int32)
      features.append(self._instruction(
          tf.reshape(tokens, [-1, tf.shape(tokens)[-1]])))
    features = tf.concat(features, axis=1)  # [T*B, F]

    if self._core is not None:
      features = tf.reshape(
          features, tf.concat([time_batch, [features.shape[-1]]], 0))
      done = tf.convert_to_tensor(inputs.done)
      core_out, state = self._unroll_core(features, done, state)
      features = tf.reshape(core_out, [-1, CORE_SIZE])

    logits = _apply(self._policy, features)
    baseline = tf.squeeze(_apply(self._baseline, features), axis=-1)
    outputs = AgentOutput(
        policy_logits=tf.reshape(
            logits, tf.concat([time_batch, [self.num_actions]], 0)),
        baseline=tf.reshape(baseline, time_batch))
    return outputs, state

  def _run_torso(self, frames, scale):
    """The torso on `frames` (pixels), scaled to [0, 1] by `scale` in this
    network's precision; float32 out."""
    if self.precision == "float32" or not self._torso_built:
      # The first call creates the variables, in float32.
      self._torso_built = True
      if self.precision == "float32":
        return self._torso(scale(frames))
      self._torso(scale(frames))
    low = scale(frames, tf.as_dtype(self.precision))
    return tf.cast(self._torso(low), tf.float32)

  def _unroll_core(self, features, done, state):
    """LSTM over `[T, B, F]`, zeroing the state where an episode starts."""

    def step(carry, elems):
      _, prev_state = carry
      x_t, done_t = elems
      keep = 1.0 - tf.cast(done_t, tf.float32)[:, tf.newaxis]
      prev_state = tf.nest.map_structure(lambda s: s * keep, prev_state)
      return _core_step(self._core, x_t, prev_state)

    batch_size = tf.shape(features)[1]
    outputs, states = tf.scan(
        step, (features, done),
        initializer=(tf.zeros([batch_size, CORE_SIZE]), state))
    final_state = tf.nest.map_structure(lambda s: s[-1], states)
    return outputs, final_state


def _core_step(core: snt.LSTM, x, state):
  """One step of `core` on `x` `[B, F]`; with its weights stacked over
  agents (`reading`, rows alternating as in `_apply_stacked`), Sonnet's
  LSTM step (`snt.LSTM`, no projection) for every agent's rows with its
  own weights."""
  w_i = getattr(core, "input_to_hidden", None)  # None until first built.
  if w_i is None or w_i.shape.rank == 2:
    return core(x, state)
  agents = w_i.shape[0]
  per_agent = lambda t: tf.reshape(t, [-1, agents, t.shape[-1]])
  gates = (tf.einsum("naf,afg->nag", per_agent(x), w_i) +
           tf.einsum("nah,ahg->nag", per_agent(state.hidden),
                     core.hidden_to_hidden) + core.b)
  i, f, g, o = tf.split(tf.reshape(gates, [-1, gates.shape[-1]]), 4, axis=1)
  cell = tf.sigmoid(f) * state.cell + tf.sigmoid(i) * tf.tanh(g)
  hidden = tf.sigmoid(o) * tf.tanh(cell)
  return hidden, snt.LSTMState(hidden=hidden, cell=cell)


def reading(network: snt.Module, weights: Sequence[tf.Tensor]):
  """A context in which `network` reads `weights` (tensors, in the order
  of its `trainable_variables`) wherever it reads its own variables: a
  network called with other weights, e.g. one agent's slice of weights
  stacked over agents (benchmarks/vectorised_agents.py). A gradient with
  respect to `weights` needs them watched (`Learner._part_gradients` does).
  """
  position = {v.ref(): i for i, v in enumerate(network.trainable_variables)}
  return snt.custom_variable_getter(
      lambda variable: weights[position[variable.ref()]],
      instances=[network, *network.submodules])


def dummy_input(observation_spec: Mapping[str, tuple], batch_size: int = 1,
                num_steps: Optional[int] = None) -> AgentInput:
  """Zeros shaped like one step (or `num_steps` steps) of agent input.

  `observation_spec` maps observation names to (shape, dtype) per environment,
  as `envs.BatchedEnv.observation_spec` does.
  """
  lead = [batch_size] if num_steps is None else [num_steps, batch_size]
  observation = {name: tf.zeros(lead + list(shape), dtype=tf.as_dtype(dtype))
                 for name, (shape, dtype) in observation_spec.items()}
  return AgentInput(prev_action=tf.zeros(lead, tf.int32),
                    reward=tf.zeros(lead, tf.float32),
                    done=tf.zeros(lead, tf.bool), observation=observation)
