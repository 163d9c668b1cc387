"""darnax's compiled core: sparse products, sparse and dense plasticity, ±1 sign dynamics (sparse and dense
couplings), their random visiting orders and the weights' finiteness test as XLA FFI calls.

Importing this module loads the C++ extension (registering its targets with XLA on the first
op); it raises ``ImportError`` (saying how to rebuild) when the extension is missing or
incompatible.
Each op has a pure ``jax.numpy`` oracle ``<op>_reference`` beside it.
``sparse_matmul`` and ``sparse_outer`` are differentiable in reverse mode (``jax.grad``; see
:mod:`darnax.ops._sparse_products`).
"""

from darnax.ops import _ffi
from darnax.ops._placement import NoKernelError as NoKernelError
from darnax.ops.all_finite import all_finite as all_finite
from darnax.ops.all_finite import all_finite_reference as all_finite_reference
from darnax.ops.async_sign_sweeps import async_sign_sweeps as async_sign_sweeps
from darnax.ops.async_sign_sweeps import async_sign_sweeps_reference as async_sign_sweeps_reference
from darnax.ops.dense_async_sign_sweeps import dense_async_sign_sweeps as dense_async_sign_sweeps
from darnax.ops.dense_async_sign_sweeps import dense_async_sign_sweeps_reference as dense_async_sign_sweeps_reference
from darnax.ops.dense_outer import dense_outer as dense_outer
from darnax.ops.dense_outer import dense_outer_reference as dense_outer_reference
from darnax.ops.pattern import SparsityPattern as SparsityPattern
from darnax.ops.random_permutations import random_permutations as random_permutations
from darnax.ops.random_permutations import random_permutations_reference as random_permutations_reference
from darnax.ops.sparse_matmul import sparse_matmul as sparse_matmul
from darnax.ops.sparse_matmul import sparse_matmul_reference as sparse_matmul_reference
from darnax.ops.sparse_outer import sparse_outer as sparse_outer
from darnax.ops.sparse_outer import sparse_outer_reference as sparse_outer_reference
from darnax.ops.sync_sign_steps import sync_sign_steps as sync_sign_steps
from darnax.ops.sync_sign_steps import sync_sign_steps_reference as sync_sign_steps_reference

direct = _ffi.direct
"""The C++ kernels callable straight on NumPy arrays (no XLA), for microbenchmarks and debugging."""
