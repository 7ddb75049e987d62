"""/v1/samples: small recordings shipped per model, for the dashboard and for trying the API.

``settings.samples/NAME/index.json`` lists the recordings of model NAME as
``[{"file", "label", "label_name", "source", "predicted"}]`` (model/samples.py writes it);
each file is a ``.npy`` structured array in the model's wire dtype. Only files named in an
index are served, so no path reaches outside.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from pydantic import ValidationError

from model import samples
from model.samples import INDEX_FILE, Sample
from server.decode import NPY
from server.deps import ModelDep, RuntimeDep
from server.errors import ApiError
from server.schemas import ModelSamples

router = APIRouter(prefix="/v1/samples", tags=["samples"])


def read_index(root: Path, model: str) -> list[Sample]:
    """The samples of ``model`` under ``root``; none when it has no index."""
    try:
        return samples.read_index(root / model)
    except ValidationError as exc:
        raise ApiError(500, f"{root / model / INDEX_FILE} is not a valid sample index (a JSON "
                            f"list of {{file, label, label_name, source, predicted}}): "
                            f"{exc}") from exc


@router.get("")
async def list_samples(runtime: RuntimeDep) -> list[ModelSamples]:
    """List the sample recordings of every served model."""
    root = runtime.settings.samples
    return [ModelSamples(model=m.name, samples=read_index(root, m.name)) for m in runtime.registry]


@router.get("/{name}/{file}", response_class=FileResponse,
            responses={200: {"content": {NPY: {}}, "description": "The recording (.npy)."},
                       404: {"description": "Unknown model or sample"}})
async def get_sample(model: ModelDep, file: str, runtime: RuntimeDep) -> FileResponse:
    """Download one sample recording as a .npy file in the model's wire dtype."""
    root = runtime.settings.samples
    listed = {s.file for s in read_index(root, model.name)}
    if file not in listed:
        raise ApiError(404, f"model {model.name!r} has no sample {file!r}; "
                            f"GET /v1/samples lists them")
    path = root / model.name / file
    if not path.is_file():
        raise ApiError(404, f"sample {file!r} is listed in {root / model.name / INDEX_FILE} "
                            "but the file is missing")
    return FileResponse(path, media_type=NPY, filename=file)
