"""Stage 4: samplers as pure init/step kernels, and the driver that runs chains."""

from .driver import ChainRun, run_chains
from .driver import Kernel
from .centering import choose_centering
from .nuts import NutsConfig, nuts_kernel, sample_nuts
from .collapsed import sample_collapsed
from .gibbs import gibbs_problem, sample_gibbs
from .output import SamplerOutput
from .select import SAMPLERS, choose_sampler

__all__ = ["ChainRun", "run_chains", "Kernel", "NutsConfig", "choose_centering", "nuts_kernel",
           "sample_nuts", "SamplerOutput", "sample_collapsed", "gibbs_problem", "sample_gibbs", "SAMPLERS",
           "choose_sampler"]
