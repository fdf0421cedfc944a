"""What the benchmark scripts share, importing nothing heavy at module level: each worker
process imports only its own side's stack (JAX and NumPyro, or multilevel)."""

from __future__ import annotations


class CompileClock:
    """Seconds JAX spent tracing, lowering and compiling, from its monitoring events."""

    def __init__(self, jax):
        self.seconds = 0.0
        jax.monitoring.register_event_duration_secs_listener(self._listen)

    def _listen(self, event: str, duration: float, **_) -> None:
        if event.startswith("/jax/core/compile/"):
            self.seconds += duration


def numpyro_prior(cls: str, kw: dict):
    """The NumPyro distribution of one of our priors given as (class name, arguments)."""
    import numpyro.distributions as dist

    if cls == "Normal":
        return dist.Normal(kw["mean"], kw["sd"])
    if cls == "StudentT":
        return dist.StudentT(kw["df"], kw["mean"], kw["sd"])
    if cls == "HalfStudentT":
        return dist.FoldedDistribution(dist.StudentT(kw["df"], 0.0, kw["scale"]))
    if cls == "HalfNormal":
        return dist.HalfNormal(kw["sd"])
    if cls == "HalfCauchy":
        return dist.HalfCauchy(kw["scale"])
    if cls == "Exponential":
        return dist.Exponential(kw["rate"])
    if cls == "Gamma":
        return dist.Gamma(kw["shape"], kw["rate"])
    if cls == "Beta":
        return dist.Beta(kw["a"], kw["b"])
    raise ValueError(f"no NumPyro translation of the prior {cls}{kw}")


def check_priors(model: str, ours: dict, priors: dict) -> list[str]:
    """Whether ours used the priors given to the peer (compared as the library prints them)."""
    import multilevel as ml

    used = {name: str(getattr(ml, cls)(**kw)) for name, (cls, kw) in priors.items()}
    differ = [f"{n}: ours {ours['priors'].get(n)}, peer {p}" for n, p in used.items() if ours["priors"].get(n) != p]
    return [f"{model}: PRIORS DIFFER between the sides: " + "; ".join(differ)] if differ else []


def correlated_slope_predictor(centred: bool, intercept, slope, sd, chol, num_groups: int, refs, x):
    """The linear predictor ``b0 + b1 x + a_g + s_g x`` of a NumPyro peer with a correlated
    intercept and slope per group, ``(a_g, s_g) ~ N(0, diag(sd) C diag(sd))`` with C's Cholesky
    factor ``chol``: centred (each group's coefficients sampled about the fixed effects) or
    non-centred (standard normals scaled by the Cholesky factor of the covariance)."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    scale = sd[:, None] * chol
    if centred:
        beta = numpyro.sample("beta", dist.MultivariateNormal(jnp.stack([intercept, slope]), scale_tril=scale)
                              .expand([num_groups]).to_event(1))
        return beta[refs, 0] + beta[refs, 1] * x
    z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([num_groups, 2]).to_event(2))
    effects = z @ scale.T
    return intercept + slope * x + effects[refs, 0] + effects[refs, 1] * x
