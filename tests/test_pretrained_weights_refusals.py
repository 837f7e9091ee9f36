"""model.pretrained files that torch refuses: one line naming the file, never torch's
advice to load with weights_only=False (which would run the file's code)."""

from __future__ import annotations

import os

import pytest
import torch

from vireid.models.weights import WeightsError, read_state_dict


class _Payload:
    def __reduce__(self):
        return (os.system, ("true",))


def test_random_bytes_name_the_file_without_unsafe_advice(tmp_path):
    path = tmp_path / "r.pth"
    path.write_bytes(bytes(range(256)) * 20)
    with pytest.raises(WeightsError) as e:
        read_state_dict(path)
    assert str(path) in str(e.value) and "not a loadable state dict" in str(e.value)
    assert "weights_only" not in str(e.value)


def test_a_pickled_global_is_named_and_refused_without_unsafe_advice(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": _Payload()}, path)
    with pytest.raises(WeightsError) as e:
        read_state_dict(path)
    msg = str(e.value)
    assert "posix.system" in msg and "refused" in msg and "\n" not in msg
    assert "weights_only" not in msg
