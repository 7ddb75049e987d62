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
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from server.decode import NPY
from server.deps import ModelDep, RuntimeDep
from server.errors import ApiError

router = APIRouter(prefix="/v1/samples", tags=["samples"])
INDEX_FILE = "index.json"


class Sample(BaseModel):
    file: str = Field(description="File name inside the model's samples folder (.npy).")
    label: int | None = Field(default=None, description="True class index, if known.")
    label_name: str | None = Field(default=None, description="True class label, if known.")
    source: str = Field(default="", description="Where the recording comes from.")
    predicted: int | None = Field(
        default=None, description="The model's top class for the whole recording at export.")


class ModelSamples(BaseModel):
    model: str
    samples: list[Sample]


_INDEX = TypeAdapter(list[Sample])


def read_index(root: Path, model: str) -> list[Sample]:
    """The samples of ``model`` under ``root``; none when it has no index."""
    path = root / model / INDEX_FILE
    if not path.is_file():
        return []
    try:
        return _INDEX.validate_json(path.read_bytes())
    except ValidationError as exc:
        raise ApiError(500, f"{path} is not a valid sample index (a JSON list of "
                            f"{{file, label, label_name, source, predicted}}): {exc}") from exc


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
