"""model/spec.py: what an input spec admits, and the cochlea channels audio is encoded with."""

import pytest
from pydantic import ValidationError

from model.errors import InputError
from model.spec import InputSpec


def test_audio_is_encoded_with_a_cochlea_inputs_channels_and_refused_for_dvs() -> None:
    assert InputSpec(sensor="cochlea", dt_us=4000, channels=700, downsample=5
                     ).cochlea_channels() == 700
    dvs = InputSpec(sensor="dvs", dt_us=5000, width=34, height=34)
    with pytest.raises(InputError, match="takes dvs events, not cochlea spikes"):
        dvs.cochlea_channels()


@pytest.mark.parametrize("fields", [
    {"sensor": "cochlea"},  # no channels
    {"sensor": "cochlea", "channels": 700, "downsample": 3},  # 700 is not a multiple of 3
    {"sensor": "dvs", "width": 34},  # no height
    {"sensor": "dvs", "width": 34, "height": 34, "pool": 4},
])
def test_sizes_that_do_not_fit_the_sensor_are_refused(fields: dict) -> None:
    with pytest.raises(ValidationError):
        InputSpec(dt_us=1000, **fields)
