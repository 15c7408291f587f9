"""The example grid's inputs: which images, and how tensors become displayable arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.loaders.transforms import IMAGENET_MEAN, IMAGENET_STD
from pipeline.report.examples import spread_rows, to_display


def test_spread_rows_spans_the_manifest():
    manifest = pd.DataFrame({"path": [f"{i}.jpg" for i in range(10)]})
    assert spread_rows(manifest, 3)["path"].tolist() == ["0.jpg", "4.jpg", "9.jpg"]
    assert spread_rows(manifest, 1)["path"].tolist() == ["0.jpg"]
    with pytest.raises(ValueError, match="figures.examples = 11"):
        spread_rows(manifest, 11)


def test_to_display_undoes_the_normalisation():
    pixels = torch.rand(2, 3, 4, 5)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    shown = to_display((pixels - mean) / std)
    assert len(shown) == 2 and shown[0].shape == (4, 5, 3)
    np.testing.assert_allclose(shown[1], pixels[1].permute(1, 2, 0).numpy(), atol=1e-6)
