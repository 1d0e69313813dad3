"""numpy-style names of fastad's ops, as code written for forks of the course uses them
(`ad.exp(x)`, `ad.reduce_sum(x, axis=0)`, `ad.matmul(a, b)`, ...): the very same ops."""
from . import ops

exp = ops.exp_op
log = ops.ln_op
log1p = ops.log1p_op
expm1 = ops.expm1_op
sqrt = ops.sqrt_op
square = ops.square_op
abs = ops.abs_op  # noqa: A001 (numpy's name)
sign = ops.sign_op
sin = ops.sin_op
cos = ops.cos_op
tanh = ops.tanh_op
sigmoid = ops.sigmoid_op
relu = ops.relu_op
softplus = ops.softplus_op
log_sigmoid = ops.log_sigmoid_op
softmax = ops.softmax_op
log_softmax = ops.log_softmax_op
maximum = ops.maximum_op
minimum = ops.minimum_op
clip = ops.clip_op
where = ops.where_op
power = ops.pow_op
less = ops.less_op
less_equal = ops.less_equal_op
greater = ops.greater_op
greater_equal = ops.greater_equal_op
equal = ops.equal_op
matmul = ops.matmul_op
sum = reduce_sum = ops.reduce_sum_op  # noqa: A001
mean = reduce_mean = ops.reduce_mean_op
max = reduce_max = ops.reduce_max_op  # noqa: A001
min = reduce_min = ops.reduce_min_op  # noqa: A001
logsumexp = ops.logsumexp_op
reshape = ops.reshape_op
transpose = ops.transpose_op
concat = concatenate = ops.concat_op
stack = ops.stack_op
pad = ops.pad_op
broadcast_to = ops.broadcast_to_op
ones_like = ops.oneslike_op
zeros_like = ops.zeroslike_op
full_like = ops.full_like_op
conv2d = ops.conv2d_op
max_pool2d = ops.max_pool2d_op
avg_pool2d = ops.avg_pool2d_op
softmax_cross_entropy = ops.softmax_cross_entropy_op
sigmoid_cross_entropy = ops.sigmoid_cross_entropy_op

__all__ = [name for name in dir() if not name.startswith("_") and name != "ops"]
