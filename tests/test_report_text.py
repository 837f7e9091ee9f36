"""What the rank report says in words: AP as a percentage with its sign."""

import re

import numpy as np

from vireid.evaluation.evaluator import evaluate_protocol
from vireid.report import write_report


def test_rank_report_shows_ap_as_a_percentage(sysu_root, tmp_path):
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(100, 8))

    def featurize(samples):
        return centers[[s.pid for s in samples]] + 1.0 * rng.normal(size=(len(samples), 8))

    result = evaluate_protocol("sysu/all/single", sysu_root, [0], featurize)
    page = write_report(tmp_path / "rep", result, max_queries=20).read_text()
    shown = re.findall(r'<span class="ap">AP ([^<]*)</span>', page)
    assert len(shown) == 20
    aps = sorted(result.trials[0].result.ap[~np.isnan(result.trials[0].result.ap)])[:20]
    assert shown == [f"{100 * a:.2f} %" for a in aps]  # worst first, in percent
