"""XLA options of the collapsed and Gibbs samplers' programs.

XLA's newer CPU fusion emitters take two to three times longer to compile the
collapsed sampler's programs (hundreds of small fusions: 7-14 s instead of 3-6 s
for a chunk of NUTS steps) and run them no faster, and 1.5 times longer for a
Gibbs sweep on InstEval (10 s instead of 6.7 s; the sweep runs 10% faster); the
fit's wall time counts the compilation, so they use the older emitters. The full-model NUTS programs keep
XLA's defaults (their draws are then exactly those of earlier versions), and the
options never reach the user's own ``jax.jit``.
"""

from __future__ import annotations

from functools import partial

import jax

#: XLA options of the collapsed and Gibbs samplers' programs, as hashable (name, value) pairs.
COMPILER_OPTIONS = (("xla_cpu_use_fusion_emitters", False),)

#: ``jax.jit`` with :data:`COMPILER_OPTIONS`.
jit = partial(jax.jit, compiler_options=dict(COMPILER_OPTIONS))
