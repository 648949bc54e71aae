"""Working-set solvers for sparse generalised linear models (``ol.glm``, ``ol.glm_path``).

Modules, one concept each: :mod:`.solver` (the outer working-set loop and the path), :mod:`.inner` (compiled
coordinate descent per size class), :mod:`.blocks` (padded working-set columns, dense and sparse),
:mod:`.anderson` (safeguarded extrapolation), :mod:`.optimality` (KKT scores, duality gap, gap-safe screening).
"""
from .compiled import compile_count
from .solver import GLMPath, glm, glm_path, lambda_max

__all__ = ["glm", "glm_path", "lambda_max", "GLMPath", "compile_count"]
