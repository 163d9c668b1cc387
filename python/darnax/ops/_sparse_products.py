"""The two sparse-product kernels as JAX functions, and their reverse-mode rules.

Both ops are bilinear, so each one's gradients are products of the same two kinds. With ``W``
stored as ``values`` on a ``(d, K)`` pattern ``M``, ``W^T`` is stored as ``values[M.csr_pos]`` on
``M.transpose()`` (the row orientation of ``M``, see :meth:`SparsityPattern.transpose`):

- ``y = matmul(x, values)``, ``y = x @ W``: ``x_bar = matmul(y_bar, values[csr_pos], M^T)``
  (``y_bar @ W^T``) and ``values_bar = outer(x, y_bar, M)`` (``x^T y_bar`` on ``M``);
- ``o = outer(x, e)``, ``o = (x^T e)|_M``: with ``O`` the matrix holding ``o_bar`` on ``M``,
  ``x_bar = e @ O^T = matmul(e, o_bar[csr_pos], M^T)`` and ``e_bar = x @ O = matmul(x, o_bar, M)``.

The rules are ``jax.custom_vjp`` rules written with the differentiable functions themselves, so
``jax.grad``, ``jax.vjp`` and reverse-over-reverse (``grad`` of ``grad``) work, under ``jit``,
``vmap`` and ``lax.scan``; forward mode (``jax.jvp``, ``jacfwd``, ``hessian``) does not: JAX
refuses it for ``custom_vjp`` functions with a ``TypeError``. The pattern is a non-differentiable
argument (a pytree without leaves: it receives no cotangent). Cost: the gradient of a product is
two products of the same O(B * (d + K + nnz)) size, plus a gather of the ``nnz`` values into row
order; that gather's ``(nnz,)`` int32 index array (``csr_pos``) is a constant of the compiled
gradient program, which therefore grows with nnz, unlike the forward program (a pattern key).
"""

from __future__ import annotations

from collections.abc import Callable

import jax

from darnax.ops import _ffi
from darnax.ops._batching import fold_vmap
from darnax.ops.pattern import SparsityPattern


def _matmul_kernel(x: jax.Array, values: jax.Array, pattern: SparsityPattern) -> jax.Array:
    """The ``darnax_sparse_matmul`` custom call on checked arrays, vmapped by folding into its batch."""
    k = pattern.shape[1]

    def call(x: jax.Array, values: jax.Array) -> tuple[jax.Array]:
        out = jax.ShapeDtypeStruct((x.shape[0], k), x.dtype)
        run = _ffi.ffi_call("sparse_matmul", out, vmap_method="sequential")
        return (run(x, values, **_ffi.pattern_attrs(pattern)),)

    return fold_vmap(call, n_sample=1)(x, values)[0]


def _outer_kernel(x: jax.Array, e: jax.Array, pattern: SparsityPattern) -> jax.Array:
    """The ``darnax_sparse_outer`` custom call on checked arrays (vmapped slice by slice)."""

    def call(x: jax.Array, e: jax.Array) -> tuple[jax.Array]:
        out = jax.ShapeDtypeStruct((pattern.nnz,), x.dtype)
        run = _ffi.ffi_call("sparse_outer", out, vmap_method="sequential")
        return (run(x, e, **_ffi.pattern_attrs(pattern)),)

    # Under vmap the output has no batch axis to fold into: map slice by slice.
    return fold_vmap(call, n_sample=0)(x, e)[0]


def _transposed(values: jax.Array, pattern: SparsityPattern) -> tuple[jax.Array, SparsityPattern]:
    """``W^T`` as ``(values in row order, transposed pattern)`` for ``W`` = ``values`` on ``pattern``."""
    return values[..., pattern.csr_pos], pattern.transpose()


Cotangents = Callable[[jax.Array, jax.Array, SparsityPattern, jax.Array], tuple[jax.Array, jax.Array]]


def _bilinear(kernel: Callable[[jax.Array, jax.Array, SparsityPattern], jax.Array], cotangents: Cotangents):
    """``f(a, b, pattern) = kernel(a, b, pattern)`` as a ``jax.custom_vjp`` function whose
    cotangents are ``cotangents(a, b, pattern, out_bar) -> (a_bar, b_bar)`` (none for the pattern)."""

    @jax.custom_vjp
    def f(a: jax.Array, b: jax.Array, pattern: SparsityPattern) -> jax.Array:
        return kernel(a, b, pattern)

    def fwd(a: jax.Array, b: jax.Array, pattern: SparsityPattern) -> tuple[jax.Array, tuple]:
        return f(a, b, pattern), (a, b, pattern)

    def bwd(res: tuple, out_bar: jax.Array) -> tuple:
        return (*cotangents(*res, out_bar), None)

    f.defvjp(fwd, bwd)
    return f


def _matmul_cotangents(x: jax.Array, values: jax.Array, pattern: SparsityPattern, y_bar: jax.Array) -> tuple:
    """``(y_bar @ W^T, (x^T y_bar)|_M)``."""
    return matmul(y_bar, *_transposed(values, pattern)), outer(x, y_bar, pattern)


def _outer_cotangents(x: jax.Array, e: jax.Array, pattern: SparsityPattern, o_bar: jax.Array) -> tuple:
    """``(e @ O^T, x @ O)`` for ``O`` holding ``o_bar`` on the pattern."""
    return matmul(e, *_transposed(o_bar, pattern)), matmul(x, o_bar, pattern)


matmul = _bilinear(_matmul_kernel, _matmul_cotangents)
"""Differentiable ``x @ W``, ``(B, d) -> (B, K)``, on checked arrays (see :func:`~darnax.ops.sparse_matmul`)."""

outer = _bilinear(_outer_kernel, _outer_cotangents)
"""Differentiable ``(x^T e)|_M``, ``(nnz,)`` in value order, on checked arrays (see :func:`~darnax.ops.sparse_outer`)."""
