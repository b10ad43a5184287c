"""`crepe.core`: the model cache and builder that `ddsp.spectral_ops` touches."""

from ..pitch import CAPACITIES
from ..pitch.network import CrepeNetwork

models = {capacity: None for capacity in CAPACITIES}


def build_and_load_model(model_capacity: str) -> CrepeNetwork:
    if models[model_capacity] is None:
        models[model_capacity] = CrepeNetwork(model_capacity)
    return models[model_capacity]
