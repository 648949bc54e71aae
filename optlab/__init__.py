"""optlab: JIT-compiled (CPU/GPU) ADMM, primal-dual and inertial optimisation solvers on JAX.

Public names (see README.md):

* penalties and their exact proxes: :mod:`optlab.prox` (``ol.prox.l1``, ``scad``, ``mcp``, ``lsp``,
  ``capped_l1``, ``tv1d``, ``box`` ...);
* smooth losses and objectives: :mod:`optlab.losses`; linear operators: :mod:`optlab.operators`;
* data sets: :mod:`optlab.data` (``ol.data.load("a9a")``);
* the harness: :mod:`optlab.harness` (``run``, ``run_jit``), :class:`Trace`, :class:`Result`;
* solvers: ``ista``, ``fista``, ``gist``, ``svm_admm``, ``pig``, ``pig_blocks`` (more as the solver issues land);
* plots: :mod:`optlab.plot`.
"""
from . import _config  # noqa: F401  (first: JAX settings, e.g. the persistent compilation cache)
from . import data, harness, losses, operators, parallel, plot, prox, references
from .solvers.baselines.gist import gist
from .solvers.baselines.proxgrad import fista, ista
from .solvers.svm_admm import svm_admm
from .solvers.svm_consensus import svm_consensus_admm
from .solvers.pig import pig, pig_blocks
from .solvers.pig_jacobi import pig_jacobi
from .solvers.admm_irnn import admm_irnn
from .solvers.spdhg import lpdhg, spdhg
from .solvers.spdpeg import egadm, spdpeg
from .solvers.baselines.stochastic_admm import ada_sadmm, opg_admm, rda_admm, sag_admm, sgadm, stoc_admm
from .solvers.ipdlam import dlam, ipdlam
from .trace import Result, Trace

__version__ = "0.1.0"

__all__ = ["data", "harness", "losses", "operators", "parallel", "plot", "prox", "references", "Result",
           "Trace", "ista", "fista", "gist", "svm_admm", "svm_consensus_admm", "pig", "pig_blocks", "pig_jacobi",
           "admm_irnn", "spdhg", "lpdhg",
           "spdpeg", "egadm", "stoc_admm", "opg_admm", "rda_admm", "sag_admm", "ada_sadmm", "sgadm",
           "ipdlam", "dlam", "__version__"]

# working-set solvers for sparse GLMs (issue 16)
from .sparse_glm import glm, glm_path  # noqa: E402

__all__ += ["glm", "glm_path"]
