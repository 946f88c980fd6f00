import os
import tempfile

# gsplat tries to JIT-compile CUDA code on import of some modules; keep that out of the repo.
os.environ.setdefault("TORCH_EXTENSIONS_DIR", os.path.join(tempfile.gettempdir(), "splatlab_torch_ext"))

import splatlab  # noqa: E402,F401  (before any test module imports torch: sets the OpenMP wait policy)
