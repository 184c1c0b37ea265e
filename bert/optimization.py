"""The optimizer BERT was trained with: Adam with decoupled weight decay, linear warmup and linear decay.

[New] `create_optimizer(..., optimizer="lamb")` takes LAMB steps instead (You et al. 2019, for batches in the
thousands): the same moments, weight-decay exclusions, schedule, clipping and global step, plus Adam's bias
correction and a per-variable trust ratio.

`create_optimizer` assembles the pieces the way pre-training and fine-tuning use them; the pieces
(`learning_rate_schedule`, `build_optimizer`, `apply_clipped_gradients`) are public so that variants of the
training step can reuse them without re-deriving the numbers.

Opt-in variants of the step (`bert.runtime.performance` turns them on for the programs): gradient accumulation,
dynamic loss scaling for float16 and data-parallel replicas under a tf.distribute strategy. They share one path,
`_build_extended_train_op`; with none of them the graph is the original's.
"""

import functools
import math
import re
from typing import Callable, Iterable, List, Optional, Sequence, Tuple, Union

import tensorflow.compat.v1 as tf

# The settings BERT was pre-trained with; fine-tuning keeps them.
WEIGHT_DECAY_RATE = 0.01
EXCLUDE_FROM_WEIGHT_DECAY = ("LayerNorm", "layer_norm", "bias")
ADAM_BETA_1 = 0.9
ADAM_BETA_2 = 0.999
ADAM_EPSILON = 1e-6
GRADIENT_CLIP_NORM = 1.0
OPTIMIZERS = ("adamw", "lamb")  # the original's AdamWeightDecay, and [new] LAMB

Gradient = Union[tf.Tensor, tf.IndexedSlices]


def create_optimizer(loss: tf.Tensor, init_lr: float, num_train_steps: int, num_warmup_steps: Optional[int],
                     use_tpu: bool, num_accumulation_steps: int = 1, loss_scaling: bool = False,
                     optimizer: str = "adamw") -> tf.Operation:
    """Builds the training op: one AdamWeightDecay step on all trainable variables plus a global-step increment.

    Args:
      loss: float32 scalar Tensor to minimise.
      init_lr: learning rate the linear decay starts from (at step 0); warmup climbs towards it.
      num_train_steps: step at which the linearly decaying learning rate reaches 0.
      num_warmup_steps: steps of linear warmup from 0; 0 or None for no warmup.
      use_tpu: whether to sum gradients across TPU shards (CrossShardOptimizer).
      num_accumulation_steps: [new] average the gradients of this many runs of the op (micro-batches) into one
        update (1: the original's step).
      loss_scaling: [new] dynamic loss scaling, for float16 (off: the original's step).
      optimizer: [new] "adamw" (the original's AdamWeightDecay) or "lamb".

    Returns:
      An Operation that increments the global step and updates the variables and their `adam_m`/`adam_v`
      slots with the learning rate of the incremented step. With accumulation, the global step counts updates:
      it advances on every `num_accumulation_steps`-th run, as does the learning-rate schedule. With loss
      scaling, a step whose gradients overflow is skipped (no update, no increment) and the scale halves.
      Inside a tf.distribute replica the gradients are averaged over the replicas first.
    """
    check_optimizer_name(optimizer)
    tvars = tf.trainable_variables()
    if not tvars:
        raise ValueError("create_optimizer found no trainable variables in the current graph")
    global_step = tf.train.get_or_create_global_step()
    if num_accumulation_steps != 1 or loss_scaling or tf.distribute.has_strategy():
        if use_tpu:
            raise ValueError("gradient accumulation, loss scaling and tf.distribute replicas are not available "
                             "with use_tpu")
        schedule = functools.partial(learning_rate_schedule, init_lr=init_lr, num_train_steps=num_train_steps,
                                     num_warmup_steps=num_warmup_steps)
        return _build_extended_train_op(loss, tvars, global_step, schedule, num_accumulation_steps, loss_scaling,
                                        optimizer)
    # AdamWeightDecayOptimizer leaves the global step alone, so it is counted here. The original increments it
    # and reads it for the learning rate with no ordering between the two (a race); its reference trajectory
    # came from runs where the increment landed first. Incrementing explicitly first makes that deterministic:
    # the update taken when the global step is t uses the learning rate of step t + 1.
    next_global_step = global_step.assign_add(1)
    learning_rate = learning_rate_schedule(next_global_step, init_lr, num_train_steps, num_warmup_steps)
    step_optimizer = build_optimizer(learning_rate, use_tpu, optimizer, update_number=next_global_step)
    grads = tf.gradients(loss, tvars)
    apply_op = apply_clipped_gradients(step_optimizer, grads, tvars)
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


def check_optimizer_name(optimizer: str) -> None:
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")


def build_optimizer(learning_rate: Union[float, tf.Tensor], use_tpu: bool, optimizer: str = "adamw",
                    update_number: Optional[tf.Tensor] = None) -> tf.train.Optimizer:
    """The AdamWeightDecayOptimizer (or LambOptimizer) with BERT's settings, wrapped to sum gradients across
    shards on TPU. LAMB needs `update_number`, the 1-based number of the update being taken."""
    check_optimizer_name(optimizer)
    settings = dict(learning_rate=learning_rate, weight_decay_rate=WEIGHT_DECAY_RATE, beta_1=ADAM_BETA_1,
                    beta_2=ADAM_BETA_2, epsilon=ADAM_EPSILON,
                    exclude_from_weight_decay=list(EXCLUDE_FROM_WEIGHT_DECAY))
    if optimizer == "lamb":
        if update_number is None:
            raise ValueError("the LAMB optimizer needs the update's number for its bias correction")
        optimizer = LambOptimizer(update_number=update_number, **settings)
    else:
        optimizer = AdamWeightDecayOptimizer(**settings)
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
        """The assignments of one step with decoupled weight decay to `param` and its two moments."""
        m, v = create_adam_slots(param)
        return self.update_with_slots(grad, param, m, v, self.is_excluded(param))

    def update_with_slots(self, grad: Gradient, param: tf.Variable, m: tf.Variable, v: tf.Variable,
                          excluded: bool) -> List[tf.Operation]:
        """The assignments of one step to `param` and its moments `m`, `v` (which may be replicas' copies);
        `excluded`: whether `param` is on the exclusion list (`is_excluded`)."""
        next_m = tf.multiply(self.beta_1, m) + tf.multiply(1.0 - self.beta_1, grad)
        next_v = tf.multiply(self.beta_2, v) + tf.multiply(1.0 - self.beta_2, tf.square(grad))
        update = self._scaled_update(next_m, next_v, param, excluded)
        next_param = param - self.learning_rate * update
        return [param.assign(next_param), m.assign(next_m), v.assign(next_v)]

    def _scaled_update(self, next_m: tf.Tensor, next_v: tf.Tensor, param: tf.Variable,
                       excluded: bool) -> tf.Tensor:
        """What the learning rate multiplies: m / (sqrt(v) + epsilon), plus the weight decay."""
        update = next_m / (tf.sqrt(next_v) + self.epsilon)
        if self.weight_decay_rate and not excluded:
            update += self.weight_decay_rate * param
        return update

    def is_excluded(self, param: tf.Variable) -> bool:
        """Whether `param`'s name matches an `exclude_from_weight_decay` pattern."""
        return self._is_excluded(_variable_name(param.name))

    def _is_excluded(self, param_name: str) -> bool:
        return any(re.search(pattern, param_name) is not None for pattern in self.exclude_from_weight_decay or ())


class LambOptimizer(AdamWeightDecayOptimizer):
    """LAMB (You et al. 2019, "Large Batch Optimization for Deep Learning", Algorithm 2): the AdamWeightDecay step
    with bias-corrected moments, rescaled per variable by the trust ratio ||w|| / ||update||.

    The ratio gives every layer a step proportional to its weights' norm, which keeps very large batches (and
    their large learning rates) stable. Variables excluded from weight decay (LayerNorm, bias) skip the ratio
    too, as in TF Model Garden's and tensorflow-addons' LAMB; a ratio with a zero norm on either side is 1.
    """

    def __init__(self, learning_rate: Union[float, tf.Tensor], update_number: tf.Tensor, **kwargs):
        """`update_number`: scalar Tensor, the 1-based number of the update being taken (the bias correction's t)."""
        kwargs.setdefault("name", "LambOptimizer")
        super().__init__(learning_rate, **kwargs)
        self.update_number = update_number

    def _scaled_update(self, next_m: tf.Tensor, next_v: tf.Tensor, param: tf.Variable,
                       excluded: bool) -> tf.Tensor:
        t = tf.cast(self.update_number, tf.float32)
        m_hat = next_m / _one_minus_power(self.beta_1, t)
        v_hat = next_v / _one_minus_power(self.beta_2, t)
        update = m_hat / (tf.sqrt(v_hat) + self.epsilon)
        if excluded:
            return update
        if self.weight_decay_rate:
            update += self.weight_decay_rate * param
        return trust_ratio(param, update) * update


def _one_minus_power(beta: float, t: tf.Tensor) -> tf.Tensor:
    """1 - beta**t as -expm1(t * log(beta)): for beta_2 = 0.999 and small t, 1 - pow() in float32 loses ~5 digits
    to cancellation (a 1e-5 relative error in the first updates); this keeps float32's precision."""
    return -tf.math.expm1(t * math.log(beta))


def trust_ratio(param: tf.Tensor, update: tf.Tensor) -> tf.Tensor:
    """||param|| / ||update||, or 1.0 when either norm is 0 (a zero-initialised variable, a zero update)."""
    param_norm = tf.norm(param)
    update_norm = tf.norm(update)
    both_positive = tf.logical_and(param_norm > 0.0, update_norm > 0.0)
    return tf.where(both_positive, param_norm / tf.where(both_positive, update_norm, 1.0), 1.0)


def _variable_name(tensor_name: str) -> str:
    """`"bert/pooler/dense/kernel:0"` -> `"bert/pooler/dense/kernel"`."""
    match = re.match(r"^(.*):\d+$", tensor_name)
    return match.group(1) if match else tensor_name


def create_adam_slots(param: tf.Variable) -> Tuple[tf.Variable, tf.Variable]:
    """Creates the zero-initialised moments `<param name>/adam_m` and `/adam_v` of `param`."""
    param_name = _variable_name(param.name)
    return _zeros_slot(param_name + "/adam_m", param), _zeros_slot(param_name + "/adam_v", param)


def _zeros_slot(name: str, param: tf.Variable) -> tf.Variable:
    """A non-trainable float32 variable of `param`'s shape, initialised to zeros (an Adam moment)."""
    return tf.get_variable(
        name=name,
        shape=param.shape.as_list(),
        dtype=tf.float32,
        trainable=False,
        initializer=tf.zeros_initializer())


# --- Opt-in training steps: gradient accumulation, loss scaling, tf.distribute replicas ----------------------------
#
# One path serves all three. In replica context (or the default one without a strategy) each replica computes its
# gradients, unscales them and divides them by the number of micro-batches. The rest runs once, in cross-replica
# context (`merge_call`): average over the replicas, add to the accumulators, and on the last micro-batch of an
# update apply Adam on every device's copy (`strategy.extended.update`) and clear the accumulators. Without a
# strategy the same calls reduce to plain assignments.
#
# The new state (accumulators, micro-batch counter, loss scale) is in local variables, so checkpoints hold exactly
# the variables of a plain run and load in both directions. Nothing is lost by not saving it: Estimator saves when
# the global step moves, right after an update, when the accumulators are empty.

INITIAL_LOSS_SCALE = 2.0 ** 15
LOSS_SCALE_GROWTH_INTERVAL = 2000  # finite steps in a row before the scale doubles
LOSS_SCALE_FACTOR = 2.0


class DynamicLossScale:
    """The float16 loss scale: halves when gradients overflow, doubles after `LOSS_SCALE_GROWTH_INTERVAL` good steps.

    Multiplying the loss keeps small float16 gradients from flushing to zero; the gradients are divided by the
    same factor before use.
    """

    def __init__(self, initial_scale: float = INITIAL_LOSS_SCALE):
        self.scale = _local_variable("loss_scale", [], tf.float32, tf.constant_initializer(initial_scale))
        self.finite_steps = _local_variable("loss_scale_finite_steps", [], tf.int64, tf.zeros_initializer())

    def update(self, strategy: tf.distribute.Strategy, finite: tf.Tensor) -> tf.Operation:
        """Cross-replica op adjusting the scale after a step whose gradients were `finite` (bool scalar Tensor)."""
        scale = strategy.extended.read_var(self.scale)
        finite_steps = strategy.extended.read_var(self.finite_steps) + 1
        grow = tf.logical_and(finite, finite_steps >= LOSS_SCALE_GROWTH_INTERVAL)
        next_scale = tf.where(finite, tf.where(grow, scale * LOSS_SCALE_FACTOR, scale),
                              tf.maximum(scale / LOSS_SCALE_FACTOR, 1.0))
        next_finite_steps = tf.where(tf.logical_and(finite, tf.logical_not(grow)), finite_steps,
                                     tf.zeros_like(finite_steps))
        return tf.group(_assign_everywhere(strategy, self.scale, next_scale),
                        _assign_everywhere(strategy, self.finite_steps, next_finite_steps))


class _ExtendedStep:
    """The variables and settings of one extended training step; `cross_replica_op` builds its update."""

    def __init__(self, params: List[tf.Variable], global_step: tf.Variable, schedule: Callable,
                 num_accumulation_steps: int, loss_scale: Optional[DynamicLossScale], optimizer: str = "adamw"):
        self.params = params
        self.optimizer = optimizer
        self.slots = [create_adam_slots(param) for param in params]
        self.global_step = global_step
        self.schedule = schedule
        self.num_accumulation_steps = num_accumulation_steps
        self.loss_scale = loss_scale
        self.accumulators, self.micro_step = None, None
        if num_accumulation_steps > 1:
            self.accumulators = [_local_variable(_variable_name(p.name) + "/accumulated_gradient", p.shape,
                                                 tf.float32, tf.zeros_initializer()) for p in params]
            self.micro_step = _local_variable("accumulation_micro_step", [], tf.int64, tf.zeros_initializer())

    def cross_replica_op(self, strategy: tf.distribute.Strategy, grads: List) -> tf.Operation:
        """Averages `grads` (one per param) over the replicas, accumulates them and applies the update when due."""
        if strategy.num_replicas_in_sync > 1:
            # Reduced onto each parameter's devices, as tf.train.Optimizer does (it sums; the mean is ours).
            grads = strategy.extended.batch_reduce_to(tf.distribute.ReduceOp.MEAN, list(zip(grads, self.params)))
        if self.accumulators is None:
            return self._apply(strategy, grads)
        added = [strategy.extended.update(acc, _add, args=(grad,), group=True)
                 for acc, grad in zip(self.accumulators, grads)]
        with tf.control_dependencies(added):
            micro_step = strategy.extended.read_var(self.micro_step) + 1
            return tf.cond(micro_step >= self.num_accumulation_steps,
                           lambda: self._apply_and_clear(strategy),
                           lambda: _assign_everywhere(strategy, self.micro_step, micro_step))

    def _apply_and_clear(self, strategy: tf.distribute.Strategy) -> tf.Operation:
        applied = self._apply(strategy, self.accumulators)
        with tf.control_dependencies([applied]):
            cleared = [strategy.extended.update(acc, _clear, group=True) for acc in self.accumulators]
            return tf.group(*cleared, _assign_everywhere(strategy, self.micro_step, tf.constant(0, tf.int64)))

    def _apply(self, strategy: tf.distribute.Strategy, grads: List) -> tf.Operation:
        """Clips `grads` by their global norm and takes the Adam step, unless loss scaling finds them non-finite."""
        norm = tf.linalg.global_norm([strategy.experimental_local_results(grad)[0] for grad in grads])
        if self.loss_scale is None:
            return self._update(strategy, grads, norm)
        finite = tf.math.is_finite(norm)
        updated = tf.cond(finite, lambda: self._update(strategy, grads, norm), tf.no_op)
        with tf.control_dependencies([updated]):
            return self.loss_scale.update(strategy, finite)

    def _update(self, strategy: tf.distribute.Strategy, grads: List, norm: tf.Tensor) -> tf.Operation:
        # As in create_optimizer: the update taken at global step t uses the learning rate of step t + 1.
        next_step = strategy.extended.read_var(self.global_step) + 1
        optimizer = build_optimizer(self.schedule(next_step), False, self.optimizer, update_number=next_step)
        clip_scale = _clip_scale(norm, GRADIENT_CLIP_NORM)
        updates = []
        for param, (m, v), grad in zip(self.params, self.slots, grads):
            update = _adam_update_fn(optimizer, optimizer.is_excluded(param))
            updates.append(strategy.extended.update(param, update, args=(grad, m, v, clip_scale), group=True))
        with tf.control_dependencies(updates):
            return _assign_everywhere(strategy, self.global_step, next_step)


def _build_extended_train_op(loss: tf.Tensor, tvars: Sequence[tf.Variable], global_step: tf.Variable,
                             schedule: Callable, num_accumulation_steps: int, loss_scaling: bool,
                             optimizer: str = "adamw") -> tf.Operation:
    """create_optimizer's training op with accumulation, loss scaling and/or tf.distribute replicas."""
    if num_accumulation_steps < 1:
        raise ValueError(f"num_accumulation_steps must be >= 1, got {num_accumulation_steps}")
    loss_scale = DynamicLossScale() if loss_scaling else None
    scaled_loss = loss * loss_scale.scale if loss_scale else loss
    grads_and_vars = [(g, v) for g, v in zip(tf.gradients(scaled_loss, tvars), tvars) if g is not None]
    if not grads_and_vars:
        raise ValueError("the loss does not depend on any trainable variable")
    divisor = float(num_accumulation_steps) * (loss_scale.scale if loss_scale else 1.0)
    # Dense (embedding gradients arrive as IndexedSlices): they are summed into dense accumulators or all-reduced.
    grads = [tf.convert_to_tensor(grad) / divisor for grad, _ in grads_and_vars]
    step = _ExtendedStep([v for _, v in grads_and_vars], global_step, schedule, num_accumulation_steps, loss_scale,
                         optimizer)
    return tf.distribute.get_replica_context().merge_call(step.cross_replica_op, args=(grads,))


def _adam_update_fn(optimizer: AdamWeightDecayOptimizer, excluded: bool) -> Callable:
    """The per-device update of one parameter for `strategy.extended.update`."""

    def update(param, grad, m, v, clip_scale):
        grad = tf.convert_to_tensor(grad) * clip_scale
        return tf.group(*optimizer.update_with_slots(grad, param, m, v, excluded))

    return update


def _clip_scale(norm: tf.Tensor, clip_norm: float) -> tf.Tensor:
    """The factor tf.clip_by_global_norm multiplies gradients by: 1 up to `clip_norm`, then clip_norm / norm."""
    return clip_norm * tf.minimum(1.0 / norm, 1.0 / clip_norm)


def _add(variable, value) -> tf.Operation:
    return variable.assign_add(tf.convert_to_tensor(value), read_value=False)


def _clear(variable) -> tf.Operation:
    return variable.assign(tf.zeros_like(variable), read_value=False)


def _assign(variable, value) -> tf.Operation:
    return variable.assign(value, read_value=False)


def _assign_everywhere(strategy: tf.distribute.Strategy, variable: tf.Variable, value: tf.Tensor) -> tf.Operation:
    """Assigns `value` to `variable` on every device holding a copy (cross-replica context)."""
    return tf.group(strategy.extended.update(variable, _assign, args=(value,), group=True))


def _local_variable(name: str, shape, dtype: tf.DType, initializer) -> tf.Variable:
    """A non-trainable variable left out of checkpoints (LOCAL_VARIABLES), initialised by Estimator's scaffold."""
    return tf.get_variable(name, shape=shape, dtype=dtype, initializer=initializer, trainable=False,
                           collections=[tf.GraphKeys.LOCAL_VARIABLES])
