"""The optimizer BERT was trained with: Adam with decoupled weight decay, linear warmup and linear decay.

`create_optimizer` assembles the pieces the way pre-training and fine-tuning use them; the pieces
(`learning_rate_schedule`, `build_optimizer`, `apply_clipped_gradients`) are public so that variants of the
training step (for example gradient accumulation) can reuse them without re-deriving the numbers.
"""

import re
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import tensorflow.compat.v1 as tf

# The settings BERT was pre-trained with; fine-tuning keeps them.
WEIGHT_DECAY_RATE = 0.01
EXCLUDE_FROM_WEIGHT_DECAY = ("LayerNorm", "layer_norm", "bias")
ADAM_BETA_1 = 0.9
ADAM_BETA_2 = 0.999
ADAM_EPSILON = 1e-6
GRADIENT_CLIP_NORM = 1.0

Gradient = Union[tf.Tensor, tf.IndexedSlices]


def create_optimizer(loss: tf.Tensor, init_lr: float, num_train_steps: int, num_warmup_steps: Optional[int],
                     use_tpu: bool) -> tf.Operation:
    """Builds the training op: one AdamWeightDecay step on all trainable variables plus a global-step increment.

    Args:
      loss: float32 scalar Tensor to minimise.
      init_lr: learning rate the linear decay starts from (at step 0); warmup climbs towards it.
      num_train_steps: step at which the linearly decaying learning rate reaches 0.
      num_warmup_steps: steps of linear warmup from 0; 0 or None for no warmup.
      use_tpu: whether to sum gradients across TPU shards (CrossShardOptimizer).

    Returns:
      An Operation that increments the global step and updates the variables and their `adam_m`/`adam_v`
      slots with the learning rate of the incremented step.
    """
    tvars = tf.trainable_variables()
    if not tvars:
        raise ValueError("create_optimizer found no trainable variables in the current graph")
    global_step = tf.train.get_or_create_global_step()
    # AdamWeightDecayOptimizer leaves the global step alone, so it is counted here. The original increments it
    # and reads it for the learning rate with no ordering between the two (a race); its reference trajectory
    # came from runs where the increment landed first. Incrementing explicitly first makes that deterministic:
    # the update taken when the global step is t uses the learning rate of step t + 1.
    next_global_step = global_step.assign_add(1)
    learning_rate = learning_rate_schedule(next_global_step, init_lr, num_train_steps, num_warmup_steps)
    optimizer = build_optimizer(learning_rate, use_tpu)
    grads = tf.gradients(loss, tvars)
    apply_op = apply_clipped_gradients(optimizer, grads, tvars)
    return tf.group(apply_op, next_global_step)


def learning_rate_schedule(global_step: Union[tf.Tensor, tf.Variable], init_lr: float, num_train_steps: int,
                           num_warmup_steps: Optional[int]) -> tf.Tensor:
    """The learning rate at `global_step`, as a float32 scalar Tensor.

    After warmup the rate follows `init_lr * (1 - step / num_train_steps)` (0 from `num_train_steps` on); this
    line starts at step 0, so warmup ends below `init_lr`. During warmup the rate is
    `init_lr * step / num_warmup_steps`.

    Args:
      global_step: integer scalar Tensor or Variable, the number of steps taken so far.
      init_lr: learning rate of the decay line at step 0.
      num_train_steps: positive step count at which the rate reaches 0.
      num_warmup_steps: non-negative warmup length; 0 or None for no warmup.
    """
    if num_train_steps is None or num_train_steps <= 0:
        raise ValueError(f"num_train_steps must be positive, got {num_train_steps!r}")
    if num_warmup_steps is not None and num_warmup_steps < 0:
        raise ValueError(f"num_warmup_steps must be zero or positive, got {num_warmup_steps!r}")
    decayed_lr = tf.train.polynomial_decay(
        tf.constant(init_lr, shape=[], dtype=tf.float32), global_step, num_train_steps,
        end_learning_rate=0.0, power=1.0, cycle=False)
    if not num_warmup_steps:
        return decayed_lr
    step = tf.cast(global_step, tf.int32)
    warmup_steps = tf.constant(num_warmup_steps, dtype=tf.int32)
    warmup_fraction = tf.cast(step, tf.float32) / tf.cast(warmup_steps, tf.float32)
    warmup_lr = init_lr * warmup_fraction
    return tf.where(step < warmup_steps, warmup_lr, decayed_lr)


def build_optimizer(learning_rate: Union[float, tf.Tensor], use_tpu: bool) -> tf.train.Optimizer:
    """The AdamWeightDecayOptimizer with BERT's settings, wrapped to sum gradients across shards on TPU."""
    optimizer = AdamWeightDecayOptimizer(
        learning_rate=learning_rate,
        weight_decay_rate=WEIGHT_DECAY_RATE,
        beta_1=ADAM_BETA_1,
        beta_2=ADAM_BETA_2,
        epsilon=ADAM_EPSILON,
        exclude_from_weight_decay=list(EXCLUDE_FROM_WEIGHT_DECAY))
    if use_tpu:
        optimizer = tf.tpu.CrossShardOptimizer(optimizer)
    return optimizer


def apply_clipped_gradients(optimizer: tf.train.Optimizer, grads: Sequence[Optional[Gradient]],
                            tvars: Sequence[tf.Variable],
                            clip_norm: float = GRADIENT_CLIP_NORM) -> tf.Operation:
    """Rescales `grads` so their global norm is at most `clip_norm`, then applies them to `tvars`.

    Gradients that are None (variables the loss does not depend on) are skipped. The global step is not
    incremented: that is the caller's decision.
    """
    if len(grads) != len(tvars):
        raise ValueError(f"got {len(grads)} gradients for {len(tvars)} variables")
    clipped_grads, _ = tf.clip_by_global_norm(grads, clip_norm=clip_norm)
    return optimizer.apply_gradients(zip(clipped_grads, tvars))


class AdamWeightDecayOptimizer(tf.train.Optimizer):
    """Adam whose weight decay is added to the update, not to the loss, so it bypasses the m/v moments.

    Adding an L2 term to the loss would let Adam rescale the decay per parameter; decaying the weights
    directly ("AdamW") keeps it a plain shrinkage. Unlike standard Adam there is no bias correction of m and v.
    The moments live in non-trainable variables named `<variable name>/adam_m` and `<variable name>/adam_v`.
    """

    def __init__(self,
                 learning_rate: Union[float, tf.Tensor],
                 weight_decay_rate: float = 0.0,
                 beta_1: float = 0.9,
                 beta_2: float = 0.999,
                 epsilon: float = 1e-6,
                 exclude_from_weight_decay: Optional[Iterable[str]] = None,
                 name: str = "AdamWeightDecayOptimizer"):
        """`exclude_from_weight_decay` holds regular expressions; variables whose name matches one are not decayed."""
        super().__init__(use_locking=False, name=name)
        self.learning_rate = learning_rate
        self.weight_decay_rate = weight_decay_rate
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.exclude_from_weight_decay = exclude_from_weight_decay

    def apply_gradients(self, grads_and_vars: Iterable[Tuple[Optional[Gradient], tf.Variable]],
                        global_step: Optional[tf.Variable] = None, name: Optional[str] = None) -> tf.Operation:
        """Updates each variable that has a gradient; `global_step` is accepted but deliberately not incremented."""
        assignments = []
        for grad, param in grads_and_vars:
            if grad is None or param is None:
                continue
            assignments.extend(self._apply_to_variable(grad, param))
        return tf.group(*assignments, name=name)

    def _apply_to_variable(self, grad: Gradient, param: tf.Variable) -> List[tf.Operation]:
        """The assignments of one Adam step with decoupled weight decay to `param` and its two moments."""
        param_name = _variable_name(param.name)
        m = _zeros_slot(param_name + "/adam_m", param)
        v = _zeros_slot(param_name + "/adam_v", param)

        next_m = tf.multiply(self.beta_1, m) + tf.multiply(1.0 - self.beta_1, grad)
        next_v = tf.multiply(self.beta_2, v) + tf.multiply(1.0 - self.beta_2, tf.square(grad))
        update = next_m / (tf.sqrt(next_v) + self.epsilon)
        if self._uses_weight_decay(param_name):
            update += self.weight_decay_rate * param
        next_param = param - self.learning_rate * update
        return [param.assign(next_param), m.assign(next_m), v.assign(next_v)]

    def _uses_weight_decay(self, param_name: str) -> bool:
        """Whether the variable called `param_name` is decayed (a non-zero rate and no exclusion pattern matches)."""
        if not self.weight_decay_rate:
            return False
        for pattern in self.exclude_from_weight_decay or ():
            if re.search(pattern, param_name) is not None:
                return False
        return True


def _variable_name(tensor_name: str) -> str:
    """`"bert/pooler/dense/kernel:0"` -> `"bert/pooler/dense/kernel"`."""
    match = re.match(r"^(.*):\d+$", tensor_name)
    return match.group(1) if match else tensor_name


def _zeros_slot(name: str, param: tf.Variable) -> tf.Variable:
    """A non-trainable float32 variable of `param`'s shape, initialised to zeros (an Adam moment)."""
    return tf.get_variable(
        name=name,
        shape=param.shape.as_list(),
        dtype=tf.float32,
        trainable=False,
        initializer=tf.zeros_initializer())
