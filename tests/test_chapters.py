"""Every chapter executes at the smoke profile, with its figures and widgets in the output."""
import json

import pytest

from xtomo.book import CHAPTERS, run_chapter
from xtomo.files import artifacts_dir

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.stem)
def test_chapter_executes_at_smoke(chapter, tmp_path):
    out = run_chapter(chapter, "smoke", out_dir=tmp_path)
    nb = json.loads(out.read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert not [o for o in outputs if o.get("name") == "stderr"], "a chapter should not print warnings"
    assert any("image/png" in o.get("data", {}) for o in outputs), "a chapter shows figures"
    if chapter.stem.startswith("01_"):
        state = nb["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
        assert any(m["model_name"] == "VolumeModel" for m in state.values())
        manifest = json.loads((artifacts_dir("smoke") / "manifest.json").read_text())
        assert len(manifest["val"]) == 3
