"""/v1/models: what the server can run."""

from __future__ import annotations

from fastapi import APIRouter

from model.events import EVENT_DTYPES
from model.network import count_params
from server.deps import ModelDep, RuntimeDep
from server.registry import LoadedModel
from server.schemas import ModelDetail, ModelSummary

router = APIRouter(prefix="/v1/models", tags=["models"])


def summary(model: LoadedModel) -> ModelSummary:
    card = model.card
    return ModelSummary(name=card.name, version=model.version, description=card.description,
                        input=card.input, labels=card.labels)


@router.get("")
async def list_models(runtime: RuntimeDep) -> list[ModelSummary]:
    """List the served models with their input specs and labels."""
    return [summary(m) for m in runtime.registry]


@router.get("/{name}", responses={404: {"description": "Unknown model"}})
async def get_model(model: ModelDep) -> ModelDetail:
    """Describe one model: input spec, labels, architecture and measured metrics."""
    card = model.card
    dtype = EVENT_DTYPES[card.input.sensor]
    return ModelDetail(**summary(model).model_dump(), architecture=_architecture(model),
                       metrics=card.metrics, provenance=card.provenance,
                       event_fields=list(dtype.names or ()),
                       wire_dtype=[(name, dtype[name].str) for name in dtype.names or ()])


def _architecture(model: LoadedModel) -> dict[str, object]:
    cfg = model.card.architecture
    return {"neurons": list(cfg.neurons), "blocks": cfg.blocks, "n_in": cfg.n_in,
            "n_classes": cfg.n_classes, "discretization": cfg.discretization,
            "fan_out": list(cfg.fan_out()), "parameters": count_params(model.engine.params)}
