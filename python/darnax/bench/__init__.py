"""``darnax bench``: microbenchmarks of darnax's kernels, installed with the package.

Every op (``sparse_matmul``, ``sparse_outer``, ``async_sign_sweeps``, ``sync_sign_steps``,
``dense_async_sign_sweeps``, ``random_permutations``) at user-chosen sizes, sparsities, batch
sizes, dtypes and thread counts, against dense ``jnp``, ``jax.experimental.sparse`` BCOO and
SciPy CSR; medians of interleaved rounds after warm-up, printed as a table with ratios, and
written with the machine's record (CPU model, kernel ISA, threads, versions) by ``--json``;
``--compare A.json B.json`` prints the change between two runs. Run ``darnax bench --help``.
"""

from darnax.bench._cli import main as main
