"""Stage 4: samplers behind one interface, a registry for ``auto``, and the driver that runs chains."""

from .centering import choose_centering
from .collapsed import COLLAPSED
from .driver import ChainRun, Kernel, run_chains
from .gibbs import GIBBS
from .nuts import NUTS, NutsConfig, nuts_kernel
from .registry import REGISTRY, SAMPLERS, choose_sampler, get_sampler
from .sampler import Draws, Options, Sampler, SamplerInfo

__all__ = ["ChainRun", "run_chains", "Kernel", "NutsConfig", "choose_centering", "nuts_kernel", "NUTS",
           "COLLAPSED", "GIBBS", "REGISTRY", "SAMPLERS", "choose_sampler", "get_sampler", "Draws", "Options",
           "Sampler", "SamplerInfo"]
