"""Hypothesis with a fixed budget and seed (derandomized, no example database): CI runs the
same cases every time."""

from hypothesis import HealthCheck, seed, settings


def fixed(max_examples: int, fixed_seed: int):
    def decorate(test):
        test = settings(
            max_examples=max_examples,
            derandomize=True,
            database=None,
            deadline=None,
            print_blob=False,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )(test)
        return seed(fixed_seed)(test)

    return decorate
