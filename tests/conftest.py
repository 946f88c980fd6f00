import os
import tempfile

# gsplat tries to JIT-compile CUDA code on import of some modules; keep that out of the repo.
os.environ.setdefault("TORCH_EXTENSIONS_DIR", os.path.join(tempfile.gettempdir(), "splatlab_torch_ext"))

# automatic triangulation (splatlab.data.triangulate.ensure_points) caches points beside the scene:
# keep the bundled scenes as committed; tests of it call ensure_points with the switch turned back on
os.environ.setdefault("SPLATLAB_AUTO_TRIANGULATE", "0")

import splatlab  # noqa: E402,F401  (before any test module imports torch: sets the OpenMP wait policy)
