"""Every chapter executes at the smoke profile, in order, with its figures and widgets in the output."""
import json
from pathlib import Path

import pytest

from xtomo.publish.chapters import find_chapters

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def executed(smoke_book):
    """The chapters run in book order with one shared artifacts folder, as `xtomo book` runs them
    (``smoke_book``, shared with test_browser): their notebooks by stem, and the artifacts folder."""
    paths = {c.stem: smoke_book / "smoke" / "notebooks" / c.name for c in find_chapters(REPO)}
    return paths, smoke_book.parent / "artifacts"


@pytest.mark.parametrize("chapter", find_chapters(REPO), ids=lambda c: c.stem)
def test_chapter_executes_at_smoke(chapter, executed):
    paths, artifacts = executed
    nb = json.loads(paths[chapter.stem].read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert not [o for o in outputs if o.get("name") == "stderr"], "a chapter should not print warnings"
    assert any("image/png" in o.get("data", {}) for o in outputs), "a chapter shows figures"
    if chapter.stem.startswith("01_"):
        state = nb["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
        assert any(m["model_name"] == "VolumeModel" for m in state.values())
        assert len(json.loads((artifacts / "smoke" / "manifest.json").read_text())["val"]) == 3
    if chapter.stem.startswith("06_"):
        state = nb["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
        models = [m["model_name"] for m in state.values()]
        assert models.count("VolumeModel") == 2 and "StackModel" in models   # explorer, slice viewer
        assert (artifacts / "smoke" / "applications" / "wiggle.gif").exists()
        html = [o for c in nb["cells"] for o in c.get("outputs", []) if "text/html" in o.get("data", {})]
        assert any("data:image/gif;base64," in "".join(o["data"]["text/html"]) for o in html)
    if chapter.stem.startswith("03_"):
        assert (artifacts / "smoke" / "checkpoint.pt").exists()
