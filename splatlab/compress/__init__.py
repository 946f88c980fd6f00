"""Self-organizing grid compression: PLAS sorting, the grid-smoothness loss, and SOG export.

    from splatlab.compress import plas_sort, smoothness_loss, SortedGrid, SOGTraining, compress
"""
from .plas import PLASResult, neighbour_distance, plas_sort, sort_keys
from .smoothness import SOGTraining, SortedGrid, smoothness_loss

__all__ = ["PLASResult", "plas_sort", "sort_keys", "neighbour_distance", "SOGTraining", "SortedGrid",
           "smoothness_loss", "compress"]


def compress(*args, **kwargs):
    """See `splatlab.compress.pipeline.compress`."""
    from .pipeline import compress as _compress
    return _compress(*args, **kwargs)
